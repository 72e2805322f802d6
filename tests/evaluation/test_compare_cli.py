"""cscprog compare: intervals and p-values on the same turns, exit 2 on different turns."""

from __future__ import annotations

import json

import pytest

from cscprog.cli import main
from cscprog.testing import OpenAICompatibleServer

NOT_STARTED = "(the conversation has not started)"
GOOD = "I am sorry about the trouble with your card; let me check the account and unblock it for you now."


def answer_with(reply: str, *, prefer_longer: bool = True):
    def answer(field, request):
        if field == "strategy":
            return "Greeting" if NOT_STARTED in request.inputs["history"] else "Information Delivery"
        if field in ("strategy_adherence", "problem_resolution", "empathy", "naturalness"):
            first, second = request.inputs["reply_1"], request.inputs["reply_2"]
            if field == "naturalness" and not prefer_longer:
                return json.dumps({"reason": "the first one", "choice": "1"})  # position bias: flips on swap
            if len(first) == len(second):
                return json.dumps({"reason": "same", "choice": "tie"})
            return json.dumps({"reason": "fuller", "choice": "1" if len(first) > len(second) else "2"})
        return reply

    return answer


def config_file(tmp_path, name, url):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{url}"\n\n[cache]\ndir = "{tmp_path / name}"\n'
                    '\n[run]\nconcurrency = 2\n\n[metrics]\nresamples = 300\n', encoding="utf-8")
    return path


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_runs(capsys, tmp_path):
    runs = {}
    for name, reply in (("base", "OK."), ("better", GOOD)):
        with OpenAICompatibleServer(answer_with(reply), model_name="test-model") as server:
            code, _, err = run(capsys, "evaluate", "sample:annotated_en", "--limit", 3, "-o", tmp_path / name,
                               "--config", config_file(tmp_path, name, server.url), "--no-plots", "--progress", "off")
            assert code == 0, err
        runs[name] = tmp_path / name
    return runs


def test_compare_reports_differences_intervals_and_plain_sentences(capsys, two_runs, tmp_path):
    code, out, err = run(capsys, "compare", two_runs["base"], two_runs["better"], "--json", "--resamples", 500)
    assert code == 0, err
    report = json.loads(out)
    rouge = report["metrics"]["rouge_l"]
    assert rouge["b"] > rouge["a"] and rouge["delta"] == pytest.approx(rouge["b"] - rouge["a"], abs=1e-3)
    assert rouge["low"] <= rouge["delta"] <= rouge["high"] and 0 <= rouge["p_value"] <= 1
    accuracy = report["metrics"]["accuracy"]
    assert accuracy["delta"] == 0 and accuracy["p_value"] == 1.0
    assert accuracy["sentence"].startswith("No significant difference in ACC")
    assert report["metrics"]["bertscore"]["unavailable"]
    assert set(report["breakdowns"]) == {"strategy", "domain"}
    code, out, err = run(capsys, "compare", two_runs["base"], two_runs["better"], "--test", "randomization",
                         "--metrics", "paper")
    assert code == 0, err
    assert "ROUGE-L" in out and "p" in out and "No significant difference in ACC" in out
    assert "Signatures: " in out and "tok:rouge-score-default" in out  # the paper profile's ROUGE-L, named


def test_compare_refuses_runs_on_different_turns_and_names_them(capsys, two_runs, tmp_path):
    lines = (two_runs["better"] / "predictions.jsonl").read_text().splitlines()
    dropped = json.loads(lines[-1])
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(lines[:-1]) + "\n")
    code, out, err = run(capsys, "compare", two_runs["base"], partial)
    assert code == 2 and out == ""
    assert f"{dropped['dialogue_id']}#{dropped['turn_index']}" in err and "not on the same turns" in err


def test_difference_sentence_is_plain():
    from cscprog.evaluation.compare import difference_sentence

    entry = {"delta": 0.4, "low": -0.8, "high": 1.6, "p_value": 0.48, "n": 120}
    assert difference_sentence("ROUGE-L", entry) == (
        "No significant difference in ROUGE-L: B - A = +0.40, 95% CI [-0.80, +1.60], p = 0.48 over 120 turns.")
    assert difference_sentence("ACC", {**entry, "delta": -3.0, "low": -5.0, "high": -1.0, "p_value": 0.01}).startswith(
        "A is better on ACC")
    assert "p < 0.001 over" in difference_sentence("B-2", {**entry, "delta": 2, "low": 1, "high": 3, "p_value": 0.0,
                                                            "resamples": 1000})


def test_compare_judge_over_the_loopback_server_counts_position_bias_and_resumes(capsys, two_runs, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    args = ["compare", two_runs["base"], two_runs["better"], "--judge", "--data", "sample:annotated_en",
            "--judge-output", pairs, "--resamples", 300, "--progress", "off", "--json"]
    with OpenAICompatibleServer(answer_with(GOOD, prefer_longer=False), model_name="test-model") as server:
        code, out, err = run(capsys, *args, "--config", config_file(tmp_path, "judge", server.url))
        assert code == 0, err
        asked = server.count
    report = json.loads(out)["judge"]
    records = [json.loads(line) for line in pairs.read_text().splitlines()]
    turns = len((two_runs["base"] / "predictions.jsonl").read_text().splitlines())
    assert report["n"] == report["asked"] == len(records) == turns > 3
    assert turns < asked <= 2 * turns  # each turn in both orders; identical prompts (opening turns) come from the cache
    for record in records:
        verdicts = record["verdicts"]
        assert set(verdicts) == {"strategy_adherence", "problem_resolution", "empathy", "naturalness"}
        assert verdicts["empathy"] == {**verdicts["empathy"], "ab": "B", "ba": "B", "final": "B", "consistent": True}
        # the judge always says "reply 1" on naturalness: A in one order, B in the other, so a tie
        assert (verdicts["naturalness"]["ab"], verdicts["naturalness"]["ba"]) == ("A", "B")
        assert verdicts["naturalness"]["final"] == "tie" and not verdicts["naturalness"]["consistent"]
    assert report["criteria"]["empathy"]["win"]["estimate"] == 1.0
    assert report["criteria"]["naturalness"]["tie"]["estimate"] == 1.0
    assert report["criteria"]["naturalness"]["position_consistency"]["estimate"] == 0.0
    assert report["position_consistency"]["estimate"] == 0.75 and report["overall"]["win"]["estimate"] == 1.0
    # resumable: a second run with --resume asks the server nothing more
    with OpenAICompatibleServer(answer_with(GOOD), model_name="test-model") as server:
        code, out, err = run(capsys, *args, "--resume", "--config", config_file(tmp_path, "judge", server.url))
        assert code == 0, err
        assert server.count == 0
    assert json.loads(out)["judge"]["position_consistency"]["estimate"] == 0.75
    human_format = records[0]["verdicts"]["empathy"]["final"]
    assert human_format in ("A", "B", "tie")


def test_compare_judge_text_report_shows_win_tie_loss_and_consistency(capsys, two_runs, tmp_path):
    with OpenAICompatibleServer(answer_with(GOOD), model_name="test-model") as server:
        code, out, err = run(capsys, "compare", two_runs["base"], two_runs["better"], "--judge", "--data",
                             "sample:annotated_en", "--progress", "off",
                             "--config", config_file(tmp_path, "judge", server.url))
    assert code == 0, err
    turns = len((two_runs["base"] / "predictions.jsonl").read_text().splitlines())
    assert f"Pairwise judge over {turns} of {turns} turns" in out and "Position consistency: 100.0%" in out
    assert (two_runs["better"] / "pairs-vs-base.jsonl").is_file()
