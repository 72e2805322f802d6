"""Bootstrap confidence intervals and paired significance tests over per-turn metric statistics.

Every metric of an evaluation is a *statistic of per-turn rows*: a sentence-level metric (sentence BLEU,
ROUGE-L, BERTScore, accuracy) is the mean of one value per turn; corpus BLEU is a function of the column sums of
per-turn n-gram counts. :class:`Statistic` holds the per-turn rows (an ``(n, k)`` array) and the function that
turns *summed* rows into the score, so one resampling loop serves both kinds:

* :func:`bootstrap_interval`: resample the turns with replacement ``resamples`` times (seeded), recompute the
  score each time, and take the 2.5th and 97.5th percentiles (the percentile bootstrap; 95% by default);
* :func:`paired_bootstrap`: the same resampled turn sets applied to two systems scored on the same turns; the
  interval of the difference B - A, and a two-sided p-value: twice the share of resampled differences on the
  other side of zero from the observed one (the paired bootstrap test), capped at 1;
* :func:`approximate_randomization`: swap the two systems' rows on each turn with probability 1/2, ``trials``
  times; the p-value is the share of shuffled differences at least as large (in absolute value) as the observed
  one, with the usual +1 correction.

Resampling is vectorised: a chunk of resamples is a ``(chunk, n)`` matrix of how often each turn was drawn, and
the resampled sums are one matrix product with the ``(n, k)`` rows.

Example:
    ```python
    import numpy as np
    from cscprog.evaluation.intervals import Statistic, bootstrap_interval, paired_bootstrap

    a = Statistic.mean(np.array([1.0, 0.0, 1.0, 1.0]))
    b = Statistic.mean(np.array([1.0, 1.0, 1.0, 1.0]))
    bootstrap_interval(a, resamples=1000, seed=0)        # Interval(point=75.0, low=25.0, high=100.0, ...)
    paired_bootstrap(a, b, resamples=1000, seed=0).p_value
    ```
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_RESAMPLES",
    "Difference",
    "Interval",
    "Statistic",
    "approximate_randomization",
    "bootstrap_interval",
    "bootstrap_intervals",
    "paired_bootstrap",
]

DEFAULT_RESAMPLES = 1000
"""Bootstrap resamples when none is configured."""

_CHUNK_CELLS = 4_000_000  # resample-count cells per chunk (chunk x n), about 32 MB of float64


@dataclass(frozen=True)
class Statistic:
    """Per-turn rows and the score of their column sums.

    Attributes:
        rows: ``(n, k)`` float array, one row per turn.
        score: Maps summed rows ``(m, k)`` to ``m`` scores; it receives the row count of each resample too
            (``score(sums, counts)``), which a mean needs.
    """

    rows: np.ndarray
    score: Callable[[np.ndarray, np.ndarray], np.ndarray]

    @classmethod
    def mean(cls, values: Any, *, scale: float = 100.0) -> Statistic:
        """The mean of one value per turn, times ``scale`` (x100 as in the reports).

        Example:
            ```python
            Statistic.mean([1, 0, 1]).point()   # 66.67
            ```
        """
        column = np.asarray(values, dtype=np.float64).reshape(-1, 1)
        return cls(column, lambda sums, counts: scale * sums[:, 0] / counts)

    @property
    def n(self) -> int:
        """Number of turns."""
        return int(self.rows.shape[0])

    def point(self) -> float:
        """The score on all turns."""
        return float(self.score(self.rows.sum(axis=0, keepdims=True), np.array([float(self.n)]))[0])


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval."""

    point: float
    low: float
    high: float
    confidence: float
    resamples: int
    seed: int
    method: str = "percentile bootstrap over turns"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats rounded to 4 places)."""
        data = asdict(self)
        for key in ("point", "low", "high"):
            data[key] = round(data[key], 4)
        return data


@dataclass(frozen=True)
class Difference:
    """B - A on the same turns: the observed difference, its interval and a two-sided p-value."""

    delta: float
    low: float
    high: float
    p_value: float
    confidence: float
    resamples: int
    seed: int
    method: str

    @property
    def significant(self) -> bool:
        """True when the p-value is below 1 - confidence (0.05 for 95%)."""
        return self.p_value < 1 - self.confidence

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats rounded to 4 places)."""
        data = asdict(self)
        for key in ("delta", "low", "high", "p_value"):
            data[key] = round(data[key], 4)
        data["significant"] = self.significant
        return data


