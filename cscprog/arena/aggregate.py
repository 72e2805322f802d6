"""From scored conversations and judged pairs to the figures of ``result.json``, each with its interval.

Per candidate, every score is first averaged over a customer's trials (one value per customer), then averaged
over customers with a percentile-bootstrap interval that resamples customers
(:func:`cscprog.evaluation.unit_bootstrap.mean_interval`). A score that is None for a conversation (adherence of a
candidate that names no strategies, turns to resolution of an unresolved call) is left out of its customer's
mean, and a customer with no value is left out of that score's interval (``n`` says how many remain).

pass^k (:mod:`cscprog.arena.passk`) is computed per customer from its trials and bootstrapped the same way.
Pairwise outcomes are per (customer, trial); a customer's win, tie and loss rates are its shares over its trials.

Example:
    ```python
    summary = summarize_candidates(records, resamples=2000, confidence=0.95, seed=1234)
    summary["base"]["scores"]["resolved"]["estimate"]
    ```
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from cscprog.arena.passk import task_pass_hat_k
from cscprog.evaluation.unit_bootstrap import mean_interval
from cscprog.evaluation.verdicts import summarize_outcomes

__all__ = ["SCORES", "summarize_candidates", "summarize_pairs"]

SCORES: tuple[str, ...] = (
    "resolved",
    "strategy_adherence",
    "flow_ok",
    "stage_coverage",
    "turns_to_resolution",
    "repetition",
    "satisfaction",
)
"""The per-conversation scores that are aggregated, in report order."""


def _per_customer(records: Iterable[dict[str, Any]], score: str) -> list[float]:
    by_customer: dict[str, list[float]] = defaultdict(list)
    for record in records:
        value = record["scores"].get(score)
        if value is not None:
            by_customer[record["customer_id"]].append(float(value))
    return [sum(values) / len(values) for _, values in sorted(by_customer.items())]


def summarize_candidates(
    records: Sequence[dict[str, Any]], *, resamples: int, confidence: float, seed: int
) -> dict[str, Any]:
    """Per candidate: scores with intervals, pass^k, resolution by topic, finish reasons and strategy sources.

    Args:
        records: Conversation records (``candidate``, ``customer_id``, ``topic``, ``trial``, ``scores``).
        resamples: Bootstrap resamples.
        confidence: Interval coverage.
        seed: Bootstrap seed.

    Returns:
        ``{candidate: {"conversations", "customers", "scores": {score: interval}, "pass_hat_k": {k: interval},
        "by_topic": {topic: {"conversations", "resolved"}}, "finish_reasons": {...}, "strategy_sources": {...}}}``.

    Example:
        ```python
        summarize_candidates(records, resamples=1000, confidence=0.95, seed=0)["plain"]["pass_hat_k"]
        ```
    """
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[record["candidate"]].append(record)
    options = {"resamples": resamples, "confidence": confidence, "seed": seed}
    summary: dict[str, Any] = {}
    for name, rows in grouped.items():
        outcomes: dict[str, list[bool]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: (r["customer_id"], r["trial"])):
            outcomes[row["customer_id"]].append(bool(row["scores"]["resolved"]))
        fewest = min(len(results) for results in outcomes.values())
        pass_k = {
            str(k): mean_interval(
                [task_pass_hat_k(len(results), sum(results), k) for _, results in sorted(outcomes.items())],
                **options,
            ).to_json()
            for k in range(1, fewest + 1)
        }
        topics: dict[str, list[bool]] = defaultdict(list)
        for row in rows:
            topics[row["topic"]].append(bool(row["scores"]["resolved"]))
        summary[name] = {
            "conversations": len(rows),
            "customers": len(outcomes),
            "trials_per_customer": fewest,
            "scores": {score: mean_interval(_per_customer(rows, score), **options).to_json() for score in SCORES},
            "pass_hat_k": pass_k,
            "by_topic": {topic: {"conversations": len(values), "resolved": sum(values) / len(values)}
                         for topic, values in sorted(topics.items())},
            "finish_reasons": dict(sorted(Counter(row["scores"]["finish_reason"] for row in rows).items())),
            "strategy_sources": dict(sorted(Counter(row["scores"]["strategy_source"] for row in rows).items())),
        }
    return summary


def summarize_pairs(
    records: Sequence[dict[str, Any]], *, resamples: int, confidence: float, seed: int
) -> list[dict[str, Any]]:
    """Per candidate pair: win, tie and loss rates of A against B and the position consistency, with intervals.

    Args:
        records: Pair records (``a``, ``b``, ``customer_id``, ``outcome``, ``consistent``).
        resamples: Bootstrap resamples.
        confidence: Interval coverage.
        seed: Bootstrap seed.

    Returns:
        One entry per (A, B): ``{"a", "b", "pairs", "customers", "win", "tie", "loss", "position_consistency"}``,
        rates from A's side.

    Example:
        ```python
        summarize_pairs(pair_records, resamples=1000, confidence=0.95, seed=0)[0]["win"]["estimate"]
        ```
    """
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[(record["a"], record["b"])].append(record)
    summary = []
    for (a, b), rows in grouped.items():
        by_customer: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for row in rows:
            by_customer[row["customer_id"]].append((row["outcome"], bool(row["consistent"])))
        rates = summarize_outcomes([by_customer[key] for key in sorted(by_customer)], "a", resamples=resamples,
                                   confidence=confidence, seed=seed, unit="customers")
        summary.append({"a": a, "b": b, "pairs": len(rows), "customers": rates["units"],
                        **{name: rates[name] for name in ("win", "tie", "loss", "position_consistency")}})
    return summary
