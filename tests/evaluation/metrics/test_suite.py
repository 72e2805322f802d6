"""score_predictions: every key, failures in the denominators, validation of records."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from cscprog.errors import DataError, UnknownStrategyError
from cscprog.evaluation.metrics import SCORE_KEYS, SemanticScorer, score_predictions
from cscprog.framework import load_taxonomy

CSC = load_taxonomy("csc")

RECORDS = [
    {"dialogue_id": "d1", "turn_index": 0, "gold_strategy": "Greeting", "pred_strategy": "Greeting",
     "gold_reply": "your card is blocked", "pred_reply": "the card is blocked", "domain": "cards"},
    {"dialogue_id": "d1", "turn_index": 2, "gold_strategy": "Others", "pred_strategy": None,
     "gold_reply": "thanks", "pred_reply": None, "failure": "no usable output", "domain": "cards"},
]


def toy_scorer() -> SemanticScorer:
    vocabulary: dict[str, int] = {}

    def encode(text: str) -> list[int]:  # one-hot words: similarity = exact word overlap
        return [vocabulary.setdefault(word, len(vocabulary)) for word in text.split()]

    return SemanticScorer(np.eye(64), encode, model="one-hot")


def test_headline_scores_by_hand():
    scores = score_predictions(RECORDS, CSC, semantic=toy_scorer())
    assert set(SCORE_KEYS) <= set(scores)
    assert scores["n"] == 2 and scores["failures"] == 1
    # accuracy: 1 of 2 (the failure is wrong); macro-F1: Greeting 100, Others 0 -> 50
    assert scores["accuracy"] == 50.0 and scores["macro_f1"] == 50.0
    # BLEU-2 corpus: hyp tokens 4 (+0 failed), ref 4 + 1 = 5; p1 3/4, p2 2/3; BP = exp(1 - 5/4)
    assert scores["bleu2"] == pytest.approx(round(100 * math.exp(-0.25) * math.sqrt(0.5), 4))
    # ROUGE-L: pair 1 LCS 3 of 4/4 -> 0.75; pair 2 failed -> 0; mean 37.5
    assert scores["rouge_l"] == 37.5
    # one-hot semantic: pair 1 P = R = 3/4 -> 0.75; pair 2 0 -> 37.5
    assert scores["semantic"] == pytest.approx(37.5)
    # distinct-1 over "the card is blocked": 4/4
    assert scores["distinct1"] == 100.0 and scores["distinct2"] == 100.0
    assert scores["per_domain"]["cards"]["n"] == 2
    assert scores["per_language"]["en"]["accuracy"] == 50.0
    assert scores["confusion"]["failed"][CSC.names.index("Others")] == 1
    assert scores["settings"]["semantic_model"] == "one-hot"


def test_semantic_disabled_is_null_with_a_reason():
    scores = score_predictions(RECORDS, CSC, semantic=False)
    assert scores["semantic"] is None and scores["settings"]["semantic_unavailable"] == "disabled"


def test_objects_with_attributes_are_accepted():
    @dataclass
    class Row:
        gold_strategy: str
        pred_strategy: str | None
        gold_reply: str
        pred_reply: str | None

    scores = score_predictions([Row("Greeting", "Greeting", "您好", "您好")], CSC, semantic=False)
    assert scores["accuracy"] == 100.0 and scores["bleu2"] == 100.0 and scores["per_language"]["zh"]["n"] == 1


def test_bad_records_name_the_record_and_field():
    with pytest.raises(DataError, match=r"record 0.*'gold_reply'"):
        score_predictions([{"gold_strategy": "Greeting", "pred_strategy": "Greeting", "pred_reply": "x"}], CSC)
    with pytest.raises(DataError, match=r"record 0.*'pred_reply'.*string"):
        score_predictions([{"gold_strategy": "Greeting", "pred_strategy": "Greeting", "gold_reply": "x",
                            "pred_reply": 3}], CSC)
    with pytest.raises(UnknownStrategyError, match="item 0"):
        score_predictions([{"gold_strategy": "Greeting", "pred_strategy": "Hi", "gold_reply": "x",
                            "pred_reply": "x"}], CSC, semantic=False)
    with pytest.raises(DataError, match="no predictions"):
        score_predictions([], CSC)
