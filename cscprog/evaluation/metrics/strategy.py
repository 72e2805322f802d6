"""Strategy prediction scores: accuracy, macro-F1, the full confusion matrix and accuracy breakdowns.

Conventions (every score x100 like the paper's ACC):

* A failed prediction (``None``: no usable output after retries) is a wrong answer. It stays in every
  denominator: it lowers accuracy, is a false negative of its gold label for F1 (and a false positive of
  none), and is counted in the ``failed`` column of the confusion matrix.
* Macro-F1 is the unweighted mean of the per-label F1 over the taxonomy labels that occur as a gold label or
  as a prediction (scikit-learn's default label set). A label that is neither gold nor predicted has no
  defined F1 (0/0) and is left out rather than counted as 0 or 1; a label predicted but never gold has F1 0.
* The confusion matrix is N x N in taxonomy order (rows: gold, columns: predicted), every label present even
  when unused, plus a ``failed`` count per gold label.
* Breakdowns: per gold strategy (all labels, ``accuracy`` None when a label has no gold turn), per stage of
  the gold strategy (taxonomy stage order, then ``any``), and per any other key (domain, language).

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.evaluation.metrics.strategy import strategy_scores

    scores = strategy_scores(["Greeting", "Greeting", "Others"], ["Greeting", None, "Greeting"],
                             load_taxonomy("csc"))
    scores["accuracy"]   # 33.33 (1 of 3; the failure counts as wrong)
    scores["macro_f1"]   # Greeting: P 1/2, R 1/2 -> F1 0.5; Others: F1 0 -> mean 25.0
    ```
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from cscprog.errors import UnknownStrategyError
from cscprog.framework import Taxonomy
from cscprog.framework.taxonomy import ANY_STAGE

__all__ = ["accuracy", "breakdown", "check_labels", "confusion_matrix", "macro_f1", "per_label", "strategy_scores"]


def _pct(numerator: float, denominator: float) -> float | None:
    return 100.0 * numerator / denominator if denominator else None


def check_labels(gold: Sequence[str], predicted: Sequence[str | None], taxonomy: Taxonomy) -> None:
    """Raise when a gold label is not a taxonomy name, or a prediction is neither a name nor None.

    Raises:
        ValueError: the sequences differ in length.
        UnknownStrategyError: naming the position (``item 3, field 'pred_strategy'``) and the label.

    Example:
        ```python
        check_labels(["Greeting"], ["Greting"], csc)   # UnknownStrategyError: item 0, field 'pred_strategy'
        ```
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    names = set(taxonomy.names)
    for index, (want, got) in enumerate(zip(gold, predicted, strict=True)):
        if want not in names:
            raise UnknownStrategyError(str(want), f"item {index}, field 'gold_strategy'", taxonomy=taxonomy.name)
        if got is not None and got not in names:
            raise UnknownStrategyError(str(got), f"item {index}, field 'pred_strategy'", taxonomy=taxonomy.name)


