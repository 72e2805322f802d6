"""The JSONL output: scanning finished ids fast, torn tails, corrupt lines, atomic ordering, the append lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cscprog.runs import JsonlSink, RunInputError, rewrite_in_order, scan_output
from cscprog.runs.output import remove_stale_temporaries


def _dialogue_line(index: int) -> str:
    turns = [{"speaker": "supporter" if t % 2 == 0 else "customer", "strategy": "Greeting" if t % 2 == 0 else None,
              "text": f"utterance {t} of dialogue {index} " * 6} for t in range(16)]
    profile = {"id": f"p-{index}", "name": "Ann"}  # a nested "id" the scan must not take for the record id
    return json.dumps({"id": f"syn-{index:05d}", "domain": "complaints", "language": "en", "turns": turns,
                       "profile": profile, "metadata": {}}, ensure_ascii=False)


def test_resume_scan_of_10000_dialogues_finds_every_id_and_drops_the_torn_line(tmp_path: Path) -> None:
    out = tmp_path / "big.jsonl"
    out.write_text("".join(_dialogue_line(i) + "\n" for i in range(10_000)) + _dialogue_line(10_000)[:100])
    size = out.stat().st_size
    assert size > 20_000_000
    scan = scan_output(out, "id")
    assert len(scan.ids) == 10_000 and scan.ids[0] == "syn-00000" and scan.ids[-1] == "syn-09999"
    assert scan.dropped_bytes == 100 and out.stat().st_size == size - 100


def test_id_not_first_is_found_by_parsing(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"profile": {"dialogue_id": "nested"}, "dialogue_id": "d-1", "turn": 2}\n'
                   '{"dialogue_id": "d-\\"2\\"", "turn": 1}\n')
    assert scan_output(out, "dialogue_id").ids == ["d-1", 'd-"2"']


def test_corrupt_complete_line_is_an_error_naming_the_line(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"id": "a"}\n{"id": "b", "turns": [{"te\n{"id": "c"}\n')
    with pytest.raises(RunInputError, match=r"o\.jsonl: line 2 is not valid JSON"):
        scan_output(out, "id")
    out.write_text('{"id": "a"}\n{"other": 1}\n')
    with pytest.raises(RunInputError, match="line 2 has no string field 'id'"):
        scan_output(out, "id")


def test_scan_without_repair_leaves_the_file(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"id": "a"}\n\n{"id": "b"}\n{"id": "c", "x"')
    scan = scan_output(out, "id", repair=False)
    assert scan.ids == ["a", "b"] and scan.dropped_bytes == len('{"id": "c", "x"')
    assert out.read_text().endswith('"x"')


def test_rewrite_in_order_is_atomic_and_keeps_unknown_ids(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"id": "c"}\n{"id": "zz", "stranger": true}\n{"id": "a"}\n{"id": "b"}\n')
    assert rewrite_in_order(out, ["a", "b", "c"], "id") is True
    assert out.read_text() == '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n{"id": "zz", "stranger": true}\n'
    assert rewrite_in_order(out, ["a", "b", "c"], "id") is False
    assert [p.name for p in tmp_path.iterdir()] == ["o.jsonl"]  # no temp file left


def test_sink_appends_whole_items_and_locks_the_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "o.jsonl"
    with JsonlSink(out) as sink:
        sink.append(b'{"id": "a", "n": 1}\n{"id": "a", "n": 2}\n')
        with pytest.raises(RunInputError, match="another cscprog run is writing"):
            JsonlSink(out)
        sink.append(b'{"id": "b"}\n')
    assert scan_output(out, "id", many_records=True).spans == {"a": [(0, 40)], "b": [(40, 52)]}
    JsonlSink(out).close()  # free again once closed


def test_stale_temporaries_of_an_interrupted_rewrite_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"id": "a"}\n')
    (tmp_path / ".o.jsonl.4242.tmp").write_text("half")
    (tmp_path / ".o.jsonl.keep").write_text("not ours")
    assert remove_stale_temporaries(out) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.jsonl.keep", "o.jsonl"]
