from __future__ import annotations

import json

import pytest

from cscprog.cli import main
from cscprog.samples import sample_path


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_framework_table_and_json(capsys):
    code, out, _ = run(capsys, "framework")
    assert code == 0 and "Greeting" in out and "Maintaining" in out
    code, out, _ = run(capsys, "framework", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["strategies"]) == 12
    assert {s["name"]: s["stage"] for s in data["strategies"]}["Appreciation and Closure"] == "Maintaining"
    code, out, _ = run(capsys, "framework", "--json", "--taxonomy", "esconv")
    assert len(json.loads(out)["strategies"]) == 8


def test_stats_json_on_the_sample(capsys):
    code, out, _ = run(capsys, "stats", str(sample_path("annotated_en")), "--json")
    stats = json.loads(out)
    assert code == 0
    assert stats["dialogues"] == 24 and stats["supporter_turns"] == sum(stats["strategy_counts"].values())
    assert stats["utterances"] > stats["supporter_turns"] > 0
    assert set(stats["strategy_counts"]) >= {"Greeting", "Others"}
    assert stats["strategy_counts"]["Greeting"] == 24
    assert len(stats["domains"]) == 8


def test_stats_table(capsys):
    code, out, _ = run(capsys, "stats", str(sample_path("annotated_zh")))
    assert code == 0 and "Information Delivery" in out and "Flow-rule violations: none" in out


def test_validate_ok(capsys):
    code, out, _ = run(capsys, "validate", str(sample_path("raw")))
    assert code == 0 and "12 valid" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[{"dialogue": [{"speaker": "客服", "strategy": "", "text": "hi"', "truncated JSON"),
        ('[{"dialogue": [{"speaker": "客服", "strategy": ""}]}]', "record 0, turn 0, field 'text': missing"),
        ('[{"dialogue": [{"speaker": "bot", "text": "x"}]}]', "record 0, turn 0, field 'speaker'"),
        (
            '[{"dialogue": [{"speaker": "客服", "strategy": "策略42 x", "text": "x"}]}]',
            "record 0, turn 0, field 'strategy': unknown strategy label",
        ),
        ('[{"dialogue": []}]', "record 0, field 'dialogue': empty dialogue"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "stats"])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, content, expected, command):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, command, str(path))
    assert code == 2
    assert expected in err and str(path) in err
    assert "Traceback" not in err and "Traceback" not in out


def test_stats_skip_invalid_reports(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    good = {"dialogue": [{"speaker": "客服", "strategy": "策略1 礼貌问候", "text": "您好"}], "source": "x"}
    path.write_text(json.dumps(good) + "\n{oops\n" + json.dumps(good) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "stats", str(path), "--skip-invalid", "--json")
    assert code == 0 and json.loads(out)["dialogues"] == 2 and json.loads(out)["skipped"] == 1
    assert "skipped 1 invalid record" in err and "record 1 (line 2)" in err


def test_bad_config_exits_2(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[lm]\ntemperature = 9\n", encoding="utf-8")
    code, _, err = run(capsys, "framework", "--config", str(path))
    assert code == 2 and "lm.temperature" in err


def test_split_writes_disjoint_stable_parts_that_read_back(capsys, tmp_path):
    from cscprog.data import read_dialogues, split_of

    code, out, _ = run(capsys, "split", "sample:annotated_en", "-o", str(tmp_path / "a"), "--json")
    counts = json.loads(out)["counts"]
    assert code == 0 and list(counts) == ["train", "dev", "test"] and sum(counts.values()) == 24
    ids = {name: [d.id for d in read_dialogues(tmp_path / "a" / f"{name}.jsonl").dialogues] for name in counts}
    assert [len(ids[name]) for name in counts] == list(counts.values())
    assert set().union(*ids.values()) == {d.id for d in read_dialogues(sample_path("annotated_en")).dialogues}
    ratios = {"train": 0.6, "dev": 0.2, "test": 0.2}
    assert all(split_of(dialogue_id, ratios) == name for name, part in ids.items() for dialogue_id in part)
    run(capsys, "split", "sample:annotated_en", "-o", str(tmp_path / "b"))
    assert (tmp_path / "a" / "test.jsonl").read_bytes() == (tmp_path / "b" / "test.jsonl").read_bytes()


@pytest.mark.parametrize("ratios", ["train=0.5,dev=0.6", "train=x", "train", "a=0.5,a=0.5"])
def test_split_refuses_bad_ratios(capsys, tmp_path, ratios):
    code, _, err = run(capsys, "split", "sample:annotated_en", "-o", str(tmp_path), "--ratios", ratios)
    assert code == 2 and "--ratios" in err and not list(tmp_path.iterdir())
