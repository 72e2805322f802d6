"""cscprog evaluate / score / compile against the loopback OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from cscprog.cli import main
from cscprog.samples import load_sample
from cscprog.testing import OpenAICompatibleServer

NOT_STARTED = "(the conversation has not started)"
KEYS = {"bleu2", "bleu4", "rouge_l", "semantic", "accuracy", "macro_f1", "n", "failures", "distinct1", "distinct2"}


def answer(field, request):
    if field == "strategy":
        return "Greeting" if NOT_STARTED in request.inputs["history"] else "Information Delivery"
    return "Thank you for waiting, let me check that for you."


@pytest.fixture
def config(tmp_path):
    with OpenAICompatibleServer(answer, model_name="test-model") as server:
        path = tmp_path / "cscprog.toml"
        path.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\n\n'
                        f'[cache]\ndir = "{tmp_path / "cache"}"\n\n[run]\nconcurrency = 2\n', encoding="utf-8")
        yield path


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_json_is_exactly_one_object_and_score_agrees(capsys, config, tmp_path):
    out_dir = tmp_path / "eval"
    code, out, err = run(capsys, "evaluate", "sample:annotated_en", "--limit", 2, "-o", out_dir, "--json",
                         "--config", config, "--no-plots", "--progress", "off")
    assert code == 0, err
    result = json.loads(out)  # the whole of stdout is one JSON document
    assert isinstance(result, dict) and KEYS <= set(result)
    assert result["n"] == sum(len(d.supporter_indices()) for d in load_sample("annotated_en")
                              if d.id in {r["dialogue_id"] for r in map(json.loads, (out_dir / "predictions.jsonl")
                                                                       .read_text().splitlines())})
    assert (out_dir / "report.md").is_file() and (out_dir / "result.json").is_file()
    code, out, err = run(capsys, "score", out_dir / "predictions.jsonl", "--reference", "sample:annotated_en",
                         "--json")
    assert code == 0, err
    scored = json.loads(out)
    assert {k: scored[k] for k in KEYS} == {k: result[k] for k in KEYS}
    assert scored["coverage"]["dialogues_scored"] == 2 and scored["coverage"]["dialogues_in_reference"] == 24


def test_evaluate_prints_a_table_without_json(capsys, config, tmp_path):
    code, out, err = run(capsys, "evaluate", "sample:annotated_zh", "--limit", 1, "-o", tmp_path / "zh",
                         "--config", config, "--progress", "off", "--context", "generated")
    assert code == 0, err
    assert "ACC" in out and "report.md" in out and "3 plots" in out


def test_score_rejects_bad_predictions_with_line_and_field(capsys, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"dialogue_id": "en-001", "turn_index": 0, "pred_strategy": "Hello there",
                                "pred_reply": "Hi"}) + "\n")
    code, out, err = run(capsys, "score", path, "--reference", "sample:annotated_en", "--json")
    assert code == 2 and out == ""
    assert "line 1" in err and "'pred_strategy'" in err and "Hello there" in err
    path.write_text(json.dumps({"dialogue_id": "zz-9", "turn_index": 0, "pred_strategy": None,
                                "pred_reply": None}) + "\n")
    code, _, err = run(capsys, "score", path, "--reference", "sample:annotated_en")
    assert code == 2 and "'dialogue_id'" in err and "zz-9" in err


def test_bad_context_is_exit_2(capsys, config, tmp_path):
    code, _, err = run(capsys, "evaluate", "sample:annotated_en", "--context", "gold", "-o", tmp_path / "x",
                       "--config", config)
    assert code == 2 and "--context" in err


def test_compile_then_evaluate_the_compiled_program(capsys, config, tmp_path):
    program = tmp_path / "program.json"
    code, out, err = run(capsys, "compile", "--train", "sample:annotated_en", "--train-limit", 3, "--dev",
                         "sample:annotated_en", "--dev-limit", 2, "--optimizer", "bootstrap", "-o", program,
                         "--config", config, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["optimizer"] == "BootstrapFewShot" and set(summary["before"]) >= {"metric", "strategy_accuracy"}
    assert json.loads(program.read_text())["manifest"]["after"] == summary["after"]
    assert ("scores lower than the base program" in err) == (summary["improvement"] < 0)
    code, out, err = run(capsys, "evaluate", "sample:annotated_en", "--limit", 1, "--program", program, "-o",
                         tmp_path / "compiled", "--json", "--config", config, "--no-plots", "--progress", "off")
    assert code == 0, err
    result = json.loads(out)
    assert result["program"]["recipe"] == "bootstrap" and result["program"]["path"] == str(program)
    code, out, err = run(capsys, "compile", "--train", "sample:annotated_en", "--train-limit", 2, "--dev",
                         "sample:annotated_en", "--dev-limit", 1, "--optimizer", "copro", "-o", tmp_path / "c.json",
                         "--config", config)
    assert code == 0, err
    assert "before" in out and "after" in out and "Saved" in out


def test_compile_rejects_unknown_recipe_and_bad_weights(capsys, config, tmp_path):
    code, _, err = run(capsys, "compile", "--train", "sample:annotated_en", "--dev", "sample:annotated_en",
                       "--optimizer", "simba", "-o", tmp_path / "p.json", "--config", config)
    assert code == 2 and "--optimizer" in err
    code, _, err = run(capsys, "compile", "--train", "sample:annotated_en", "--dev", "sample:annotated_en",
                       "--optimizer", "copro", "--weights", "strategy:1", "-o", tmp_path / "p.json",
                       "--config", config)
    assert code == 2 and "--weights" in err
