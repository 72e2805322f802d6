"""Pairwise verdicts judged in both orders: one rule to combine the orders, one summary with intervals.

Every pairwise judge in cscprog asks twice, once with each candidate shown first, because LLM judges favour a
position. The rules here are shared by all of them: the turn-level judge of ``cscprog compare --judge``
(:mod:`cscprog.evaluation.pairwise`), the arena's conversation judge (:mod:`cscprog.arena.pairwise`) and the
human evaluation, which reads the turn-level judge's records (:func:`record_finals`).

* :func:`combine_orders`: the final verdict is the winner both orders name, and a tie when they disagree (a
  preference that flips with the order is position bias, not a preference); ``consistent`` says whether they
  agreed.
* :func:`summarize_outcomes`: win, tie and loss rates of one side and the position-consistency rate (how often a
  verdict survives swapping the order), each the mean over independent units (turns, customers) with a
  percentile-bootstrap interval (:func:`cscprog.evaluation.unit_bootstrap.mean_interval`).

Verdict record of the turn-level judge (one JSON line per turn)::

    {"turn_id": "d1#3", "dialogue_id": "d1", "turn_index": 3, "domain": "...",
     "verdicts": {"empathy": {"ab": "B", "ba": "tie", "final": "tie", "consistent": false,
                              "reason_ab": "...", "reason_ba": "..."}, ...}}

``A`` and ``B`` are the first and the second run given to the comparison.

Example:
    ```python
    from cscprog.evaluation.verdicts import combine_orders, summarize_outcomes

    combine_orders("B", "B")      # ('B', True)
    combine_orders("A", "B")      # ('tie', False)
    summarize_outcomes([[("B", True)], [("tie", False)]], side="B", resamples=500)["win"]["estimate"]   # 0.5
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cscprog.evaluation.unit_bootstrap import mean_interval
from cscprog.roles import Role

__all__ = ["PAIR_ROLE", "TIE", "combine_orders", "record_finals", "summarize_outcomes"]

PAIR_ROLE = Role.PAIR_JUDGE
"""The LM role of every pairwise judge (``[roles.pair_judge]`` in the config)."""

TIE = "tie"
"""The verdict when neither side is better (and the final verdict when the two orders disagree)."""


def combine_orders(first: str, second: str) -> tuple[str, bool]:
    """``(final, consistent)`` from the winners named in the two orders (already mapped to the candidates).

    Example:
        ```python
        combine_orders("a", "a")   # ('a', True)
        ```
    """
    consistent = first == second
    return (first if consistent else TIE), consistent


def summarize_outcomes(
    units: Iterable[Sequence[tuple[str, bool]]],
    side: str,
    *,
    resamples: int,
    confidence: float = 0.95,
    seed: int = 0,
    unit: str = "turns",
) -> dict[str, Any]:
    """Win, tie and loss rates of ``side`` and the position consistency, each a mean over units with an interval.

    Args:
        units: Per independent unit (a turn, a customer), its ``(final winner, consistent)`` verdicts; a unit's
            value is its share of verdicts that are a win (tie, loss, consistent), so every unit weighs the same.
        side: The winner label that counts as a win (``"B"``, ``"a"``); any other label but ``tie`` is a loss.
        resamples: Bootstrap resamples.
        confidence: Interval coverage.
        seed: Bootstrap seed.
        unit: What a unit is, for the method text.

    Returns:
        ``{"units", "verdicts", "win", "tie", "loss", "position_consistency"}``, the rates as
        :meth:`~cscprog.evaluation.unit_bootstrap.Interval.to_json` gives them (``estimate`` in [0, 1]).

    Example:
        ```python
        summarize_outcomes([[("a", True), ("tie", False)]], side="a", resamples=200, unit="customers")
        ```
    """
    groups = [list(group) for group in units if group]
    options = {"resamples": resamples, "confidence": confidence, "seed": seed, "unit": unit}

    def rate(test: Any) -> dict[str, Any]:
        shares = [sum(1 for winner, consistent in group if test(winner, consistent)) / len(group) for group in groups]
        return mean_interval(shares, **options).to_json()

    return {
        "units": len(groups),
        "verdicts": sum(len(group) for group in groups),
        "win": rate(lambda winner, _: winner == side),
        "tie": rate(lambda winner, _: winner == TIE),
        "loss": rate(lambda winner, _: winner not in (side, TIE)),
        "position_consistency": rate(lambda _, consistent: bool(consistent)),
    }


def record_finals(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{criterion: final}`` of a turn-level verdict record, or None when it holds no ``verdicts`` object.

    A final that is not a string (a malformed record) is returned as is, for the caller to reject with the line.

    Example:
        ```python
        record_finals({"verdicts": {"empathy": {"final": "B"}}})   # {'empathy': 'B'}
        ```
    """
    verdicts = record.get("verdicts")
    if not isinstance(verdicts, Mapping):
        return None
    return {str(name): verdict.get("final") if isinstance(verdict, Mapping) else None
            for name, verdict in verdicts.items()}
