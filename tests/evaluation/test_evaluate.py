"""evaluate() and score_file(): positions, both contexts, outputs, failures in the denominators, validation."""

from __future__ import annotations

import json

import dspy
import pytest

from cscprog.agents.responder import ResponseGenerator
from cscprog.errors import DataError
from cscprog.evaluation.evaluate import evaluate, sample_dialogues
from cscprog.evaluation.metrics import score_predictions
from cscprog.evaluation.plots import PLOT_FILES
from cscprog.evaluation.predictions import align_predictions, read_predictions, score_file
from cscprog.framework import load_taxonomy
from cscprog.runs import RunInputError
from cscprog.samples import load_sample
from cscprog.testing import scripted_lm

CSC = load_taxonomy("csc")
NOT_STARTED = "(the conversation has not started)"
REPLY = "SCRIPTED REPLY: how can I help you with your account today?"


def rule(history: str) -> str:
    """The scripted model's strategy: Greeting on an empty history, else Information Delivery."""
    return "Greeting" if NOT_STARTED in history else "Information Delivery"


def answer(field: str, request) -> str:
    if field == "strategy":
        return rule(request.inputs["history"])
    return REPLY


@pytest.fixture
def lm():
    model = scripted_lm(answer)
    with dspy.context(lm=model):
        yield model


def test_sampling_is_deterministic_and_keeps_file_order():
    dialogues = load_sample("annotated_en")
    picked = sample_dialogues(dialogues, 5)
    assert len(picked) == 5 and picked == sample_dialogues(dialogues, 5)
    assert {d.id for d in sample_dialogues(list(reversed(dialogues)), 5)} == {d.id for d in picked}
    positions = [dialogues.index(d) for d in picked]
    assert positions == sorted(positions)
    assert sample_dialogues(dialogues, None) == list(dialogues) and sample_dialogues(dialogues, 100) == list(dialogues)


