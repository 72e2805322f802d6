"""Every metric of a next-turn evaluation from its per-turn predictions: :func:`score_predictions`.

A record is one supporter turn: a mapping (a line of ``predictions.jsonl``) or any object with the same
attributes (:class:`cscprog.agents.responder.TurnPrediction`). Fields read:

* ``gold_strategy`` (required, a taxonomy name), ``pred_strategy`` (a taxonomy name, or None when failed);
* ``gold_reply`` (required), ``pred_reply`` (None or "" when failed);
* ``failure`` (optional: the reason the prediction failed; any non-empty value marks a failure);
* ``domain`` and ``language`` (optional, for the breakdowns; the language is detected from the gold reply
  when absent).

Every metric is computed under a profile's conventions (``standard`` or ``paper``,
:mod:`~cscprog.evaluation.metrics.conventions`), carries its signature (``signatures``) and a 95% percentile
bootstrap interval over turns (``intervals``; resamples and seed configurable). A metric that could not be
computed is None, with the reason in ``unavailable`` (never a silent dash).

Failures are scored as wrong and never dropped: a missing strategy (None) counts as a miss, a missing reply
(None or "") as an empty text. A record counts in ``failures`` when its ``failure`` is set or either
prediction is missing; a part that did succeed (e.g. the strategy of a turn whose reply failed) is scored as
it is.

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.evaluation.metrics import score_predictions

    scores = score_predictions([
        {"gold_strategy": "Greeting", "pred_strategy": "Greeting",
         "gold_reply": "Hello, how can I help?", "pred_reply": "Hello, how may I help?"},
    ], load_taxonomy("csc"))
    scores["accuracy"], scores["bleu2"]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from cscprog.data import detect_language
from cscprog.errors import DataError
from cscprog.evaluation.intervals import DEFAULT_RESAMPLES, bootstrap_intervals
from cscprog.evaluation.metrics.bleu import AUTO, SMOOTH_METHOD
from cscprog.evaluation.metrics.columns import COLUMN_KEYS, Scorers, metric_columns
from cscprog.evaluation.metrics.conventions import Profile, get_profile
from cscprog.evaluation.metrics.distinct import distinct_n
from cscprog.evaluation.metrics.semantic import METHOD, SemanticScorer, load_semantic_scorer
from cscprog.evaluation.metrics.strategy import strategy_scores
from cscprog.framework import Taxonomy

__all__ = ["SCORE_KEYS", "score_predictions"]

logger = logging.getLogger(__name__)

SCORE_KEYS = ("bleu2", "bleu4", "rouge_l", "bertscore", "bleurt", "semantic", "accuracy", "macro_f1", "n", "failures")
"""The headline keys of every result, in the order reports print them."""

NO_DOMAIN = "(none)"

NOT_CONFIGURED = "not computed: scorers not loaded (cscprog evaluate loads them from the [metrics] config)"

_MISSING = object()


def _field(record: Any, name: str, index: int, *, required: bool) -> Any:
    value = record.get(name, _MISSING) if isinstance(record, Mapping) else getattr(record, name, _MISSING)
    if value is _MISSING:
        if required:
            raise DataError("<predictions>", f"missing field {name!r}", record=index, field=name)
        return None
    return value


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def score_predictions(
    records: Iterable[Any],
    taxonomy: Taxonomy,
    *,
    semantic: SemanticScorer | bool = True,
    tokenize: str = AUTO,
    profile: str | Profile = "standard",
    scorers: Scorers | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Score per-turn predictions: reply overlap, semantic similarity, diversity and strategy scores.

    Args:
        records: Per-turn records (mappings or objects, see the module docstring).
        taxonomy: The strategy label set.
        semantic: True loads the packaged embedding model (None score with a reason when unavailable);
            False skips it (None with reason "disabled"); or pass a loaded :class:`SemanticScorer`.
        tokenize: BLEU tokenizer of a corpus-BLEU profile: ``"auto"`` (per pair by language) or a sacrebleu
            tokenizer name.
        profile: ``standard``, ``paper`` or a :class:`Profile`.
        scorers: BERTScore/BLEURT scorers (default: none; their scores are None with the reason).
        resamples: Bootstrap resamples of every interval.
        seed: Bootstrap seed.

    Returns:
        ``bleu2``, ``bleu4``, ``rouge_l``, ``bertscore``, ``bleurt``, ``semantic``, ``accuracy``, ``macro_f1``
        (all x100, rounded to 4 places), ``n``, ``failures``, ``distinct1``, ``distinct2``, ``confusion``,
        ``per_strategy``, ``per_stage``, ``per_domain``, ``per_language``, ``per_label``, ``signatures``,
        ``intervals``, ``unavailable``, ``metrics`` (profile, resamples, seed) and ``settings`` (tokenizer,
        smoothing, semantic model/method/reason).

    Raises:
        DataError: no records, a required field is missing, or a text field is not a string (naming the
            record and field).
        UnknownStrategyError: a strategy label is not in the taxonomy (naming the item and field).

    Example:
        ```python
        scores = score_predictions(turn_predictions, load_taxonomy("csc"), semantic=False)
        ```
    """
    gold_strategies: list[str] = []
    pred_strategies: list[str | None] = []
    gold_replies: list[str] = []
    pred_replies: list[str | None] = []
    domains: list[str] = []
    languages: list[str] = []
    failures = 0
    for index, record in enumerate(records):
        gold_strategy = _field(record, "gold_strategy", index, required=True)
        pred_strategy = _field(record, "pred_strategy", index, required=True)
        gold_reply = _field(record, "gold_reply", index, required=True)
        pred_reply = _field(record, "pred_reply", index, required=True)
        failure = _field(record, "failure", index, required=False)
        for name, value, optional in (("gold_reply", gold_reply, False), ("pred_reply", pred_reply, True)):
            if not isinstance(value, str) and not (optional and value is None):
                raise DataError("<predictions>", f"expected a string, got {type(value).__name__}", record=index,
                                field=name)
        failed = bool(failure) or pred_strategy is None or not pred_reply
        failures += failed
        gold_strategies.append(gold_strategy)
        pred_strategies.append(pred_strategy)
        gold_replies.append(gold_reply)
        pred_replies.append(pred_reply)
        domains.append(_field(record, "domain", index, required=False) or NO_DOMAIN)
        languages.append(_field(record, "language", index, required=False) or detect_language(gold_reply))
    if not gold_strategies:
        raise DataError("<predictions>", "no predictions to score")

    strategies = strategy_scores(gold_strategies, pred_strategies, taxonomy,
                                 groups={"domain": domains, "language": languages})
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    if tokenize != AUTO and chosen.bleu.level == "corpus":
        chosen = replace(chosen, bleu=replace(chosen.bleu, tokenize=tokenize))
    scorer, reason = (semantic, None) if isinstance(semantic, SemanticScorer) else (
        load_semantic_scorer() if semantic else (None, "disabled")
    )
    base = scorers or Scorers(reasons={"bertscore": NOT_CONFIGURED, "bleurt": NOT_CONFIGURED})
    chosen_scorers = Scorers(base.bertscore, base.bleurt, scorer, {**base.reasons, "semantic": reason or ""})
    columns = metric_columns(pred_replies, gold_replies, gold_strategies, pred_strategies, taxonomy.names, chosen,
                             chosen_scorers)
    computed = {key: column.statistic for key, column in columns.items() if column.statistic is not None}
    intervals = bootstrap_intervals(computed, resamples=resamples, seed=seed)
    result: dict[str, Any] = {
        **{key: _round(intervals[key].point) if key in intervals else None for key in COLUMN_KEYS},
        "n": len(gold_strategies),
        "failures": failures,
        "distinct1": _round(distinct_n(pred_replies, 1)),
        "distinct2": _round(distinct_n(pred_replies, 2)),
        "confusion": strategies["confusion"],
        "per_strategy": strategies["per_strategy"],
        "per_stage": strategies["per_stage"],
        "per_domain": strategies["per_domain"],
        "per_language": strategies["per_language"],
        "per_label": strategies["per_label"],
        "signatures": {key: column.signature for key, column in columns.items()},
        "intervals": {key: interval.as_dict() for key, interval in intervals.items()},
        "unavailable": {key: column.unavailable for key, column in columns.items() if column.statistic is None},
        "metrics": {"profile": chosen.name, "description": chosen.description, "resamples": resamples, "seed": seed,
                    "confidence": 0.95, "interval": "percentile bootstrap over turns"},
        "settings": {
            "bleu_tokenize": chosen.bleu.tokenize,
            "bleu_smoothing": chosen.bleu.smooth if chosen.bleu.level == "sentence" else SMOOTH_METHOD,
            "rouge": chosen.rouge.signature(),
            "semantic_model": scorer.model if scorer is not None else None,
            "semantic_method": METHOD if scorer is not None else None,
            "semantic_unavailable": reason,
            "taxonomy": taxonomy.name,
        },
    }
    return result
