"""Metrics of the next-supporter-turn task: BLEU, ROUGE-L, BERTScore, BLEURT, static similarity, strategy scores.

One concept per module: :mod:`~cscprog.evaluation.metrics.bleu`, :mod:`~cscprog.evaluation.metrics.bleu_stats`,
:mod:`~cscprog.evaluation.metrics.rouge`, :mod:`~cscprog.evaluation.metrics.neural` (BERTScore, BLEURT),
:mod:`~cscprog.evaluation.metrics.packaged_encoder`, :mod:`~cscprog.evaluation.metrics.semantic`,
:mod:`~cscprog.evaluation.metrics.distinct`, :mod:`~cscprog.evaluation.metrics.strategy`; the conventions and
their signatures live in :mod:`~cscprog.evaluation.metrics.conventions` (profiles ``standard`` and ``paper``),
per-turn resamplable columns in :mod:`~cscprog.evaluation.metrics.columns`;
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
from cscprog.evaluation.metrics.columns import COLUMN_KEYS, Column, Scorers, metric_columns
from cscprog.evaluation.metrics.conventions import PROFILES, Profile, get_profile
from cscprog.evaluation.metrics.distinct import distinct_n
from cscprog.evaluation.metrics.rouge import corpus_rouge_l, rouge_l
from cscprog.evaluation.metrics.semantic import SemanticScorer, load_semantic_scorer
from cscprog.evaluation.metrics.strategy import accuracy, confusion_matrix, macro_f1, strategy_scores
from cscprog.evaluation.metrics.suite import SCORE_KEYS, score_predictions

__all__ = [
    "COLUMN_KEYS",
    "PROFILES",
    "SCORE_KEYS",
    "Column",
    "Profile",
    "Scorers",
    "SemanticScorer",
    "accuracy",
    "confusion_matrix",
    "corpus_bleu",
    "corpus_rouge_l",
    "distinct_n",
    "get_profile",
    "load_semantic_scorer",
    "macro_f1",
    "metric_columns",
    "rouge_l",
    "score_predictions",
    "strategy_scores",
]
