"""The arena's bootstrap interval: determinism, edge cases, and coverage checked by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from cscprog.evaluation.unit_bootstrap import mean_interval


def test_same_seed_same_interval_and_estimate_is_the_mean():
    values = [0.0, 1.0, 1.0, 0.5, 0.25, 1.0]
    first = mean_interval(values, resamples=500, seed=4)
    assert first == mean_interval(values, resamples=500, seed=4)
    assert first.estimate == pytest.approx(np.mean(values))
    assert first.low <= first.estimate <= first.high
    assert "percentile bootstrap over 6 customers" in first.method


def test_no_values_and_one_value_give_no_interval():
    assert mean_interval([]).estimate is None
    one = mean_interval([0.7])
    assert (one.estimate, one.low, one.high, one.n) == (0.7, None, None, 1)
    with pytest.raises(ValueError):
        mean_interval([1.0], resamples=0)
    with pytest.raises(ValueError):
        mean_interval([1.0], confidence=1.0)


@pytest.mark.slow
def test_a_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_mean, covered, runs = 0.3, 0, 400
    for run in range(runs):
        sample = rng.binomial(1, true_mean, size=60).astype(float)
        interval = mean_interval(sample.tolist(), resamples=1000, seed=run)
        covered += interval.low <= true_mean <= interval.high
    assert 0.90 <= covered / runs <= 0.985
