"""Profiles end to end: every score with its signature and interval; the report says which columns are comparable."""

from __future__ import annotations

import pytest

from cscprog.evaluation.comparability import paper_comparability
from cscprog.evaluation.metrics import COLUMN_KEYS, score_predictions
from cscprog.evaluation.report import render_report
from cscprog.framework import load_taxonomy
from cscprog.samples import load_sample

CSC = load_taxonomy("csc")


def records(name: str = "annotated_zh") -> list[dict]:
    rows = []
    for dialogue in load_sample(name):
        indices = dialogue.supporter_indices()
        for position, index in enumerate(indices):
            turn = dialogue.turns[index]
            other = dialogue.turns[indices[(position + 1) % len(indices)]]
            rows.append({"gold_strategy": turn.strategy, "pred_strategy": other.strategy, "gold_reply": turn.text,
                         "pred_reply": other.text if position % 3 else turn.text, "domain": dialogue.domain})
    return rows


@pytest.mark.parametrize("profile", ["standard", "paper"])
def test_every_score_has_a_signature_and_an_interval(profile):
    result = score_predictions(records(), CSC, semantic=False, profile=profile, resamples=200, seed=1)
    assert result["metrics"]["profile"] == profile and result["metrics"]["resamples"] == 200
    assert set(result["signatures"]) == set(COLUMN_KEYS)
    for key in ("bleu2", "bleu4", "rouge_l", "accuracy", "macro_f1"):
        interval = result["intervals"][key]
        assert interval["low"] <= result[key] <= interval["high"], key
        assert interval["resamples"] == 200 and interval["seed"] == 1
    for key in ("bertscore", "bleurt", "semantic"):
        assert result[key] is None and result["unavailable"][key]


def test_paper_rouge_on_chinese_is_near_zero_and_below_character_rouge():
    standard = score_predictions(records(), CSC, semantic=False, profile="standard", resamples=50)
    paper = score_predictions(records(), CSC, semantic=False, profile="paper", resamples=50)
    assert paper["rouge_l"] < standard["rouge_l"] / 3  # only Latin letters and digits count under rouge-score
    assert paper["signatures"]["rouge_l"] != standard["signatures"]["rouge_l"]
    assert paper["bleu2"] != standard["bleu2"] and "sentence-mean" in paper["signatures"]["bleu2"]


def test_the_report_marks_columns_not_comparable_and_says_why():
    result = score_predictions(records(), CSC, semantic=False, profile="standard", resamples=50)
    result["settings"].update(context="reference", data="sample:annotated_zh")
    marks = paper_comparability(result)
    assert not marks["B-2"]["comparable"] and not marks["R-L"]["comparable"] and marks["ACC"]["comparable"]
    text = render_report(result, CSC)
    assert "## Comparable with the paper?" in text and "--metrics paper" in text
    assert "\u2020" in text and "95% interval" in text and "BLEU-2|corpus" in text
    assert "BS" in text and "not computed" in text
    paper = score_predictions(records(), CSC, semantic=False, profile="paper", resamples=50)
    paper["settings"].update(context="reference")
    paper_marks = paper_comparability(paper)
    assert paper_marks["B-2"]["comparable"] and paper_marks["R-L"]["comparable"]
    assert not paper_marks["BS"]["comparable"] and not paper_marks["BR"]["comparable"]


def test_bertscore_comparability_needs_the_papers_model_and_layer():
    result = {"metrics": {"profile": "paper"}, "bertscore": 66.0, "accuracy": 40.0, "signatures": {
        "bertscore": "BERTScore|F1|model:bert-base-chinese|layer:8|idf:no|rescale:no|bert-score:0.3.13"}}
    assert paper_comparability(result)["BS"]["comparable"]
    result["signatures"]["bertscore"] = result["signatures"]["bertscore"].replace("layer:8", "layer:11")
    assert "layer 11" in paper_comparability(result)["BS"]["why"]
