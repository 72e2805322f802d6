"""Bounded, context-propagating, order-preserving thread mapping for the per-item work of the programs.

:func:`map_in_threads` is ``[fn(item) for item in items]`` on a bounded thread pool. Each call runs inside a
copy of the caller's :mod:`contextvars` context (``contextvars.copy_context().run``), and ``dspy.context``
keeps its overrides (LM, adapter, the active cscprog cache and role, the active runtime) in a context variable,
so every worker sees the settings the caller had when it submitted the work; a plain ``ThreadPoolExecutor``
would only see the global ``dspy.configure`` settings. Results come back in input order whatever order the
calls finish in, and the first exception (in input order) cancels the calls not yet started and is re-raised.

:func:`run_concurrency` picks the worker count: the caller's, else the active runtime's ``[run] concurrency``,
else :data:`DEFAULT_CONCURRENCY`.

Example:
    ```python
    import dspy
    from cscprog.concurrency import map_in_threads, run_concurrency

    with dspy.context(lm=dspy.LM("openai/gpt-4o-mini")):
        labels = map_in_threads(classify_one, turns, run_concurrency(None))  # every worker uses that LM
    ```
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cscprog.context import current_runtime

__all__ = ["DEFAULT_CONCURRENCY", "check_call_limits", "map_in_threads", "run_concurrency"]

DEFAULT_CONCURRENCY = 4
"""Worker threads when neither the caller nor an active runtime's ``[run] concurrency`` says otherwise."""

T = TypeVar("T")
R = TypeVar("R")


def check_call_limits(*, attempts: int | None = None, concurrency: int | None = None) -> None:
    """Refuse an ``attempts`` or ``concurrency`` argument below 1 (None: not given, or "the run's setting").

    The argument checks every module with retried LM calls and per-item threads shares.

    Raises:
        ValueError: naming the argument and its value.

    Example:
        ```python
        check_call_limits(attempts=3, concurrency=None)   # fine
        check_call_limits(attempts=0)                     # ValueError: attempts must be >= 1, got 0
        ```
    """
    for name, value in (("attempts", attempts), ("concurrency", concurrency)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def run_concurrency(concurrency: int | None) -> int:
    """The worker count to use: ``concurrency`` if given, else the active runtime's, else the default.

    Raises:
        ValueError: ``concurrency`` is below 1.

    Example:
        ```python
        run_concurrency(None)  # 4 outside a runtime, config.run.concurrency inside one
        ```
    """
    if concurrency is not None:
        check_call_limits(concurrency=concurrency)
        return concurrency
    runtime = current_runtime()
    return runtime.config.run.concurrency if runtime is not None else DEFAULT_CONCURRENCY


def map_in_threads(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R]:
    """``[fn(item) for item in items]`` on up to ``concurrency`` threads, results in input order.

    Each call runs in a copy of the caller's context, so ``dspy.context`` settings (LM, adapter, the active
    runtime) reach the workers. The first exception cancels the calls not yet started and is re-raised.
    With ``concurrency == 1`` or at most one item, the calls run in the caller's thread.

    Raises:
        ValueError: ``concurrency`` is below 1.

    Example:
        ```python
        lengths = map_in_threads(len, ["a", "bb"], concurrency=2)  # [1, 2]
        ```
    """
    todo = list(items)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if concurrency == 1 or len(todo) <= 1:
        return [fn(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(todo)), thread_name_prefix="cscprog") as pool:
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in todo]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
