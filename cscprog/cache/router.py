"""Routing ``dspy.cache`` to the active :class:`ResponseCache <cscprog.cache.ResponseCache>`.

:func:`install_router` puts a :class:`CacheRouter` in ``dspy.cache`` once; it forwards to the cache made active
with :func:`activate` (the ``dspy.settings`` key :data:`cscprog.context.CACHE_KEY`, a ``dspy.context``
override, so ``dspy.Parallel`` workers and ``acall`` tasks see it) and to DSPy's own cache otherwise.
:data:`cscprog.context.ROLE_KEY` names the role of the calls made inside a block; the cache records it with each entry.
Every record the router stores or serves is checked by :func:`cscprog.cache.truncation.structured_truncation`: a
structured output cut off by its budget is kept in the cache and raised as ``OutputTruncated``, fresh or replayed.

Example:
    ```python
    import dspy
    from cscprog.cache import ResponseCache, activate

    with ResponseCache("~/.cache/cscprog") as cache, activate(cache, role="judge"):
        dspy.Predict("question -> answer")(question="Where is my parcel?")
    ```
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cscprog.cache.predict_results import install_result_layer
from cscprog.cache.truncation import structured_truncation
from cscprog.context import CACHE_KEY, ROLE_KEY, active_cache

if TYPE_CHECKING:
    from cscprog.cache.store import ResponseCache



class CacheRouter:
    """What :func:`install_router` puts in ``dspy.cache``: forwards to the active :class:`ResponseCache`.

    The active cache is ``dspy.settings.get("cscprog_cache")`` (set with :func:`activate` or
    ``dspy.configure(cscprog_cache=...)``); without one, calls go to the cache DSPy had before, unchanged.

    Example:
        ```python
        router = install_router()
        assert router.target() is not None
        ```
    """

    def __init__(self, previous: Any = None) -> None:
        self._previous = previous
        self._previous_lock = threading.Lock()

    def fallback(self) -> Any:
        """DSPy's own cache (built on first use when DSPy had not built one yet)."""
        if self._previous is None:
            with self._previous_lock:
                if self._previous is None:
                    from dspy.clients import _get_dspy_cache

                    self._previous = _get_dspy_cache()
        return self._previous

    def target(self) -> Any:
        """The cache the current context uses."""
        active = active_cache()
        return active if active is not None else self.fallback()

    def cache_key(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> str:
        """See :meth:`ResponseCache.cache_key`."""
        return self.target().cache_key(request, ignored_args_for_cache_key)

    def get(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> Any:
        """See :meth:`ResponseCache.get`.

        Raises:
            OutputTruncated: the stored response is a structured output cut off by its budget
                (:mod:`cscprog.cache.truncation`).
        """
        record = self.target().get(request, ignored_args_for_cache_key)
        if record is not None:
            truncated = structured_truncation(request, record)
            if truncated is not None:
                raise truncated
        return record

    def put(
        self,
        request: dict[str, Any],
        value: Any,
        ignored_args_for_cache_key: list[str] | None = None,
        enable_memory_cache: bool = True,
    ) -> None:
        """See :meth:`ResponseCache.put`; a structured output cut off by its budget is stored, then raised.

        Raises:
            OutputTruncated: ``value`` is a structured output cut off by its budget.
        """
        self.target().put(request, value, ignored_args_for_cache_key, enable_memory_cache)
        truncated = structured_truncation(request, value)
        if truncated is not None:
            raise truncated

    def __contains__(self, key: object) -> bool:
        return key in self.target()

    def reset_memory_cache(self) -> None:
        """Empty the memory layer of the current target."""
        self.target().reset_memory_cache()

    def save_memory_cache(self, filepath: str) -> None:
        """Forwarded to the current target."""
        self.target().save_memory_cache(filepath)

    def load_memory_cache(self, filepath: str, allow_pickle: bool = False) -> None:
        """Forwarded to the current target."""
        self.target().load_memory_cache(filepath, allow_pickle=allow_pickle)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.target(), name)


_install_lock = threading.Lock()


def install_router() -> CacheRouter:
    """Make ``dspy.cache`` a :class:`CacheRouter` (idempotent, thread-safe) and return it.

    Also installs the result layer's wrapper of ``dspy.Predict`` (:mod:`cscprog.cache.predict_results`), which
    serves nothing unless a :class:`ResponseCache` is active. Plain DSPy use is unchanged: without an active
    :class:`ResponseCache` the router forwards to the cache DSPy had (or builds DSPy's default one on first
    use). Call it again after ``dspy.configure_cache``, which replaces
    ``dspy.cache``; :func:`activate` does so itself.

    Example:
        ```python
        install_router()
        dspy.configure(cscprog_cache=ResponseCache("cache"))  # process-wide instead of a context
        ```
    """
    import dspy

    install_result_layer()
    current = vars(dspy).get("cache")
    if isinstance(current, CacheRouter):
        return current
    with _install_lock, dspy._cache_lock:
        current = vars(dspy).get("cache")
        if isinstance(current, CacheRouter):
            return current
        router = CacheRouter(current)
        dspy.cache = router
        return router


@contextlib.contextmanager
def activate(cache: ResponseCache, *, role: str | None = None) -> Iterator[ResponseCache]:
    """Route the LM calls made inside the block (and in its ``dspy.Parallel`` workers and ``acall`` tasks) to ``cache``.

    Plain ``threading``/``ThreadPoolExecutor`` workers do not inherit ``dspy.context``: enter ``activate`` in the
    worker, or use ``dspy.configure(cscprog_cache=cache)``.

    Args:
        cache: The cache to use.
        role: Optionally also set ``cscprog_role`` (recorded with entries, shown in replay errors).

    Example:
        ```python
        with activate(ResponseCache("cache", mode="replay"), role="judge"):
            judge(dialogue=dialogue)
        ```
    """
    import dspy

    install_router()
    overrides: dict[str, Any] = {CACHE_KEY: cache}
    if role is not None:
        overrides[ROLE_KEY] = role
    with dspy.context(**overrides):
        yield cache
