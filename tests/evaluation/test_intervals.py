"""Bootstrap intervals and paired tests: coverage by simulation, exactness on known cases, BLEU resampling."""

from __future__ import annotations

import numpy as np
import pytest

from cscprog.evaluation.intervals import (
    Statistic,
    approximate_randomization,
    bootstrap_interval,
    paired_bootstrap,
)
from cscprog.evaluation.metrics.bleu_stats import corpus_bleu_from_sums


def test_percentile_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    trials, covered = 300, 0
    for trial in range(trials):
        sample = rng.normal(loc=0.3, scale=1.0, size=80)
        interval = bootstrap_interval(Statistic.mean(sample, scale=1.0), resamples=400, seed=trial)
        covered += interval.low <= 0.3 <= interval.high
    coverage = covered / trials
    # The percentile bootstrap slightly under-covers at n=80; 300 trials give a standard error of about 1.3 points.
    assert 0.90 <= coverage <= 0.985, coverage


def test_interval_is_seeded_and_brackets_the_point():
    values = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1]
    first = bootstrap_interval(Statistic.mean(values), resamples=500, seed=3)
    again = bootstrap_interval(Statistic.mean(values), resamples=500, seed=3)
    other = bootstrap_interval(Statistic.mean(values), resamples=500, seed=4)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)
    assert first.low <= first.point == 70.0 <= first.high
    assert first.as_dict()["resamples"] == 500


def test_constant_data_has_a_zero_width_interval():
    interval = bootstrap_interval(Statistic.mean([1.0] * 20), resamples=200)
    assert interval.low == interval.high == interval.point == 100.0


def test_paired_bootstrap_detects_a_clear_difference_and_not_noise():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.2, size=300)
    b_better = a + 0.05 + rng.normal(0, 0.02, size=300)
    clear = paired_bootstrap(Statistic.mean(a), Statistic.mean(b_better), resamples=1000)
    assert clear.significant and clear.p_value < 0.01
    assert clear.low > 0 and clear.delta == pytest.approx(100 * (b_better.mean() - a.mean()))
    noise = paired_bootstrap(Statistic.mean(a), Statistic.mean(a + rng.normal(0, 0.2, size=300)), resamples=1000)
    assert noise.low < noise.delta < noise.high


def test_identical_systems_have_p_value_one():
    values = Statistic.mean([0.2, 0.4, 0.9])
    assert paired_bootstrap(values, values).p_value == 1.0
    assert approximate_randomization(values, values, trials=200).p_value == 1.0


def test_approximate_randomization_agrees_with_an_exact_permutation_test():
    a = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    b = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    observed = abs(b.mean() - a.mean())
    diffs = b - a
    signs = np.array(np.meshgrid(*[[1, -1]] * len(a))).T.reshape(-1, len(a))
    exact = np.mean(np.abs((signs * diffs).mean(axis=1)) >= observed - 1e-12)
    approx = approximate_randomization(Statistic.mean(a), Statistic.mean(b), trials=20000, seed=1).p_value
    assert approx == pytest.approx(exact, abs=0.01)


def test_corpus_bleu_statistic_resamples_sufficient_statistics():
    rows = np.array([[4, 4, 3, 1, 4, 3], [3, 5, 2, 0, 3, 2], [6, 6, 6, 5, 6, 5]], dtype=float)
    statistic = Statistic(rows, lambda sums, counts: corpus_bleu_from_sums(sums, 2))
    assert statistic.point() == pytest.approx(corpus_bleu_from_sums(rows.sum(axis=0, keepdims=True), 2)[0])
    interval = bootstrap_interval(statistic, resamples=300)
    assert 0 <= interval.low <= interval.point <= interval.high <= 100


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_interval(Statistic.mean([1.0]), resamples=0)
    with pytest.raises(ValueError, match="same turns"):
        paired_bootstrap(Statistic.mean([1.0, 0.0]), Statistic.mean([1.0]))
    with pytest.raises(ValueError, match="zero turns"):
        bootstrap_interval(Statistic.mean([]))
