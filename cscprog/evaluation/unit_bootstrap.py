"""Percentile-bootstrap intervals of a mean over independent units (customers, turns), seeded.

Observations that are not independent are grouped into units that are: in the arena the conversations of one
customer (its trials, and for a pair both candidates' conversations), in a turn-level pairwise comparison the
verdicts on one turn. Each unit contributes one value (the mean over its trials, its pass^k, its share of pairwise
wins) and the units are resampled with replacement. The resampling is
:func:`cscprog.evaluation.intervals.bootstrap_interval` (the units in the place of turns); this module adds the
cases it has no interval for (no value, one value) and the arena's record shape (``estimate``, ``n``, ``method``).

Example:
    ```python
    from cscprog.evaluation.unit_bootstrap import mean_interval

    interval = mean_interval([1.0, 0.0, 1.0, 1.0], resamples=2000, seed=0)
    interval.estimate, interval.low, interval.high   # 0.75 and a 95% interval around it
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cscprog.evaluation.intervals import Statistic, bootstrap_interval

__all__ = ["Interval", "mean_interval"]


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval.

    Attributes:
        estimate: The mean of the values (None when there are none).
        low: Lower end of the interval (None with fewer than two values).
        high: Upper end of the interval (None with fewer than two values).
        n: Number of values (units).
        confidence: The interval's nominal coverage.
        resamples: Bootstrap resamples drawn.
        method: How it was computed, in words.
    """

    estimate: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float
    resamples: int
    method: str

    def to_json(self) -> dict[str, Any]:
        """Plain data, figures rounded to 4 decimals."""
        data = asdict(self)
        for name in ("estimate", "low", "high"):
            if data[name] is not None:
                data[name] = round(data[name], 4)
        return data


def mean_interval(
    values: Sequence[float], *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
    unit: str = "customers",
) -> Interval:
    """The mean of ``values`` with a percentile-bootstrap interval (resampling the values with replacement).

    Args:
        values: One value per unit; None values are not allowed (drop them first).
        resamples: Bootstrap resamples.
        confidence: Nominal coverage, e.g. 0.95.
        seed: Seed of the resampling (a private generator: the same inputs give the same interval).
        unit: What a value stands for, in the method text (``customers``, ``turns``).

    Raises:
        ValueError: ``resamples`` below 1 or ``confidence`` outside (0, 1).

    Example:
        ```python
        mean_interval([0.2, 0.4, 0.9], resamples=1000, seed=1).to_json()
        ```
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    data = np.asarray(list(values), dtype=float)
    method = f"percentile bootstrap over {len(data)} {unit}, {resamples} resamples, seed {seed}"
    if data.size == 0:
        return Interval(None, None, None, 0, confidence, resamples, method)
    estimate = float(data.mean())
    if data.size < 2:
        return Interval(estimate, None, None, 1, confidence, resamples, method + " (one value: no interval)")
    interval = bootstrap_interval(Statistic.mean(data, scale=1.0), resamples=resamples, seed=seed,
                                  confidence=confidence)
    return Interval(estimate, interval.low, interval.high, int(data.size), confidence, resamples, method)
