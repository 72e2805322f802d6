"""Metric functions for DSPy optimizers on the next-turn task (examples from ``next_turn_examples``).

The gold example carries ``strategy`` and ``reply``; the prediction (of ``ResponseGenerator``) carries
``strategy`` and ``reply``. Every score is in [0, 1].

* 3-argument metrics ``metric(example, pred, trace=None) -> float`` (Evaluate, BootstrapFewShot, COPRO,
  MIPROv2): :func:`strategy_accuracy`, :func:`reply_similarity` (ROUGE-L F), :func:`reply_bleu2`
  (sentence BLEU-2), and :func:`combined_metric` (a weighted mean of the two).
* 5-argument feedback metrics for GEPA ``metric(gold, pred, trace, pred_name, pred_trace) ->
  dspy.Prediction(score, feedback)``: :func:`strategy_feedback`, :func:`reply_feedback` and
  :func:`combined_feedback`. The feedback names the expected strategy (with its stage and definition) and
  what the reply missed (the reference reply and the reference words it left out); when GEPA asks about one
  predictor (``pred_name``), the part about that predictor comes first.

A prediction with no strategy or no reply (a failed generation) scores 0 on that part.

Example:
    ```python
    import dspy
    from cscprog.evaluation.metrics.dspy_metrics import combined_metric

    metric = combined_metric({"strategy": 0.7, "reply": 0.3})
    evaluate = dspy.Evaluate(devset=dev, metric=metric, num_threads=4)
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dspy

from cscprog.data import detect_language
from cscprog.errors import UnknownStrategyError
from cscprog.evaluation.metrics.bleu import corpus_bleu
from cscprog.evaluation.metrics.rouge import rouge_l
from cscprog.evaluation.metrics.tokens import ngrams, word_tokens
from cscprog.framework import Taxonomy, load_taxonomy

__all__ = [
    "DEFAULT_WEIGHTS",
    "combined_feedback",
    "combined_metric",
    "reply_bleu2",
    "reply_feedback",
    "reply_similarity",
    "strategy_accuracy",
    "strategy_feedback",
]

DEFAULT_WEIGHTS = {"strategy": 0.5, "reply": 0.5}
"""Weights of :func:`combined_metric` and :func:`combined_feedback` when none are given."""

MISSED_SHOWN = 12
"""How many missed reference words (or Chinese character pairs) a feedback text lists at most."""

Metric = Callable[..., float]
FeedbackMetric = Callable[..., dspy.Prediction]


def _get(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    try:
        return getattr(item, name)
    except (AttributeError, KeyError):
        return None


def strategy_accuracy(example: Any, pred: Any, trace: Any = None) -> float:
    """1.0 when the predicted strategy equals the gold one, else 0.0 (a missing prediction is 0.0).

    Example:
        ```python
        strategy_accuracy(dspy.Example(strategy="Greeting"), dspy.Prediction(strategy="Greeting"))   # 1.0
        ```
    """
    want, got = _get(example, "strategy"), _get(pred, "strategy")
    return 1.0 if got is not None and want == got else 0.0


def reply_similarity(example: Any, pred: Any, trace: Any = None) -> float:
    """ROUGE-L F in [0, 1] between the predicted and the gold reply (0.0 when no reply was produced).

    Example:
        ```python
        reply_similarity(dspy.Example(reply="your card is blocked"), dspy.Prediction(reply="card blocked"))
        # LCS 2: P 1, R 1/2 -> 0.667
        ```
    """
    got = _get(pred, "reply")
    return rouge_l(got, _get(example, "reply") or "") if got else 0.0


def reply_bleu2(example: Any, pred: Any, trace: Any = None) -> float:
    """BLEU-2 of the single pair in [0, 1] (sacrebleu, per-language tokenizer, ``exp`` smoothing).

    Example:
        ```python
        reply_bleu2(dspy.Example(reply="your card is blocked"), dspy.Prediction(reply="the card is blocked"))
        # sqrt(3/4 * 2/3) = 0.707
        ```
    """
    got, want = _get(pred, "reply"), _get(example, "reply") or ""
    if not got or not want:
        return 0.0
    return corpus_bleu([got], [want], max_order=2) / 100.0


_REPLY_METRICS: dict[str, Metric] = {"rouge_l": reply_similarity, "bleu2": reply_bleu2}


def _weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    chosen = dict(DEFAULT_WEIGHTS if weights is None else weights)
    unknown = set(chosen) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown metric weight(s) {sorted(unknown)}; use 'strategy' and 'reply'")
    if any(value < 0 for value in chosen.values()) or sum(chosen.values()) <= 0:
        raise ValueError(f"metric weights must be non-negative with a positive sum, got {chosen}")
    total = sum(chosen.values())
    return {name: chosen.get(name, 0.0) / total for name in DEFAULT_WEIGHTS}


def _reply_metric(reply: str) -> Metric:
    if reply not in _REPLY_METRICS:
        raise ValueError(f"unknown reply metric {reply!r}; choose from {sorted(_REPLY_METRICS)}")
    return _REPLY_METRICS[reply]


def combined_metric(weights: Mapping[str, float] | None = None, *, reply: str = "rouge_l") -> Metric:
    """A metric ``w_s * strategy_accuracy + w_r * reply score``, the weights normalized to sum to 1.

    Args:
        weights: ``{"strategy": w_s, "reply": w_r}`` (non-negative, positive sum); default 0.5 / 0.5.
        reply: The reply score: ``"rouge_l"`` (:func:`reply_similarity`) or ``"bleu2"`` (:func:`reply_bleu2`).

    Raises:
        ValueError: unknown weight names, negative weights or an unknown reply metric.

    Example:
        ```python
        metric = combined_metric({"strategy": 3, "reply": 1})   # 0.75 * accuracy + 0.25 * ROUGE-L
        ```
    """
    share = _weights(weights)
    reply_score = _reply_metric(reply)

    def metric(example: Any, pred: Any, trace: Any = None) -> float:
        return share["strategy"] * strategy_accuracy(example, pred) + share["reply"] * reply_score(example, pred)

    metric.__name__ = f"combined_{reply}"
    return metric


# --- feedback (GEPA) ------------------------------------------------------------------------------------------


def _describe_strategy(name: str, taxonomy: Taxonomy) -> str:
    try:
        strategy = taxonomy.strategy(name)
    except UnknownStrategyError:  # a gold label outside the taxonomy: name it without a definition
        return repr(name)
    return f"{strategy.name} ({strategy.abbr}, stage {strategy.stage}): {strategy.definition}"


def _strategy_text(example: Any, pred: Any, taxonomy: Taxonomy) -> str:
    want, got = _get(example, "strategy"), _get(pred, "strategy")
    if got is None:
        return f"No strategy was produced. The expected strategy was {_describe_strategy(want, taxonomy)}"
    if got == want:
        return f"The strategy {want} was correct."
    return (f"The strategy was wrong: it chose {got}, but the expected strategy was "
            f"{_describe_strategy(want, taxonomy)}")


def _missed(reply: str, reference: str) -> list[str]:
    if detect_language(reference) == "zh":
        have = set(ngrams(word_tokens(reply), 2))
        spans = ["".join(pair) for pair in ngrams(word_tokens(reference), 2) if pair not in have]
    else:
        have_words = set(word_tokens(reply))
        spans = [word for word in word_tokens(reference) if word not in have_words]
    return list(dict.fromkeys(spans))[:MISSED_SHOWN]


def _reply_text(example: Any, pred: Any, reply: str) -> str:
    want, got = _get(example, "reply") or "", _get(pred, "reply")
    if not got:
        return f"No reply was produced. The reference reply was: {want!r}"
    score = _reply_metric(reply)(example, pred)
    missed = _missed(got, want)
    gap = f" It missed these parts of the reference: {', '.join(missed)}." if missed else ""
    return f"The reply scored {score:.2f} ({reply}) against the reference reply {want!r}.{gap}"


def _ordered(parts: dict[str, str], pred_name: str | None) -> str:
    first = "reply" if pred_name and "reply" in pred_name else "strategy"
    return " ".join([parts[first], *(text for key, text in parts.items() if key != first)])


def strategy_feedback(
    gold: Any, pred: Any, trace: Any = None, pred_name: str | None = None, pred_trace: Any = None,
    *, taxonomy: Taxonomy | None = None,
) -> dspy.Prediction:
    """GEPA metric: strategy accuracy with feedback naming the expected strategy and its definition.

    Example:
        ```python
        strategy_feedback(dspy.Example(strategy="Greeting"), dspy.Prediction(strategy="Others")).feedback
        # "The strategy was wrong: it chose Others, but the expected strategy was Greeting (GT, ...): ..."
        ```
    """
    return dspy.Prediction(score=strategy_accuracy(gold, pred),
                           feedback=_strategy_text(gold, pred, taxonomy or load_taxonomy("csc")))


def reply_feedback(
    gold: Any, pred: Any, trace: Any = None, pred_name: str | None = None, pred_trace: Any = None,
) -> dspy.Prediction:
    """GEPA metric: ROUGE-L of the reply with feedback giving the reference and the words the reply missed.

    Example:
        ```python
        reply_feedback(dspy.Example(reply="your card is blocked"), dspy.Prediction(reply="card ok")).feedback
        # "The reply scored 0.33 (rouge_l) against the reference reply 'your card is blocked'. It missed ..."
        ```
    """
    return dspy.Prediction(score=reply_similarity(gold, pred), feedback=_reply_text(gold, pred, "rouge_l"))


def combined_feedback(
    weights: Mapping[str, float] | None = None, *, taxonomy: Taxonomy | None = None, reply: str = "rouge_l"
) -> FeedbackMetric:
    """A GEPA metric: the :func:`combined_metric` score plus feedback on both the strategy and the reply.

    Args:
        weights: As for :func:`combined_metric`.
        taxonomy: For the strategy definitions in the feedback (default CSC).
        reply: ``"rouge_l"`` or ``"bleu2"``.

    Example:
        ```python
        gepa = dspy.GEPA(metric=combined_feedback({"strategy": 0.5, "reply": 0.5}), reflection_lm=lm, auto="light")
        ```
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    score = combined_metric(weights, reply=reply)

    def metric(gold: Any, pred: Any, trace: Any = None, pred_name: str | None = None,
               pred_trace: Any = None) -> dspy.Prediction:
        parts = {"strategy": _strategy_text(gold, pred, taxonomy), "reply": _reply_text(gold, pred, reply)}
        return dspy.Prediction(score=score(gold, pred), feedback=_ordered(parts, pred_name))

    metric.__name__ = f"combined_{reply}_feedback"
    return metric
