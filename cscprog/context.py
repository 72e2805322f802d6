"""The ground floor of the LM layer: the ``dspy.settings`` keys cscprog uses, and readers for them.

cscprog keeps no global state of its own. What a block of code runs under (the active
:class:`~cscprog.lm.runtime.Runtime`, the role of its calls, the response cache serving them, the retry round of
a resumed item) travels in ``dspy.settings`` through ``dspy.context`` overrides, so ``dspy.Parallel`` workers,
``acall`` tasks and cscprog's own thread pools see it. This module names those keys once and reads them; it
imports nothing of cscprog, so every layer may use it.

Example:
    ```python
    from cscprog.context import current_role, current_runtime

    runtime = current_runtime()        # None outside ``Runtime.activate()``
    role = current_role()              # e.g. "judge" inside ``runtime.role("judge")``
    ```
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dspy

__all__ = [
    "CACHE_KEY",
    "RETRY_ROUND_KEY",
    "ROLE_KEY",
    "RUNTIME_KEY",
    "TRIAL_KEY",
    "active_cache",
    "current_retry_round",
    "current_role",
    "current_runtime",
    "current_trial",
    "trial_context",
]

RUNTIME_KEY = "cscprog_runtime"
"""The key holding the active :class:`~cscprog.lm.runtime.Runtime` (set by ``Runtime.activate``)."""
ROLE_KEY = "cscprog_role"
"""The key naming the role of the calls made inside a block (recorded with each cache entry)."""
CACHE_KEY = "cscprog_cache"
"""The key holding the :class:`~cscprog.cache.ResponseCache` that serves the calls of a block."""
RETRY_ROUND_KEY = "cscprog_retry_round"
"""The key with how many earlier runs the current item failed in (set by :mod:`cscprog.runs`)."""
TRIAL_KEY = "cscprog_trial"
"""The key with the number of the repeated trial the calls of a block belong to (0: not a repeat)."""


def current_runtime() -> Any:
    """The :class:`~cscprog.lm.runtime.Runtime` whose ``activate()`` block is running, or None.

    Example:
        ```python
        runtime = current_runtime()
        lm = runtime.lm("judge") if runtime else dspy.settings.lm
        ```
    """
    return dspy.settings.get(RUNTIME_KEY)


def current_role() -> str | None:
    """The role of the calls made here (inside ``Runtime.role(name)``), or None."""
    return dspy.settings.get(ROLE_KEY)


def active_cache() -> Any:
    """The :class:`~cscprog.cache.ResponseCache` serving the calls made here, or None (DSPy's own cache)."""
    return dspy.settings.get(CACHE_KEY)


def current_retry_round() -> int:
    """How many earlier runs the current item failed in (0 outside a resumed run)."""
    return int(dspy.settings.get(RETRY_ROUND_KEY) or 0)


def current_trial() -> int:
    """The trial the calls made here belong to (0 outside :func:`trial_context`)."""
    return int(dspy.settings.get(TRIAL_KEY) or 0)


@contextlib.contextmanager
def trial_context(trial: int) -> Iterator[None]:
    """Run a block as trial ``trial`` of a repeated experiment: from trial 1 on, every LM call is a fresh sample.

    :func:`cscprog.lm.invoke.invoke` gives the calls of trial ``t > 0`` rollout ids of their own (so they have
    their own cache entries instead of replaying trial 0), and on the embedded model, which samples by seed,
    a seed shifted by ``t``. Trial 0 keeps the plain calls and cache keys.

    Example:
        ```python
        with trial_context(2):
            dialogue = simulator(candidate, customer)
        ```
    """
    if trial < 0:
        raise ValueError(f"trial must be >= 0, got {trial}")
    with dspy.context(**{TRIAL_KEY: trial}):
        yield
