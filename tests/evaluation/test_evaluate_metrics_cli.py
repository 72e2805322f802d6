"""cscprog evaluate/score --metrics: signatures in result.json, --json and the report; offline; bad input exit 2."""

from __future__ import annotations

import json

import pytest

from cscprog.cli import main
from cscprog.testing import OpenAICompatibleServer

NOT_STARTED = "(the conversation has not started)"


def answer(field, request):
    if field == "strategy":
        return "Greeting" if NOT_STARTED in request.inputs["history"] else "Information Delivery"
    return "您好，我来帮您查询一下，请稍等。"


@pytest.fixture
def config(tmp_path):
    with OpenAICompatibleServer(answer, model_name="test-model") as server:
        path = tmp_path / "cscprog.toml"
        path.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\n\n'
                        f'[cache]\ndir = "{tmp_path / "cache"}"\n\n[metrics]\nresamples = 200\nseed = 3\n',
                        encoding="utf-8")
        yield path


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_paper_profile_signatures_everywhere(capsys, config, tmp_path):
    out_dir = tmp_path / "paper"
    code, out, err = run(capsys, "evaluate", "sample:annotated_zh", "--limit", 2, "-o", out_dir, "--json",
                         "--config", config, "--no-plots", "--progress", "off", "--metrics", "paper",
                         "--no-bertscore")
    assert code == 0, err
    result = json.loads(out)
    assert result["metrics"]["profile"] == "paper" and result["metrics"]["resamples"] == 200
    assert result["signatures"]["bleu2"].startswith("BLEU-2|sentence-mean|tok:char|smooth:method3")
    assert result["intervals"]["rouge_l"]["seed"] == 3
    assert "bleurt_checkpoint" in result["unavailable"]["bleurt"]
    assert "--bertscore" in result["unavailable"]["bertscore"]
    stored = json.loads((out_dir / "result.json").read_text())
    assert stored["signatures"] == result["signatures"]
    report = (out_dir / "report.md").read_text()
    assert "Comparable with the paper?" in report and "rouge-score-default" in report
    code, out, err = run(capsys, "score", out_dir / "predictions.jsonl", "--reference", "sample:annotated_zh",
                         "--json", "--config", config, "--metrics", "paper", "--no-bertscore")
    assert code == 0, err
    assert json.loads(out)["bleu2"] == result["bleu2"]


def test_standard_table_shows_intervals_and_reasons(capsys, config, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, "evaluate", "sample:annotated_zh", "--limit", 1, "-o", tmp_path / "std",
                         "--config", config, "--no-plots", "--progress", "off")
    assert code == 0, err
    assert "95% CI" in out and "standard profile" in out and "bleurt:" in out
    # at 80 columns every score and interval is whole (one row a score), and hints keep their brackets
    result = json.loads((tmp_path / "std" / "result.json").read_text())
    table = [line for line in out.splitlines() if set(line) & set("│━─")]
    assert table and all(len(line) <= 80 for line in table) and "…" not in out, table
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 4}
    for name, key in (("B-2", "bleu2"), ("R-L", "rouge_l"), ("ACC", "accuracy"), ("WL-F1", "semantic")):
        low, high = result["intervals"][key]["low"], result["intervals"][key]["high"]
        assert f"{result[key]:.2f}" in rows[name] and f"{low:.2f} – {high:.2f}" in rows[name], rows[name]
    flat = " ".join(out.split())
    assert "[metrics] bleurt_checkpoint" in flat and "cscprog[neural]" in flat


def test_unknown_profile_is_exit_2(capsys, config, tmp_path):
    code, _, err = run(capsys, "evaluate", "sample:annotated_zh", "-o", tmp_path / "x", "--config", config,
                       "--metrics", "papers")
    assert code == 2 and "--metrics" in err