def _check(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _resampled_scores(statistics: list[Statistic], resamples: int, seed: int) -> list[np.ndarray]:
    n = statistics[0].n
    if n == 0:
        raise ValueError("cannot resample zero turns")
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    out: list[list[np.ndarray]] = [[] for _ in statistics]
    uniform = np.full(n, 1.0 / n)
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        weights = rng.multinomial(n, uniform, size=size).astype(np.float64)
        counts = np.full(size, float(n))
        for index, statistic in enumerate(statistics):
            out[index].append(statistic.score(weights @ statistic.rows, counts))
        done += size
    return [np.concatenate(parts) for parts in out]


def bootstrap_interval(
    statistic: Statistic, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """Percentile bootstrap interval of a statistic over turns.

    Raises:
        ValueError: ``resamples`` below 1, ``confidence`` outside (0, 1), or no turns.

    Example:
        ```python
        bootstrap_interval(Statistic.mean(per_turn_rouge), resamples=2000, seed=1)
        ```
    """
    _check(resamples, confidence)
    (scores,) = _resampled_scores([statistic], resamples, seed)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(scores, [tail, 100 - tail])
    return Interval(statistic.point(), float(low), float(high), confidence, resamples, seed)


def bootstrap_intervals(
    statistics: dict[str, Statistic], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = 0.95
) -> dict[str, Interval]:
    """:func:`bootstrap_interval` for several statistics of the same turns, sharing one set of resamples.

    Raises:
        ValueError: as for :func:`bootstrap_interval`, or the statistics differ in turn count.

    Example:
        ```python
        bootstrap_intervals({"rouge_l": rouge, "accuracy": acc}, resamples=1000)["accuracy"].low
        ```
    """
    _check(resamples, confidence)
    if not statistics:
        return {}
    if len({statistic.n for statistic in statistics.values()}) != 1:
        raise ValueError("all statistics must cover the same turns")
    names = list(statistics)
    scores = _resampled_scores([statistics[name] for name in names], resamples, seed)
    tail = 100 * (1 - confidence) / 2
    out = {}
    for name, values in zip(names, scores, strict=True):
        low, high = np.percentile(values, [tail, 100 - tail])
        out[name] = Interval(statistics[name].point(), float(low), float(high), confidence, resamples, seed)
    return out


def _same_turns(a: Statistic, b: Statistic) -> None:
    if a.n != b.n:
        raise ValueError(f"paired tests need the same turns: {a.n} rows against {b.n}")


def paired_bootstrap(
    a: Statistic, b: Statistic, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = 0.95
) -> Difference:
    """Paired bootstrap of B - A: both systems are rescored on the same resampled turn sets.

    Raises:
        ValueError: different turn counts, ``resamples`` below 1, or ``confidence`` outside (0, 1).

    Example:
        ```python
        diff = paired_bootstrap(base_rouge, compiled_rouge, seed=0)
        diff.delta, diff.low, diff.high, diff.p_value
        ```
    """
    _check(resamples, confidence)
    _same_turns(a, b)
    scores_a, scores_b = _resampled_scores([a, b], resamples, seed)
    deltas = scores_b - scores_a
    observed = b.point() - a.point()
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(deltas, [tail, 100 - tail])
    if observed == 0:
        p_value = 1.0
    else:
        other_side = np.mean(deltas <= 0) if observed > 0 else np.mean(deltas >= 0)
        p_value = min(1.0, 2 * float(other_side))
    return Difference(observed, float(low), float(high), p_value, confidence, resamples, seed,
                      "paired bootstrap over turns")


def approximate_randomization(
    a: Statistic, b: Statistic, *, trials: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = 0.95
) -> Difference:
    """Approximate randomization test of B - A (swap the systems per turn with probability 1/2).

    The interval reported is the paired bootstrap's (randomization gives a p-value, not an interval).

    Raises:
        ValueError: as for :func:`paired_bootstrap`.

    Example:
        ```python
        approximate_randomization(base_acc, compiled_acc, trials=2000).p_value
        ```
    """
    _check(trials, confidence)
    _same_turns(a, b)
    rng = np.random.default_rng(seed)
    n, observed = a.n, b.point() - a.point()
    total_a, total_b = a.rows.sum(axis=0), b.rows.sum(axis=0)
    gap = b.rows - a.rows
    chunk = max(1, _CHUNK_CELLS // max(1, n))
    extreme, done = 0, 0
    while done < trials:
        size = min(chunk, trials - done)
        swap = rng.integers(0, 2, size=(size, n)).astype(np.float64)
        moved = swap @ gap  # what moves from B to A when those turns are swapped
        counts = np.full(size, float(n))
        shuffled = b.score(total_b - moved, counts) - a.score(total_a + moved, counts)
        extreme += int(np.sum(np.abs(shuffled) >= abs(observed) - 1e-12))
        done += size
    p_value = (extreme + 1) / (trials + 1)
    interval = paired_bootstrap(a, b, resamples=trials, seed=seed, confidence=confidence)
    return Difference(observed, interval.low, interval.high, p_value, confidence, trials, seed,
                      "approximate randomization over turns (interval: paired bootstrap)")
