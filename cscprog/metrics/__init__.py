"""Metrics of the next-supporter-turn task: BLEU, ROUGE-L, semantic similarity, Distinct-n, strategy scores.

One concept per module: :mod:`~cscprog.metrics.bleu`, :mod:`~cscprog.metrics.rouge`,
:mod:`~cscprog.metrics.semantic`, :mod:`~cscprog.metrics.distinct`, :mod:`~cscprog.metrics.strategy`;
:func:`score_predictions` (:mod:`~cscprog.metrics.suite`) runs them all on per-turn predictions, and
:mod:`~cscprog.metrics.dspy_metrics` holds the metric functions for DSPy optimizers.

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.metrics import score_predictions

    scores = score_predictions(records, load_taxonomy("csc"))
    print(scores["bleu2"], scores["rouge_l"], scores["accuracy"])
    ```
"""

from __future__ import annotations

from cscprog.metrics.bleu import corpus_bleu
from cscprog.metrics.distinct import distinct_n
from cscprog.metrics.rouge import corpus_rouge_l, rouge_l
from cscprog.metrics.semantic import SemanticScorer, load_semantic_scorer
from cscprog.metrics.strategy import accuracy, confusion_matrix, macro_f1, strategy_scores
from cscprog.metrics.suite import SCORE_KEYS, score_predictions

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
