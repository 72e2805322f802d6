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
