"""Per-turn metric columns of a profile: each score as resamplable per-turn rows, with its signature.

:func:`metric_columns` computes, for one list of turns, every metric of a profile
(:mod:`cscprog.evaluation.metrics.conventions`) as a :class:`Column`: the key (``bleu2``, ``rouge_l``, ...),
the signature, and a :class:`~cscprog.evaluation.intervals.Statistic` (per-turn rows plus the function of their
sums that gives the score), so the same object yields the point score, a bootstrap interval and paired tests
against another run on the same turns. A metric that cannot be computed (no model configured, package missing)
is a column with ``statistic=None`` and the reason.

Row layouts: sentence-level metrics (sentence BLEU, ROUGE-L, BERTScore, BLEURT, the static similarity, accuracy)
are one value per turn, scored as the mean x100 (BLEURT's regression output too, as the paper's BR column is);
corpus BLEU rows are n-gram counts
(:mod:`~cscprog.evaluation.metrics.bleu_stats`); macro-F1 rows are one-hot gold, predicted and correct labels.

Example:
    ```python
    from cscprog.evaluation.metrics.columns import metric_columns, Scorers
    from cscprog.evaluation.metrics.conventions import get_profile

    columns = metric_columns(hyps, refs, gold, pred, labels, get_profile("paper"), Scorers())
    columns["bleu2"].statistic.point(), columns["bleu2"].signature
    ```
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cscprog.evaluation.intervals import Statistic
from cscprog.evaluation.metrics.bleu import bleu_tokenize, tokenizer_for
from cscprog.evaluation.metrics.bleu_stats import corpus_bleu_from_sums, ngram_row, sentence_bleu
from cscprog.evaluation.metrics.conventions import Profile
from cscprog.evaluation.metrics.rouge import rouge_l_tokens
from cscprog.evaluation.metrics.semantic import METHOD, SemanticScorer
from cscprog.evaluation.metrics.tokens import rouge_score_tokens, word_tokens

__all__ = ["COLUMN_KEYS", "Column", "Scorers", "metric_columns"]

COLUMN_KEYS = ("bleu2", "bleu4", "rouge_l", "bertscore", "bleurt", "semantic", "accuracy", "macro_f1")
"""Every column, in report order."""


@dataclass
class Column:
    """One metric over the turns.

    Attributes:
        key: The result key (``bleu2``, ...).
        signature: How it was computed.
        statistic: Per-turn rows and their score; None when the metric could not be computed.
        unavailable: Why not (None when computed).
    """

    key: str
    signature: str
    statistic: Statistic | None
    unavailable: str | None = None


@dataclass
class Scorers:
    """The model-based scorers available to a scoring run (each None with a reason when unavailable).

    Attributes:
        bertscore: A :class:`~cscprog.evaluation.metrics.neural.BertScoreScorer`, or None.
        bleurt: A :class:`~cscprog.evaluation.metrics.neural.BleurtScorer`, or None.
        semantic: The static wordllama scorer, or None.
        reasons: ``{"bertscore": why, "bleurt": why, "semantic": why}`` for the missing ones.
    """

    bertscore: Any = None
    bleurt: Any = None
    semantic: SemanticScorer | None = None
    reasons: dict[str, str] = field(default_factory=dict)


def _corpus_bleu(rows: np.ndarray, max_order: int) -> Statistic:
    picked = rows[:, [0, 1, *range(2, 2 + max_order), *range(6, 6 + max_order)]]
    return Statistic(picked, lambda sums, counts: corpus_bleu_from_sums(sums, max_order))


def _bleu_columns(hyps: Sequence[str], refs: Sequence[str], profile: Profile) -> dict[str, Column]:
    convention = profile.bleu
    if convention.tokenize == "char":
        pairs = [(list(h), list(r)) for h, r in zip(hyps, refs, strict=True)]
    else:
        pairs = []
        for hyp, ref in zip(hyps, refs, strict=True):
            name = tokenizer_for(ref, convention.tokenize)
            pairs.append((bleu_tokenize(hyp, name).split(), bleu_tokenize(ref, name).split()))
    rows = np.array([ngram_row(h, r, 4) for h, r in pairs], dtype=np.float64).reshape(len(pairs), 10)
    columns = {}
    for order in (2, 4):
        key = f"bleu{order}"
        if convention.level == "corpus":
            statistic = _corpus_bleu(rows, order)
        else:
            picked = rows[:, [0, 1, *range(2, 2 + order), *range(6, 6 + order)]]
            statistic = Statistic.mean([sentence_bleu(row, order) for row in picked])
        columns[key] = Column(key, convention.signature(order), statistic)
    return columns


def _rouge_column(hyps: Sequence[str], refs: Sequence[str], profile: Profile) -> Column:
    if profile.rouge.tokens == "rouge-score":
        values = []
        for hyp, ref in zip(hyps, refs, strict=True):
            h, r = rouge_score_tokens(hyp), rouge_score_tokens(ref)
            values.append(rouge_l_tokens(h, r) if h and r else 0.0)
    else:
        values = [rouge_l_tokens(word_tokens(h), word_tokens(r)) for h, r in zip(hyps, refs, strict=True)]
    return Column("rouge_l", profile.rouge.signature(), Statistic.mean(values))


def _macro_f1(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> Statistic:
    index = {label: i for i, label in enumerate(labels)}
    size = len(labels)
    rows = np.zeros((len(gold), 3 * size))
    for turn, (want, got) in enumerate(zip(gold, pred, strict=True)):
        rows[turn, index[want]] = 1
        if got is not None:
            rows[turn, size + index[got]] = 1
            if got == want:
                rows[turn, 2 * size + index[got]] = 1

    def score(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        support, guessed, correct = sums[:, :size], sums[:, size : 2 * size], sums[:, 2 * size :]
        used = (support + guessed) > 0
        f1 = np.where(used, 2 * correct / np.where(used, support + guessed, 1), 0.0)
        return 100.0 * f1.sum(axis=1) / np.maximum(used.sum(axis=1), 1)

    return Statistic(rows, score)


def _model_column(key: str, scorer: Any, reason: str | None, hyps: Sequence[str], refs: Sequence[str],
                  scale: float = 100.0) -> Column:
    if scorer is None:
        return Column(key, f"{key}|not computed", None, reason or "not configured")
    try:
        values = scorer.score(hyps, refs)
    except ValueError as error:
        return Column(key, scorer.signature, None, str(error))
    return Column(key, scorer.signature, Statistic.mean(values, scale=scale))


def _semantic_column(scorers: Scorers, hyps: Sequence[str], refs: Sequence[str]) -> Column:
    semantic = scorers.semantic
    if semantic is None:
        return Column("semantic", "WL-F1|not computed", None, scorers.reasons.get("semantic") or "disabled")
    values = [semantic.similarity(h, r) for h, r in zip(hyps, refs, strict=True)]
    return Column("semantic", f"WL-F1|{semantic.model}|{METHOD}", Statistic.mean(values))


def metric_columns(
    hypotheses: Sequence[str | None],
    references: Sequence[str],
    gold_strategies: Sequence[str],
    pred_strategies: Sequence[str | None],
    labels: Sequence[str],
    profile: Profile,
    scorers: Scorers,
    keys: Collection[str] = COLUMN_KEYS,
) -> dict[str, Column]:
    """The columns ``keys`` (default all) of ``profile`` for these turns (a failed reply, None, is scored as empty).

    Raises:
        ValueError: the sequences differ in length or are empty.

    Example:
        ```python
        columns = metric_columns(hyps, refs, gold, pred, taxonomy.names, get_profile("standard"), Scorers())
        ```
    """
    lengths = {len(hypotheses), len(references), len(gold_strategies), len(pred_strategies)}
    if len(lengths) != 1:
        raise ValueError(f"hypotheses, references and strategies differ in length: {sorted(lengths)}")
    if not references:
        raise ValueError("no turns to score")
    unknown = set(keys) - set(COLUMN_KEYS)
    if unknown:
        raise ValueError(f"unknown metric column(s) {sorted(unknown)}; known: {', '.join(COLUMN_KEYS)}")
    hyps = [h or "" for h in hypotheses]
    columns: dict[str, Column] = {}
    if {"bleu2", "bleu4"} & set(keys):
        columns.update(_bleu_columns(hyps, references, profile))
    if "rouge_l" in keys:
        columns["rouge_l"] = _rouge_column(hyps, references, profile)
    if "bertscore" in keys:
        columns["bertscore"] = _model_column("bertscore", scorers.bertscore, scorers.reasons.get("bertscore"), hyps,
                                             references)
    if "bleurt" in keys:
        columns["bleurt"] = _model_column("bleurt", scorers.bleurt, scorers.reasons.get("bleurt"), hyps, references)
    if "semantic" in keys:
        columns["semantic"] = _semantic_column(scorers, hyps, references)
    correct = [float(g == p) for g, p in zip(gold_strategies, pred_strategies, strict=True)]
    columns["accuracy"] = Column("accuracy", "ACC|exact strategy match|failure=wrong", Statistic.mean(correct))
    if "macro_f1" in keys:
        columns["macro_f1"] = Column("macro_f1", "macro-F1|labels used as gold or prediction|failure=wrong",
                                     _macro_f1(gold_strategies, pred_strategies, labels))
    return {key: columns[key] for key in COLUMN_KEYS if key in keys}
