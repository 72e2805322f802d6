"""pass^k against brute force: the share of all k-subsets of a task's trials that are all successes."""

from __future__ import annotations

import itertools
import random

import pytest

from cscprog.arena.passk import pass_hat_k, pass_hat_k_curve, task_pass_hat_k


def brute_force(results: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(results, k))
    return sum(all(subset) for subset in subsets) / len(subsets)


def test_task_estimate_equals_the_share_of_successful_k_subsets():
    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(1, 8)
        results = [rng.random() < 0.6 for _ in range(n)]
        for k in range(1, n + 1):
            assert task_pass_hat_k(n, sum(results), k) == pytest.approx(brute_force(results, k))


def test_pass_hat_k_averages_tasks_and_falls_with_k():
    outcomes = {"a": [True, True, True], "b": [True, False, True], "c": [False, False, False]}
    curve = pass_hat_k_curve(outcomes)
    assert curve[1] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert curve[2] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert curve[3] == pytest.approx(1 / 3)
    assert curve[1] >= curve[2] >= curve[3]


def test_a_task_that_never_succeeds_scores_zero_and_bad_k_is_refused():
    assert pass_hat_k({"a": [False, False]}, 1) == 0.0
    with pytest.raises(ValueError, match="fewer than k"):
        pass_hat_k({"a": [True]}, 2)
    with pytest.raises(ValueError):
        task_pass_hat_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_hat_k({}, 1)
