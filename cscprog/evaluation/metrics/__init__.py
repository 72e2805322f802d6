"""Metrics of the next-supporter-turn task: BLEU, ROUGE-L, semantic similarity, Distinct-n, strategy scores.

One concept per module: :mod:`~cscprog.evaluation.metrics.bleu`, :mod:`~cscprog.evaluation.metrics.rouge`,
:mod:`~cscprog.evaluation.metrics.semantic`, :mod:`~cscprog.evaluation.metrics.distinct`,
:mod:`~cscprog.evaluation.metrics.strategy`;
:func:`score_predictions` (:mod:`~cscprog.evaluation.metrics.suite`) runs them all on per-turn predictions, and
:mod:`~cscprog.evaluation.metrics.dspy_metrics` holds the metric functions for DSPy optimizers.

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.evaluation.metrics import score_predictions

    scores = score_predictions(records, load_taxonomy("csc"))
    print(scores["bleu2"], scores["rouge_l"], scores["accuracy"])
    ```
"""

from __future__ import annotations

from cscprog.evaluation.metrics.bleu import corpus_bleu
from cscprog.evaluation.metrics.distinct import distinct_n
from cscprog.evaluation.metrics.rouge import corpus_rouge_l, rouge_l
from cscprog.evaluation.metrics.semantic import SemanticScorer, load_semantic_scorer
from cscprog.evaluation.metrics.strategy import accuracy, confusion_matrix, macro_f1, strategy_scores
from cscprog.evaluation.metrics.suite import SCORE_KEYS, score_predictions

__all__ = [
    "SCORE_KEYS",
    "SemanticScorer",
    "accuracy",
    "confusion_matrix",
    "corpus_bleu",
    "corpus_rouge_l",
    "distinct_n",
    "load_semantic_scorer",
    "macro_f1",
    "rouge_l",
    "score_predictions",
    "strategy_scores",
]
