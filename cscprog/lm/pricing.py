"""Fast price lookups: memoize DSPy's model-metadata lookup, which rescans its whole price table on a miss.

After every call DSPy 3.4 estimates the cost from its model-metadata snapshot
(``dspy.clients.model_metadata.model_info``). For a model name the snapshot does not hold (every self-hosted
model behind ``api_base``, e.g. ``openai/my-vllm-model``), each lookup walks all of the thousands of entries
looking for aliases, twice per call: a large share of the client CPU of a call, enough to cap throughput at high
concurrency (``benchmarks/throughput.py`` measures it; the README's Benchmarks table has the figures).

:func:`install` wraps the lookup with a memo keyed by provider, model name, metadata namespaces and the
snapshot object itself: answers are exactly those of the original function (each caller gets its own deep
copy, as before), computed once per distinct model. It is idempotent, process-wide (DSPy's pricing is), and
called by :class:`cscprog.lm.runtime.Runtime`; :func:`uninstall` restores DSPy's function.

Example:
    ```python
    from cscprog.lm import pricing

    pricing.install()
    pricing.installed()  # True
    ```
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["install", "installed", "uninstall"]

logger = logging.getLogger(__name__)

MEMO_SIZE = 1024
"""Distinct (provider, model, namespaces) lookups remembered."""

_MODULES = ("dspy.clients.model_metadata", "dspy.clients.costs", "dspy.clients.capabilities")
"""Modules that hold a reference to ``model_info`` (imported by name) and get the memoized one."""

_lock = threading.Lock()
_original: Callable[..., dict[str, Any]] | None = None


def _memoized(original: Callable[..., dict[str, Any]], load: Callable[[], Any]) -> Callable[..., dict[str, Any]]:
    @functools.lru_cache(maxsize=MEMO_SIZE)
    def lookup(snapshot_id: int, provider: Any, model: Any, namespaces: tuple[Any, ...] | None) -> dict[str, Any]:
        return original(provider, model, namespaces=namespaces)

    @functools.wraps(original)
    def model_info(provider: Any, model: Any, *, namespaces: Any = None) -> dict[str, Any]:
        key_namespaces = tuple(namespaces) if namespaces is not None else None
        try:
            found = lookup(id(load()), provider, model, key_namespaces)
        except TypeError:  # an unhashable argument: no memo for this call
            return original(provider, model, namespaces=namespaces)
        return copy.deepcopy(found)

    model_info.cscprog_memoized = True  # type: ignore[attr-defined]
    return model_info


def installed() -> bool:
    """True when DSPy's model-metadata lookup is the memoized one."""
    return _original is not None


def install() -> bool:
    """Memoize DSPy's ``model_info`` lookup (see the module docstring); True when it is (now or already).

    False (and a debug log) when this DSPy has no such function: then nothing is changed.
    """
    global _original
    import importlib

    with _lock:
        if _original is not None:
            return True
        try:
            metadata = importlib.import_module("dspy.clients.model_metadata")
            original = metadata.model_info
            load = metadata._load
        except (ImportError, AttributeError) as error:
            logger.debug("DSPy's model-metadata lookup not found (%s); price lookups are not memoized", error)
            return False
        if getattr(original, "cscprog_memoized", False):
            return True
        fast = _memoized(original, load)
        for name in _MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if getattr(module, "model_info", None) is original:
                module.model_info = fast
        _original = original
        return True


def uninstall() -> None:
    """Put DSPy's own ``model_info`` back everywhere :func:`install` replaced it."""
    global _original
    import importlib

    with _lock:
        if _original is None:
            return
        for name in _MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if getattr(getattr(module, "model_info", None), "cscprog_memoized", False):
                module.model_info = _original
        _original = None
