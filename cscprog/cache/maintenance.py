"""Whole-cache maintenance of a :class:`~cscprog.cache.ResponseCache`: counters, statistics, bundles, clearing.

:class:`CacheMaintenance` is the part of ``ResponseCache`` that looks at every entry rather than serving one call:
``run_stats``, ``stats``, ``export``, ``import_bundle`` and ``clear`` (``cscprog cache ...`` uses them).

Example:
    ```python
    cache = ResponseCache("~/.cache/cscprog")
    print(cache.stats()["entries"])
    cache.export("run.cache.jsonl.gz")
    ```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cscprog.cache.bundle import export_entries, import_entries
from cscprog.cache.entries import stored_entries
from cscprog.cache.keys import normalize_endpoint
from cscprog.cache.memory import RecentEntries
from cscprog.cache.results import ResultStore
from cscprog.cache.stats import RunStats, read_last_run, summarize_entries

__all__ = ["CacheMaintenance"]


class CacheMaintenance:
    """Statistics, bundles and clearing over a cache's entry store (mixed into ``ResponseCache``).

    Example:
        ```python
        removed = cache.clear(model="openai/gpt-4o-mini")
        ```
    """

    directory: Path | None
    version: str
    _store: Any
    _stats: RunStats
    _recent: RecentEntries
    results: ResultStore
    flush: Callable[[], None]  # ResponseCache.flush: queued entries stored first

    @property
    def where(self) -> str:
        """The directory, or ``"memory"``."""
        return str(self.directory) if self.directory is not None else "memory"

    def run_stats(self) -> dict[str, Any]:
        """This process's hits, misses, stores and errors (corrupt entries), by model/endpoint, and ``saved`` usage.

        Example:
            ```python
            counts = cache.run_stats()
            print(counts["hits"], counts["saved"]["total_tokens"])
            ```
        """
        self.flush()  # stores count once they are on disk
        return self._stats.snapshot()

    def _entries(self, *, verify: bool = True) -> Iterator[tuple[str, dict[str, Any] | None, bytes, int]]:
        """(key, meta or None if corrupt, payload, stored size) of every entry."""
        self.flush()
        return stored_entries(self._store, verify=verify)

    def stats(self) -> dict[str, Any]:
        """Counts over the whole cache (all processes, all runs), plus this process's counters.

        Returns:
            ``entries``, ``bytes`` (on disk), ``corrupt``, ``oldest``/``newest`` (ISO times), ``by_model``,
            ``by_endpoint``, ``by_role`` (entries, bytes, tokens and cost each), ``process`` (see
            :meth:`run_stats`), ``last_run`` (from ``last_run.json``, or None) and ``quarantined`` (where damaged
            shards were moved).

        Example:
            ```python
            print(ResponseCache("~/.cache/cscprog").stats()["entries"])
            ```
        """
        summary = summarize_entries(self._entries())  # entries, corrupt, entry_bytes, oldest, newest, by_*
        volume = self._store.volume() if hasattr(self._store, "volume") else summary["entry_bytes"]
        return {
            "directory": self.where,
            "version": self.version,
            "entries": summary.pop("entries"),
            "corrupt": summary.pop("corrupt"),
            "bytes": int(volume),
            **summary,
            "process": self.run_stats(),
            "last_run": read_last_run(self.directory) if self.directory is not None else None,
            "quarantined": self.quarantined,
        }

    @property
    def quarantined(self) -> list[str]:
        """Where this cache moved damaged shards it met (see :mod:`cscprog.cache.shards`); usually empty."""
        return [str(path) for path in getattr(self._store, "quarantined", [])]

    def export(self, path: str | os.PathLike[str], *, model: str | None = None) -> int:
        """Write every entry (or those of one model) to a portable bundle: gzip-compressed JSON lines.

        Corrupt entries are skipped (and logged). The bundle holds no credentials and no pickle.

        Returns:
            The number of entries written.

        Raises:
            CacheBundleError: the file cannot be written.

        Example:
            ```python
            n = cache.export("run-2024-05.cache.jsonl.gz", model="openai/gpt-4o-mini")
            ```
        """
        return export_entries(self._entries(), Path(path), model=model)

    def import_bundle(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> int:
        """Add the entries of a bundle, after checking every line (nothing is imported from a bad bundle).

        Args:
            path: A file written by :meth:`export`.
            overwrite: Replace entries that exist already (default: keep them).

        Returns:
            The number of entries written.

        Raises:
            CacheBundleError: the file is missing, not gzip, or a line is malformed; the message names the line.

        Example:
            ```python
            ResponseCache("cache", mode="replay").import_bundle("run.cache.jsonl.gz")
            ```
        """
        self.flush()
        written = import_entries(self._store, Path(path), overwrite=overwrite)
        for key in written:
            self._recent.forget(key)
        if written and overwrite:
            self.results.clear()  # results derived from a replaced entry would be stale
        return len(written)

    def clear(self, *, model: str | None = None, endpoint: str | None = None) -> int:
        """Delete every entry, or those of one model and/or endpoint (``"default"`` for no ``api_base``).

        Returns:
            The number of entries deleted (the result layer's entries are dropped too, and not counted).

        Example:
            ```python
            cache.clear(endpoint="http://localhost:8080/v1")
            ```
        """
        self.flush()
        self._recent.clear()
        self.results.clear()  # derived from the LM entries: rebuilt on the next readwrite run
        if model is None and endpoint is None:
            return int(self._store.clear(retry=True))
        wanted_endpoint = (normalize_endpoint(endpoint) or "default") if endpoint is not None else None
        removed = 0
        for key, meta, _payload, _size in self._entries(verify=False):
            if meta is None:
                continue
            if model is not None and meta.get("model") != model:
                continue
            if wanted_endpoint is not None and meta.get("endpoint") != wanted_endpoint:
                continue
            if self._store.delete(key, retry=True):
                removed += 1
        return removed
