"""pass^k: how reliably a candidate resolves the same customer k times out of k (tau-bench's reliability measure).

For a task (here: a customer) tried ``n`` times with ``c`` successes, the probability that ``k`` trials drawn
without replacement all succeed is ``C(c, k) / C(n, k)``; it is the unbiased estimate of ``p^k`` for that task,
``p`` its per-trial success rate. pass^k is its average over tasks. pass^1 is the plain success rate; pass^k can
only fall as ``k`` grows, and the gap shows how much of the success is luck of the draw.

Example:
    ```python
    from cscprog.arena.passk import pass_hat_k, task_pass_hat_k

    task_pass_hat_k(trials=4, successes=2, k=2)          # C(2,2)/C(4,2) = 1/6
    pass_hat_k({"rp-1": [True, True], "rp-2": [True, False]}, k=2)   # (1 + 0) / 2 = 0.5
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb

__all__ = ["pass_hat_k", "pass_hat_k_curve", "task_pass_hat_k"]


def task_pass_hat_k(trials: int, successes: int, k: int) -> float:
    """``C(successes, k) / C(trials, k)``: the chance that ``k`` of the task's trials, drawn at random, all succeed.

    Raises:
        ValueError: ``k`` outside ``1..trials``, or ``successes`` outside ``0..trials``.

    Example:
        ```python
        task_pass_hat_k(3, 3, 2)   # 1.0
        ```
    """
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and the number of trials ({trials}), got {k}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}, got {successes}")
    return comb(successes, k) / comb(trials, k)


def pass_hat_k(outcomes: Mapping[str, Sequence[bool]], k: int) -> float:
    """pass^k over tasks: the mean of :func:`task_pass_hat_k`, each task with its own number of trials.

    Raises:
        ValueError: no task, or a task with fewer than ``k`` trials.

    Example:
        ```python
        pass_hat_k({"a": [True, False, True]}, 1)   # 0.667
        ```
    """
    if not outcomes:
        raise ValueError("pass^k needs at least one task")
    values = []
    for task, results in outcomes.items():
        if len(results) < k:
            raise ValueError(f"task {task!r} has {len(results)} trial(s), fewer than k={k}")
        values.append(task_pass_hat_k(len(results), sum(bool(r) for r in results), k))
    return sum(values) / len(values)


def pass_hat_k_curve(outcomes: Mapping[str, Sequence[bool]]) -> dict[int, float]:
    """pass^k for every k from 1 to the smallest number of trials of a task.

    Example:
        ```python
        pass_hat_k_curve({"a": [True, True], "b": [True, False]})   # {1: 0.75, 2: 0.5}
        ```
    """
    if not outcomes:
        return {}
    most = min(len(results) for results in outcomes.values())
    return {k: pass_hat_k(outcomes, k) for k in range(1, most + 1)}