def test_reference_context_scores_every_supporter_turn(lm, tmp_path):
    dialogues = sample_dialogues(load_sample("annotated_en"), 4)
    outcome = evaluate(ResponseGenerator(), dialogues, out_dir=tmp_path / "run", limit=4, concurrency=2,
                       semantic=False)
    result = outcome.result
    positions = [(d.id, i) for d in dialogues for i in d.supporter_indices()]
    assert result["n"] == len(positions) and outcome.exit_status == 0 and result["failures"] == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["dialogue_id"], r["turn_index"]) for r in records] == positions  # input order, openings included
    assert {"dialogue_id", "turn_index", "gold_strategy", "pred_strategy", "gold_reply", "pred_reply", "failure",
            "domain", "language"} <= set(records[0])
    # expected accuracy by hand from the gold data and the scripted rule (empty history <=> turn 0)
    right = sum(d.turns[i].strategy == ("Greeting" if i == 0 else "Information Delivery")
                for d in dialogues for i in d.supporter_indices())
    assert result["accuracy"] == pytest.approx(round(100 * right / len(positions), 4))
    # the openings were asked with an empty history
    histories = [r.inputs["history"] for r in lm.engine.requests if "strategy" in r.outputs]
    assert sum(NOT_STARTED in h for h in histories) == len(dialogues)
    # re-scoring the written predictions gives the same numbers
    again = score_predictions(records, CSC, semantic=False)
    assert {k: again[k] for k in ("bleu2", "rouge_l", "accuracy")} == {k: result[k] for k in ("bleu2", "rouge_l",
                                                                                               "accuracy")}
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["bleu4"] == result["bleu4"] and saved["settings"]["context"] == "reference"
    assert saved["manifest"]["inputs"]["limit"] == 4 and saved["model"] == "scripted/model"
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| Model | B-2 | B-4 | R-L | BS | BR | ACC |" in report
    assert "| GPT-4o (paper) | 8.13 | 2.97 | 4.12 | 64.26 | 51.27 | 42.58 |" in report
    ours = next(line for line in report.splitlines() if "(this run)" in line)
    assert ours.endswith(f"| – | – | {result['accuracy']:.2f} |")  # BS off, BR never computed
    for name in PLOT_FILES:
        assert (tmp_path / "run" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generated_context_feeds_back_the_programs_own_turns(lm, tmp_path):
    dialogue = load_sample("annotated_en")[0]
    outcome = evaluate(ResponseGenerator(), [dialogue], out_dir=tmp_path / "gen", context="generated",
                       semantic=False, plots=False)
    assert outcome.result["n"] == len(dialogue.supporter_indices())
    last = [r.inputs["history"] for r in lm.engine.requests if "strategy" in r.outputs][-1]
    supporter_gold = [dialogue.turns[i].text for i in dialogue.supporter_indices()]
    assert REPLY in last and not any(text in last for text in supporter_gold[:-1])
    assert all(dialogue.turns[i].text in last for i in range(len(dialogue.turns) - 1)
               if not dialogue.turns[i].is_supporter)  # customer turns stay gold
    assert {r["context"] for r in outcome.records} == {"generated"}


def test_unparseable_outputs_are_failures_scored_as_wrong(tmp_path):
    def flaky(field, request):
        if field == "strategy" and "card" in request.inputs["history"].splitlines()[-1].lower():
            return "Teleportation"  # never a valid label: rejected on every attempt
        return answer(field, request)

    dialogues = load_sample("annotated_en")[:3]
    with dspy.context(lm=scripted_lm(flaky)):
        outcome = evaluate(ResponseGenerator(attempts=2), dialogues, out_dir=tmp_path / "f", semantic=False,
                           plots=False)
    result = outcome.result
    failed = [r for r in outcome.records if r["failure"]]
    assert failed and result["failures"] == len(failed)
    assert result["n"] == sum(len(d.supporter_indices()) for d in dialogues)  # nothing dropped
    right = sum(r["pred_strategy"] == r["gold_strategy"] for r in outcome.records)
    assert result["accuracy"] == pytest.approx(round(100 * right / result["n"], 4))
    assert all(r["pred_strategy"] is None for r in failed)
    assert sum(result["confusion"]["failed"]) == len(failed)


def test_a_dialogue_the_runner_could_not_finish_counts_all_its_turns_as_failures(tmp_path):
    dialogues = load_sample("annotated_en")[:3]
    broken = dialogues[1].turns[1].text  # the first customer line of the second dialogue

    def down(field, request):
        if broken in request.inputs.get("history", ""):
            raise RuntimeError("backend down")
        return answer(field, request)

    with dspy.context(lm=scripted_lm(down)):
        outcome = evaluate(ResponseGenerator(), dialogues, out_dir=tmp_path / "down", semantic=False, plots=False)
    assert outcome.exit_status == 1
    lost = [r for r in outcome.records if r["dialogue_id"] == dialogues[1].id]
    assert len(lost) == len(dialogues[1].supporter_indices())
    assert all(r["failure"].startswith("not run: ") and "backend down" in r["failure"] for r in lost)
    assert outcome.result["n"] == sum(len(d.supporter_indices()) for d in dialogues)
    assert outcome.result["failures"] == len(lost) and outcome.result["run"]["failed"] == 1
    assert "**Incomplete run**: 1 dialogue(s) failed" in (tmp_path / "down" / "report.md").read_text()


def test_existing_output_needs_resume_and_resume_replays_nothing(lm, tmp_path):
    dialogues = load_sample("annotated_en")[:2]
    first = evaluate(ResponseGenerator(), dialogues, out_dir=tmp_path / "r", semantic=False, plots=False)
    with pytest.raises(RunInputError):
        evaluate(ResponseGenerator(), dialogues, out_dir=tmp_path / "r", semantic=False, plots=False)
    calls = lm.engine.calls
    again = evaluate(ResponseGenerator(), dialogues, out_dir=tmp_path / "r", resume=True, semantic=False, plots=False)
    assert lm.engine.calls == calls and again.result["accuracy"] == first.result["accuracy"]


def test_unannotated_data_is_rejected(lm, tmp_path):
    with pytest.raises(DataError, match="supporter turn has no strategy"):
        evaluate(ResponseGenerator(), load_sample("raw")[:1], out_dir=tmp_path / "raw", semantic=False)


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_score_file_accepts_any_label_form_and_counts_missing_turns(tmp_path):
    dialogues = load_sample("annotated_zh")[:2]
    first = dialogues[0]
    records = [{"dialogue_id": first.id, "turn_index": i, "pred_strategy": "策略1 礼貌问候" if i == 0 else "ID",
                "pred_reply": first.turns[i].text} for i in first.supporter_indices()[:-1]]  # last turn missing
    result = score_file(_write(tmp_path / "p.jsonl", records), dialogues, CSC, semantic=False)
    n = len(first.supporter_indices())
    assert result["n"] == n and result["failures"] == 1
    assert result["coverage"] == {"dialogues_in_reference": 2, "dialogues_scored": 1,
                                  "dialogues_without_predictions": 1, "turns_scored": n,
                                  "turns_missing_predictions": 1}
    right = sum(first.turns[i].strategy == ("Greeting" if i == 0 else "Information Delivery")
                for i in first.supporter_indices()[:-1])
    assert result["accuracy"] == pytest.approx(round(100 * right / n, 4))
    # the replies are the gold texts (Chinese, character tokens): BLEU-4 is 100 times the brevity penalty
    assert 0 < result["bleu4"] < 100 and result["rouge_l"] == pytest.approx(round(100 * (n - 1) / n, 4))


@pytest.mark.parametrize(("record", "line", "field"), [
    ({"dialogue_id": "nope", "turn_index": 0, "pred_strategy": "Greeting", "pred_reply": "x"}, 2, "dialogue_id"),
    ({"dialogue_id": "en-001", "turn_index": 1, "pred_strategy": "Greeting", "pred_reply": "x"}, 2, "turn_index"),
    ({"dialogue_id": "en-001", "turn_index": 2, "pred_strategy": "Greting", "pred_reply": "x"}, 2, "pred_strategy"),
    ({"dialogue_id": "en-001", "turn_index": 2, "pred_strategy": None, "pred_reply": 5}, 2, "pred_reply"),
    ({"dialogue_id": "en-001", "turn_index": 0, "pred_strategy": None, "pred_reply": None}, 2, "turn_index"),
])
def test_score_file_names_the_line_and_field_of_bad_records(tmp_path, record, line, field):
    dialogues = load_sample("annotated_en")
    assert dialogues[0].id == "en-001" and 1 not in dialogues[0].supporter_indices()
    good = {"dialogue_id": "en-001", "turn_index": 0, "pred_strategy": "Greeting", "pred_reply": "Hello"}
    path = _write(tmp_path / "bad.jsonl", [good, record])
    with pytest.raises(DataError) as caught:
        score_file(path, dialogues, CSC, semantic=False)
    assert caught.value.line == line and caught.value.field == field


def test_read_predictions_rejects_non_json(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"dialogue_id": "a"}\n\nnot json\n')
    with pytest.raises(DataError, match="line 3"):
        read_predictions(tmp_path / "x.jsonl")
    records, coverage = align_predictions([], load_sample("annotated_en")[:1], CSC)
    assert records == [] and coverage["dialogues_without_predictions"] == 1
