"""Blind human evaluation: the study key, un-blinding, win rates with intervals, kappa, judge agreement."""

from __future__ import annotations

import json

import pytest

from cscprog.cli import main
from cscprog.errors import ConfigError, DataError
from cscprog.view.agreement import cohen_kappa, fleiss_kappa, wilson_interval
from cscprog.view.human_eval import parse_criteria, write_study
from cscprog.view.human_scores import RATINGS_FORMAT, score_ratings
from cscprog.view.runs import load_run
from tests.view.conftest import generated_run


def test_wilson_and_kappas_match_hand_computed_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 0) is None
    # observed 2/3, chance (2*1 + 1*2)/9 = 4/9: kappa = (6/9 - 4/9) / (5/9) = 0.4
    assert cohen_kappa([("a", "a"), ("b", "b"), ("a", "b")]) == pytest.approx(0.4)
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None  # one label everywhere: undefined
    # Fleiss (1971) layout: P_bar = (1 + 0 + 1) / 3, P_e = 0.5^2 + 0.5^2
    assert fleiss_kappa([{"a": 2}, {"a": 1, "b": 1}, {"b": 2}]) == pytest.approx((2 / 3 - 0.5) / 0.5)
    with pytest.raises(ValueError):
        fleiss_kappa([{"a": 2}, {"a": 3}])


def test_criteria_parsing():
    assert list(parse_criteria(None)) == ["strategy_adherence", "problem_resolution", "empathy", "naturalness"]
    assert parse_criteria(["empathy", "clarity=Which is clearer?"])["clarity"] == "Which is clearer?"
    with pytest.raises(ConfigError):
        parse_criteria(["unknown"])


def _ratings(study, key, rater, choose):
    """A ratings file as the page exports it; choose(item, system_in_A) -> 'A' | 'tie' | 'B'."""
    ratings = {item: {"choices": {c: choose(item, sides["A"], c) for c in key["criteria"]}, "comment": ""}
               for item, sides in key["items"].items()}
    return {"format": RATINGS_FORMAT, "study": study, "rater": rater, "ratings": ratings}


def test_study_is_blind_seeded_and_scores_unblinded(tmp_path, eval_runs):
    first = load_run(eval_runs[0])
    second = load_run(eval_runs[1], dialogues=first.dialogues)
    study = write_study(first, second, tmp_path / "s", seed=7, limit=10)
    again = write_study(first, second, tmp_path / "t", seed=7, limit=10)
    page = study.page.read_text(encoding="utf-8")
    key = json.loads(study.key.read_text(encoding="utf-8"))
    assert study.items == 10 and again.study == study.study
    assert key == {**json.loads(again.key.read_text(encoding="utf-8")), "runs": key["runs"]}
    assert "run_a" not in page and "run_b" not in page and str(eval_runs[0]) not in page  # nothing names a system
    assert {sides["A"] for sides in key["items"].values()} == {"run_a", "run_b"}  # both orders occur

    def prefer_b(item, in_a, criterion):  # rater 1: always run_b, except ties on naturalness
        if criterion == "naturalness":
            return "tie"
        return "A" if in_a == "run_b" else "B"

    def mostly_b(item, in_a, criterion):  # rater 2: run_b, but run_a on the first item
        wanted = "run_a" if item == next(iter(key["items"])) else "run_b"
        return "A" if in_a == wanted else "B"

    files = []
    for rater, choose in (("r1", prefer_b), ("r2", mostly_b)):
        path = tmp_path / "s" / f"ratings-{rater}.json"
        path.write_text(json.dumps(_ratings(study.study, key, rater, choose)))
        files.append(path)
    report = score_ratings(files)
    resolution = report["criteria"]["problem_resolution"]
    assert resolution["win_rate"]["run_b"]["count"] == 19 and resolution["win_rate"]["run_b"]["n"] == 20
    low, high = resolution["win_rate"]["run_b"]["ci95"]
    assert low < 0.95 < high
    pair = resolution["agreement"]["cohen"][0]
    assert pair["observed"] == 0.9 and pair["items"] == 10
    assert report["criteria"]["naturalness"]["win_rate"]["tie"]["count"] == 10
    assert resolution["agreement"]["fleiss"]["items"] == 10

    judge = tmp_path / "judge.jsonl"
    items = list(key["items"])
    judge.write_text("\n".join(json.dumps({"dialogue_id": i.split("#")[0], "turn_index": int(i.split("#")[1]),
                                           "winner": "B" if n else "A"}) for n, i in enumerate(items)) + "\n")
    judged = score_ratings(files, judge=judge)["criteria"]["problem_resolution"]["judge"]
    # raters' majority per item: run_b on 9 items, a tie (1 vote each) on the first; the judge says run_a there
    assert judged["items"] == 10 and judged["agreement"]["count"] == 9

    pairs = tmp_path / "pairs.jsonl"  # the LLM pairwise judge's own records: per criterion, A = run_a, B = run_b
    pairs.write_text("\n".join(json.dumps({
        "turn_id": i, "dialogue_id": i.split("#")[0], "turn_index": int(i.split("#")[1]),
        "verdicts": {"problem_resolution": {"ab": "B", "ba": "B", "final": "B", "consistent": True},
                     "naturalness": {"ab": "A", "ba": "B", "final": "tie", "consistent": False}}}) for i in items))
    by_criterion = score_ratings(files, judge=pairs)["criteria"]
    assert by_criterion["problem_resolution"]["judge"]["agreement"]["count"] == 9
    assert by_criterion["naturalness"]["judge"]["agreement"]["count"] == 10  # raters split 1-1: a tie, as the judge
    assert by_criterion["strategy_adherence"]["judge"]["items"] == 0


def test_bad_ratings_are_named(tmp_path, eval_runs, capsys):
    first = load_run(eval_runs[0])
    study = write_study(first, load_run(eval_runs[1], dialogues=first.dialogues), tmp_path, limit=3)
    key = json.loads(study.key.read_text())
    wrong = _ratings("other-study", key, "x", lambda *_: "A")
    (tmp_path / "w.json").write_text(json.dumps(wrong))
    with pytest.raises(DataError, match="study"):
        score_ratings([tmp_path / "w.json"])
    bad = _ratings(study.study, key, "x", lambda *_: "left")
    (tmp_path / "b.json").write_text(json.dumps(bad))
    assert main(["human-eval", "--score", str(tmp_path / "b.json")]) == 2
    assert "is not A, tie or B" in capsys.readouterr().err
    with pytest.raises(DataError, match="--key"):
        score_ratings([tmp_path / "elsewhere" / "r.json"])


def test_a_generated_context_run_is_refused_before_anything_is_written(tmp_path, eval_runs, capsys):
    generated = generated_run(tmp_path)
    assert main(["human-eval", str(eval_runs[0]), str(generated), "-o", str(tmp_path / "study")]) == 2
    err = capsys.readouterr().err
    assert str(generated) in err and "generated-context run" in err and "--context reference" in err
    assert not (tmp_path / "study").exists()
