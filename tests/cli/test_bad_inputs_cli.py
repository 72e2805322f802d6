"""Crafted bad inputs: each is exit 2 and one clear line, never a traceback; validate catches what a run rejects."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from cscprog.cli import main
from cscprog.data import read_dialogues

RECORD = {"dialogue": [{"speaker": "客服", "strategy": "策略1 礼貌问候", "text": "您好"},
                       {"speaker": "客户", "strategy": "", "text": "你好"}], "source": "other"}
LINE = json.dumps(RECORD, ensure_ascii=False)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_DATA = {
    "binary.jsonl": (b"\x00\x01\x02\x03\xff\xfe garbage\n", "binary data"),
    "utf16.jsonl": ((LINE + "\n").encode("utf-16"), "UTF-16"),
    "latin1.jsonl": (LINE.replace("您好", "caf\u00e9").encode("utf-8").replace(b"\xc3\xa9", b"\xe9") + b"\n",
                     "not UTF-8 text"),
    "deep.json": (b"[" * 50_000 + b"]" * 50_000, "nested more than"),
    "deep.jsonl": (b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested more than"),
    "nan.jsonl": (LINE[:-1].encode() + b', "score": NaN}\n', "NaN is not a JSON value"),
    "empty.jsonl": (b"", "empty file"),
    "blank.json": (b"  \n\t\n", "empty file"),
}


@pytest.mark.parametrize("name", sorted(BAD_DATA))
@pytest.mark.parametrize("command", ["validate", "stats"])
def test_bad_data_files_are_exit_2_with_the_file_named(tmp_path, capsys, name, command):
    data, expected = BAD_DATA[name]
    path = _write(tmp_path / name, data)
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(path) in err and "Traceback" not in err


def test_a_run_refuses_the_same_files_before_any_llm_call(tmp_path, capsys):
    path = _write(tmp_path / "binary.jsonl", BAD_DATA["binary.jsonl"][0])
    assert main(["annotate", str(path), "-o", str(tmp_path / "out.jsonl")]) == 2
    assert "binary data" in capsys.readouterr().err and not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("target", ["directory", "/dev/null"])
def test_a_directory_or_a_device_is_not_called_a_missing_file(tmp_path, capsys, target):
    path = tmp_path if target == "directory" else Path(target)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no such file" not in err and ("is a directory" in err or "not a regular file" in err)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, capsys):
    for name in ("bom.jsonl", "bom.json"):
        body = LINE + "\n" if name.endswith("l") else json.dumps([RECORD], ensure_ascii=False)
        path = _write(tmp_path / name, codecs.BOM_UTF8 + body.encode("utf-8"))
        assert main(["validate", str(path)]) == 0
        assert "1 valid dialogue(s)" in capsys.readouterr().out


def test_ids_that_collide_after_renaming_are_renamed_apart_and_reported(tmp_path, capsys):
    lines = [json.dumps({"id": item_id, **RECORD}, ensure_ascii=False) for item_id in ("d-1", "d-1", "d-1-2")]
    path = _write(tmp_path / "dups.jsonl", ("\n".join(lines) + "\n").encode())
    loaded = read_dialogues(path)
    assert len({d.id for d in loaded.dialogues}) == 3
    assert len(loaded.renamed) == 2 and "record 1 (line 2): duplicate id 'd-1' renamed to 'd-1-2'" in loaded.renamed[0]
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert "2 repeated dialogue id(s) renamed" in err and "line 3" in err


def test_a_dialogue_id_with_a_line_break_is_caught_by_validate(tmp_path, capsys):
    path = _write(tmp_path / "id.jsonl", (json.dumps({"id": "a\nb", **RECORD}) + "\n").encode())
    assert main(["validate", str(path)]) == 2
    assert "line break" in capsys.readouterr().err


def test_profiles_that_are_a_binary_file_are_exit_2(tmp_path, capsys):
    path = _write(tmp_path / "profiles.jsonl", BAD_DATA["binary.jsonl"][0])
    assert main(["synthesize", "--profiles", str(path), "-o", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "binary data" in err and "Traceback" not in err


@pytest.mark.parametrize(("body", "expected"), [
    ('number = "one"\nname = "A"\nstage = "S"\ndefinition = "d"\n', "strategies[0].number: expected an integer"),
    ('name = "A"\nstage = "S"\ndefinition = "d"\n[[strategies]]\nname = "A"\nstage = "S"\ndefinition = "e"\n',
     "duplicate strategy names: A"),
])
def test_a_bad_taxonomy_file_is_named_in_the_error(tmp_path, capsys, body, expected):
    taxonomy = tmp_path / "mine.toml"
    taxonomy.write_text(f'name = "mine"\n[[stages]]\nname = "S"\n[[strategies]]\n{body}')
    data = _write(tmp_path / "d.jsonl", (LINE + "\n").encode())
    assert main(["validate", str(data), "--taxonomy", str(taxonomy)]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(taxonomy) in err and "Traceback" not in err