def accuracy(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Share of exact matches x100; None predictions are wrong.

    Raises:
        ValueError: the sequences differ in length or are empty.

    Example:
        ```python
        accuracy(["Greeting", "Others"], ["Greeting", None])   # 50.0
        ```
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("accuracy of an empty set is undefined")
    return 100.0 * sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def per_label(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Support, predictions, correct, precision, recall and F1 (x100) per label, in ``labels`` order.

    ``precision`` is None for a label never predicted, ``recall`` None for a label never gold, ``f1``
    None when both are undefined (the label is unused); F1 is 0 when one side is defined and nothing matches.

    Example:
        ```python
        per_label(["A", "A"], ["A", "B"], ["A", "B"])["A"]   # support 2, correct 1, precision 100, recall 50
        ```
    """
    support = Counter(gold)
    guessed = Counter(p for p in predicted if p is not None)
    correct = Counter(g for g, p in zip(gold, predicted, strict=True) if g == p)
    table = {}
    for label in labels:
        precision = _pct(correct[label], guessed[label])
        recall = _pct(correct[label], support[label])
        if support[label] == 0 and guessed[label] == 0:
            f1 = None
        elif correct[label] == 0:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        table[label] = {"support": support[label], "predicted": guessed[label], "correct": correct[label],
                        "precision": precision, "recall": recall, "f1": f1}
    return table


def macro_f1(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> float:
    """Mean F1 x100 over the ``labels`` that occur as gold or prediction (see the module docstring).

    Raises:
        ValueError: no label of ``labels`` occurs at all.

    Example:
        ```python
        macro_f1(["A", "B"], ["A", "A"], ["A", "B", "C"])   # A: P 1/2 R 1 F 2/3; B: 0; C unused -> 33.33
        ```
    """
    scores = [row["f1"] for row in per_label(gold, predicted, labels).values() if row["f1"] is not None]
    if not scores:
        raise ValueError("macro-F1 is undefined: no label occurs as gold or prediction")
    return sum(scores) / len(scores)


def confusion_matrix(gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> dict[str, Any]:
    """The full confusion matrix in ``labels`` order: ``matrix[i][j]`` = gold ``labels[i]`` predicted ``labels[j]``.

    Returns:
        ``{"labels": [...], "matrix": [[int]], "failed": [int per gold label]}``.

    Example:
        ```python
        confusion_matrix(["A", "B"], ["B", None], ["A", "B"])
        # {'labels': ['A', 'B'], 'matrix': [[0, 1], [0, 0]], 'failed': [0, 1]}
        ```
    """
    position = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    failed = [0] * len(labels)
    for want, got in zip(gold, predicted, strict=True):
        row = position[want]
        if got is None:
            failed[row] += 1
        else:
            matrix[row][position[got]] += 1
    return {"labels": list(labels), "matrix": matrix, "failed": failed}


def breakdown(
    gold: Sequence[str], predicted: Sequence[str | None], keys: Sequence[str], order: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """Accuracy per group: ``{key: {"n", "correct", "failures", "accuracy"}}``.

    Args:
        gold: Gold labels.
        predicted: Predictions (None = failed).
        keys: The group of every item (its gold stage, domain, language...).
        order: Groups listed first and always present (``accuracy`` None when empty); others follow sorted.

    Example:
        ```python
        breakdown(["A", "B", "A"], ["A", "A", None], ["x", "x", "y"])
        # {'x': {'n': 2, 'correct': 1, 'failures': 0, 'accuracy': 50.0}, 'y': {..., 'accuracy': 0.0}}
        ```
    """
    n, right, failures = Counter(), Counter(), Counter()
    for want, got, key in zip(gold, predicted, keys, strict=True):
        n[key] += 1
        right[key] += want == got
        failures[key] += got is None
    groups = list(order) + sorted(k for k in n if k not in set(order))
    return {key: {"n": n[key], "correct": right[key], "failures": failures[key], "accuracy": _pct(right[key], n[key])}
            for key in groups}


def strategy_scores(
    gold: Sequence[str],
    predicted: Sequence[str | None],
    taxonomy: Taxonomy,
    *,
    groups: dict[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Every strategy score of a run.

    Args:
        gold: Gold strategy names (taxonomy names).
        predicted: Predicted names, None for a failed prediction.
        taxonomy: The label set and the stages.
        groups: Extra breakdowns by name, e.g. ``{"domain": [...], "language": [...]}`` (one key per item);
            each becomes ``per_<name>`` in the result.

    Returns:
        ``accuracy``, ``macro_f1``, ``n``, ``failures``, ``per_label`` (precision/recall/F1),
        ``confusion``, ``per_strategy``, ``per_stage`` and ``per_<group>``.

    Raises:
        UnknownStrategyError: a label is not in the taxonomy (naming the item and field).
        ValueError: empty input or lengths differ.

    Example:
        ```python
        strategy_scores(gold, pred, csc, groups={"domain": domains})["per_domain"]
        ```
    """
    check_labels(gold, predicted, taxonomy)
    labels = list(taxonomy.names)
    stages = [taxonomy.stage_of(label) for label in gold]
    stage_order = list(taxonomy.stage_names) + ([ANY_STAGE] if ANY_STAGE in stages else [])
    result: dict[str, Any] = {
        "accuracy": accuracy(gold, predicted),
        "macro_f1": macro_f1(gold, predicted, labels),
        "n": len(gold),
        "failures": sum(p is None for p in predicted),
        "per_label": per_label(gold, predicted, labels),
        "confusion": confusion_matrix(gold, predicted, labels),
        "per_strategy": breakdown(gold, predicted, list(gold), order=labels),
        "per_stage": breakdown(gold, predicted, stages, order=stage_order),
    }
    for name, keys in (groups or {}).items():
        if len(keys) != len(gold):
            raise ValueError(f"group {name!r} has {len(keys)} keys for {len(gold)} items")
        result[f"per_{name}"] = breakdown(gold, predicted, list(keys))
    return result
