"""Strategy accuracy, macro-F1, confusion matrix and breakdowns against hand-computed values."""

from __future__ import annotations

import pytest

from cscprog.errors import UnknownStrategyError
from cscprog.evaluation.metrics.strategy import (
    accuracy,
    breakdown,
    confusion_matrix,
    macro_f1,
    per_label,
    strategy_scores,
)
from cscprog.framework import load_taxonomy

CSC = load_taxonomy("csc")

GOLD = ["Greeting", "Greeting", "Emotional Management", "Information Delivery", "Information Delivery", "Others"]
PRED = ["Greeting", None, "Information Delivery", "Information Delivery", "Emotional Management", "Greeting"]


def test_accuracy_counts_failures_as_wrong():
    # correct: positions 0 and 3 -> 2 of 6 (the failure at position 1 stays in the denominator)
    assert accuracy(GOLD, PRED) == pytest.approx(100 * 2 / 6)


def test_per_label_and_macro_f1():
    table = per_label(GOLD, PRED, CSC.names)
    # Greeting: support 2, predicted 2 (pos 0, 5), correct 1 -> P 50, R 50, F1 50
    assert table["Greeting"] == {"support": 2, "predicted": 2, "correct": 1, "precision": 50.0, "recall": 50.0,
                                 "f1": 50.0}
    # Information Delivery: support 2, predicted 2 (pos 2, 3), correct 1 -> F1 50
    assert table["Information Delivery"]["f1"] == pytest.approx(50.0)
    # Emotional Management: support 1, predicted 1, correct 0 -> F1 0; Others: support 1, never predicted -> 0
    assert table["Emotional Management"]["f1"] == 0.0
    assert table["Others"]["f1"] == 0.0 and table["Others"]["precision"] is None
    # Feedback Request: neither gold nor predicted -> undefined, left out of the mean
    assert table["Feedback Request"]["f1"] is None
    # macro over the 4 used labels: (50 + 50 + 0 + 0) / 4 = 25
    assert macro_f1(GOLD, PRED, CSC.names) == pytest.approx(25.0)


def test_macro_f1_counts_a_label_predicted_but_never_gold():
    # A: P 1/2, R 1 -> F1 2/3; B: gold once, never right -> 0; C unused -> (66.67 + 0) / 2 = 33.33
    assert macro_f1(["A", "B"], ["A", "A"], ["A", "B", "C"]) == pytest.approx(100 / 3)


def test_confusion_matrix_is_full_and_in_taxonomy_order():
    confusion = confusion_matrix(GOLD, PRED, CSC.names)
    assert confusion["labels"] == list(CSC.names)
    assert len(confusion["matrix"]) == 12 and all(len(row) == 12 for row in confusion["matrix"])
    at = {name: i for i, name in enumerate(CSC.names)}
    matrix = confusion["matrix"]
    assert matrix[at["Greeting"]][at["Greeting"]] == 1
    assert matrix[at["Emotional Management"]][at["Information Delivery"]] == 1
    assert matrix[at["Others"]][at["Greeting"]] == 1
    assert confusion["failed"][at["Greeting"]] == 1
    # every item is counted once: 5 in the matrix + 1 failed
    assert sum(map(sum, matrix)) + sum(confusion["failed"]) == len(GOLD)


def test_breakdowns():
    scores = strategy_scores(GOLD, PRED, CSC, groups={"domain": ["a", "a", "b", "b", "b", "a"]})
    assert scores["n"] == 6 and scores["failures"] == 1
    assert scores["per_strategy"]["Greeting"] == {"n": 2, "correct": 1, "failures": 1, "accuracy": 50.0}
    assert scores["per_strategy"]["Feedback Request"]["accuracy"] is None  # every label listed
    assert list(scores["per_strategy"]) == list(CSC.names)
    # stages: Greeting -> Connecting (2 items, 1 right); EM -> its stage; ID -> Resolving (2 items, 1 right)
    stages = scores["per_stage"]
    assert stages["Connecting"]["n"] == 2 and stages["Connecting"]["accuracy"] == 50.0
    assert stages["Resolving"] == {"n": 2, "correct": 1, "failures": 0, "accuracy": 50.0}
    assert stages["any"] == {"n": 1, "correct": 0, "failures": 0, "accuracy": 0.0}  # Others
    assert list(stages)[:5] == list(CSC.stage_names)
    # domain a: pos 0 (right), 1 (failed), 5 (wrong) -> 1/3; domain b: pos 2 (wrong), 3 (right), 4 (wrong) -> 1/3
    assert scores["per_domain"]["a"]["accuracy"] == pytest.approx(100 / 3)
    assert scores["per_domain"]["b"]["correct"] == 1


def test_breakdown_order_lists_empty_groups():
    result = breakdown(["A"], ["A"], ["x"], order=["y"])
    assert list(result) == ["y", "x"] and result["y"]["accuracy"] is None


def test_unknown_labels_are_errors_naming_the_item():
    with pytest.raises(UnknownStrategyError, match=r"item 1, field 'pred_strategy'.*Greting"):
        strategy_scores(["Greeting", "Greeting"], ["Greeting", "Greting"], CSC)
    with pytest.raises(UnknownStrategyError, match=r"item 0, field 'gold_strategy'"):
        strategy_scores(["Hello"], ["Greeting"], CSC)
    with pytest.raises(ValueError):
        accuracy([], [])
