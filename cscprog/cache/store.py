"""The response cache itself: :class:`ResponseCache`, DSPy's cache interface on diskcache, with replay modes.

See :mod:`cscprog.cache` for what it adds to DSPy's own cache; keys, entries, counters, bundles and routing
live in the sibling modules.

Example:
    ```python
    from cscprog.cache import ResponseCache, activate

    with ResponseCache("runs/cache", mode="replay") as cache, activate(cache):
        program(question="...")  # served from the cache, or CacheMissError
    ```
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from cscprog.cache.bundle import _export_entries, _import_entries, _read_bundle, _write_bundle
from cscprog.cache.calls import CallInfo, CallObserver, call_info, miss_excerpt
from cscprog.cache.entries import _decode_record, _encode_record, _pack, _stored_entries, _unpack, _usage_and_cost
from cscprog.cache.errors import CacheError, CacheMissError, _CorruptEntry
from cscprog.cache.keys import _endpoint_of, _model_of, _provider_of, normalize_endpoint, request_key
from cscprog.cache.memory import _MemoryStore
from cscprog.cache.stats import _finish, _RunStats, _summarize, read_last_run
from cscprog.context import current_role

logger = logging.getLogger(__name__)

CacheMode = Literal["readwrite", "replay", "off", "refresh"]
MODES: tuple[str, ...] = ("readwrite", "replay", "off", "refresh")

_SHARDS = 8


class ResponseCache:
    """The reproducible LLM response cache; a drop-in for ``dspy.cache`` (see :mod:`cscprog.cache`).

    Args:
        directory: The cache directory (created if needed), shared safely by threads and processes; None keeps
            everything in memory (tests).
        mode: ``readwrite`` (use and fill), ``replay`` (a miss raises :class:`CacheMissError`), ``off`` (every
            call is made, nothing stored) or ``refresh`` (every call is made and overwrites its entry).
        version: A tag in every key: change it to start afresh without deleting anything.
        observer: Told about every real call and every hit (rate limits, budgets, usage ledgers).
        size_limit_bytes: Disk size limit; the least recently stored entries are evicted beyond it.
        memory_entries: Size of the in-memory LRU in front of the disk (verified entries, 0 disables it).

    Raises:
        ValueError: ``mode`` is not one of the four modes.
        CacheError: ``directory`` cannot be created or opened.

    Example:
        ```python
        cache = ResponseCache(Path("runs/cache"), mode="replay")
        with activate(cache):
            program(question="...")  # served from the cache, or CacheMissError
        cache.close()
        ```
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        *,
        mode: CacheMode = "readwrite",
        version: str = "1",
        observer: CallObserver | None = None,
        size_limit_bytes: int = 20 * 2**30,
        memory_entries: int = 4096,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"cache mode must be one of {', '.join(MODES)}, not {mode!r}")
        if memory_entries < 0:
            raise ValueError("memory_entries must be >= 0")
        self.mode: CacheMode = mode
        self.version = str(version)
        self.observer = observer
        self.directory = Path(directory).expanduser() if directory is not None else None
        self._memory: OrderedDict[str, tuple[dict[str, Any], bytes]] = OrderedDict()
        self._memory_entries = memory_entries if self.directory is not None else 0
        self._lock = threading.Lock()
        if self.directory is None:
            self._store: Any = _MemoryStore()
        else:
            from diskcache import FanoutCache

            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._store = FanoutCache(
                    str(self.directory),
                    shards=_SHARDS,
                    timeout=30,
                    size_limit=int(size_limit_bytes),
                    eviction_policy="least-recently-stored",
                )
            except (OSError, sqlite3.Error) as error:
                raise CacheError(f"{self.directory}: cannot open the response cache there: {error}") from None
        self._stats = _RunStats(mode, self.version)
        self._finalizer = weakref.finalize(self, _finish, self.directory, self._stats, self._store)
        self.enable_disk_cache = self.directory is not None
        self.enable_memory_cache = True

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else "memory"
        return f"ResponseCache({where!r}, mode={self.mode!r}, version={self.version!r})"

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Write this process's counters to ``last_run.json`` (if anything happened) and close the store."""
        self._finalizer()

    @property
    def where(self) -> str:
        """The directory, or ``"memory"``."""
        return str(self.directory) if self.directory is not None else "memory"

    # --- the interface DSPy calls -------------------------------------------------------------------------------

    def _prepare(self, request: dict[str, Any]) -> tuple[str, str, str | None]:
        """(key, model, endpoint) of a DSPy cache request."""
        return request_key(request, self.version)

    def cache_key(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> str:
        """The key of a request: sha256 of its sorted JSON with the endpoint and version, without credentials.

        ``ignored_args_for_cache_key`` is accepted for DSPy's interface and not used: the endpoint always counts
        and credentials never do.

        Raises:
            TypeError: the request holds a value that cannot be serialized.

        Example:
            ```python
            key = cache.cache_key({"model": "openai/m", "messages": [], "api_base": "http://a:8000/v1/"})
            ```
        """
        return self._prepare(request)[0]

    def _call_info(self, request: dict[str, Any], key: str, model: str, endpoint: str | None) -> CallInfo:
        return call_info(request, key, model, endpoint, current_role())

    def _lookup(self, key: str) -> tuple[dict[str, Any], bytes] | None:
        if self._memory_entries:
            with self._lock:
                found = self._memory.get(key)
                if found is not None:
                    self._memory.move_to_end(key)
                    return found
        try:
            blob = self._store.get(key, None, retry=True)
        except (OSError, sqlite3.Error) as error:
            raise _CorruptEntry(f"unreadable: {error}") from None
        if blob is None:
            return None
        entry = _unpack(blob)
        self._remember(key, entry)
        return entry

    def _remember(self, key: str, entry: tuple[dict[str, Any], bytes]) -> None:
        if self._memory_entries:
            with self._lock:
                self._memory[key] = entry
                self._memory.move_to_end(key)
                while len(self._memory) > self._memory_entries:
                    self._memory.popitem(last=False)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._memory.pop(key, None)

    def get(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> Any:
        """The stored record of ``request`` (a fresh object DSPy marks as a cache hit), or None on a miss.

        On a miss the observer's ``before_call`` runs (it may block or raise); on a hit its ``on_hit``.

        Raises:
            CacheMissError: in ``replay`` mode, when the request is not cached.
        """
        try:
            key, model, endpoint = self._prepare(request)
        except Exception as error:
            logger.warning("cannot compute a cache key (%s); the call is not cached", error)
            key, model, endpoint = "", _model_of(request), _endpoint_of(request)
        shown = endpoint or "default"
        if key and self.mode in ("readwrite", "replay"):
            try:
                entry = self._lookup(key)
                record = _decode_record(*entry) if entry is not None else None
            except _CorruptEntry as error:
                logger.warning(
                    "cache entry %s (%s @ %s) is corrupt (%s): deleted, recomputing", key, model, shown, error
                )
                self._forget(key)
                with contextlib.suppress(Exception):
                    self._store.delete(key, retry=True)
                self._stats.count("errors", model, shown)
                entry = record = None
            if entry is not None:
                meta = entry[0]
                usage, cost = meta.get("usage") or {}, meta.get("cost")
                self._stats.hit(model, shown, usage, cost)
                if self.observer is not None:
                    self.observer.on_hit(self._call_info(request, key, model, endpoint), dict(usage), cost)
                return record
        self._stats.count("misses", model, shown)
        if self.mode == "replay":
            raise CacheMissError(
                role=current_role(),
                model=model,
                endpoint=shown,
                key=key or "(unkeyable)",
                excerpt=miss_excerpt(request),
                where=self.where,
            )
        if self.observer is not None:
            self.observer.before_call(self._call_info(request, key, model, endpoint))
        return None

    def put(
        self,
        request: dict[str, Any],
        value: Any,
        ignored_args_for_cache_key: list[str] | None = None,
        enable_memory_cache: bool = True,
    ) -> None:
        """Store the record of a finished call (not in ``off``/``replay`` mode), then tell the observer.

        Storage failures are logged, never raised: the call already succeeded.
        """
        try:
            key, model, endpoint = self._prepare(request)
        except Exception as error:
            logger.warning("cannot compute a cache key (%s); the result is not stored", error)
            key, model, endpoint = "", _model_of(request), _endpoint_of(request)
        usage, cost = _usage_and_cost(value)
        if key and self.mode in ("readwrite", "refresh"):
            self._write(key, model, endpoint, value, usage, cost, memory=enable_memory_cache)
        if self.observer is not None:
            self.observer.after_call(self._call_info(request, key, model, endpoint), usage, cost)

    def _write(
        self,
        key: str,
        model: str,
        endpoint: str | None,
        value: Any,
        usage: dict[str, int],
        cost: float | None,
        *,
        memory: bool,
    ) -> None:
        shown = endpoint or "default"
        encoded = _encode_record(value)
        if encoded is None:
            logger.warning("a %s record from %s is not JSON-serializable; not cached", type(value).__name__, model)
            return
        kind, cls, payload = encoded
        meta: dict[str, Any] = {
            "kind": kind,
            "model": model,
            "endpoint": shown,
            "provider": _provider_of(model),
            "role": current_role(),
            "created": round(time.time(), 3),
            "usage": usage,
            "cost": cost,
            "version": self.version,
        }
        if cls is not None:
            meta["cls"] = cls
        try:
            stored = self._store.set(key, _pack(meta, payload), retry=True)
        except Exception as error:
            logger.warning("could not store cache entry %s: %s", key, error)
            stored = False
        if stored:
            self._stats.count("stores", model, shown)
            if memory:
                self._remember(key, (meta, payload))
            else:
                self._forget(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._lock:
            if key in self._memory:
                return True
        return key in self._store

    def discard(self, request: dict[str, Any]) -> bool:
        """Delete the entry of ``request`` (e.g. a response that failed to parse, before a retry).

        Returns:
            True when an entry was deleted.
        """
        key = self._prepare(request)[0]
        self._forget(key)
        return bool(self._store.delete(key, retry=True))

    def reset_memory_cache(self) -> None:
        """Empty the in-memory LRU (the disk is untouched)."""
        with self._lock:
            self._memory.clear()

    def save_memory_cache(self, filepath: str | os.PathLike[str]) -> None:
        """Write the in-memory entries (all of a memory-only cache) as a bundle (DSPy's interface; no pickle)."""
        if self.directory is None:
            items = [(key, meta, payload) for key, meta, payload, _size in self._entries() if meta is not None]
        else:
            with self._lock:
                items = [(key, meta, payload) for key, (meta, payload) in self._memory.items()]
        _write_bundle(Path(filepath), items)

    def load_memory_cache(self, filepath: str | os.PathLike[str], allow_pickle: bool = False) -> None:
        """Load a bundle into the in-memory layer (DSPy's interface; ``allow_pickle`` is unused, nothing is pickled).

        Raises:
            CacheBundleError: the file is not a valid bundle.
        """
        for key, meta, payload in _read_bundle(Path(filepath)):
            if self.directory is None:
                self._store.set(key, _pack(meta, payload))
            else:
                self._remember(key, (meta, payload))

    # --- management -------------------------------------------------------------------------------------------

    def run_stats(self) -> dict[str, Any]:
        """This process's hits, misses, stores and errors (corrupt entries), by model/endpoint, and ``saved`` usage.

        Example:
            ```python
            counts = cache.run_stats()
            print(counts["hits"], counts["saved"]["total_tokens"])
            ```
        """
        return self._stats.snapshot()

    def _entries(self, *, verify: bool = True) -> Iterator[tuple[str, dict[str, Any] | None, bytes, int]]:
        """(key, meta or None if corrupt, payload, stored size) of every entry."""
        return _stored_entries(self._store, verify=verify)

    def stats(self) -> dict[str, Any]:
        """Counts over the whole cache (all processes, all runs), plus this process's counters.

        Returns:
            ``entries``, ``bytes`` (on disk), ``corrupt``, ``oldest``/``newest`` (ISO times), ``by_model``,
            ``by_endpoint``, ``by_role`` (entries, bytes, tokens and cost each), ``process`` (see
            :meth:`run_stats`) and ``last_run`` (from ``last_run.json``, or None).

        Example:
            ```python
            print(ResponseCache("~/.cache/cscprog").stats()["entries"])
            ```
        """
        summary = _summarize(self._entries())  # entries, corrupt, entry_bytes, oldest, newest, by_*
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
        }

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
        return _export_entries(self._entries(), Path(path), model=model)

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
        written = _import_entries(self._store, Path(path), overwrite=overwrite)
        for key in written:
            self._forget(key)
        return len(written)

    def clear(self, *, model: str | None = None, endpoint: str | None = None) -> int:
        """Delete every entry, or those of one model and/or endpoint (``"default"`` for no ``api_base``).

        Returns:
            The number of entries deleted.

        Example:
            ```python
            cache.clear(endpoint="http://localhost:8080/v1")
            ```
        """
        self.reset_memory_cache()
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
