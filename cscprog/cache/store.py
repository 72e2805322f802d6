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
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cscprog.cache.bundle import read_bundle, write_bundle
from cscprog.cache.calls import CallInfo, CallObserver, call_info, miss_excerpt
from cscprog.cache.entries import decode_record, encode_record, pack_entry, unpack_entry, usage_and_cost
from cscprog.cache.errors import CacheError, CacheMissError, CorruptEntry
from cscprog.cache.keys import endpoint_of, model_of, provider_of, request_key
from cscprog.cache.maintenance import CacheMaintenance
from cscprog.cache.memory import Entry, MemoryStore, RecentEntries
from cscprog.cache.results import CallRecord, ResultStore, is_recording, note_call, text_outputs
from cscprog.cache.shards import ShardedStore
from cscprog.cache.stats import RunStats
from cscprog.cache.writer import BatchWriter, close_cache, store_counter
from cscprog.config import CACHE_MODES, CacheMode
from cscprog.context import current_role

if TYPE_CHECKING:
    from cscprog.config import CacheSettings

logger = logging.getLogger(__name__)

MODES = CACHE_MODES
"""The cache modes (:data:`cscprog.config.CACHE_MODES`)."""


class ResponseCache(CacheMaintenance):
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
        self._recent = RecentEntries(memory_entries if self.directory is not None else 0)
        if self.directory is None:
            self._store: Any = MemoryStore()
        else:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._store = ShardedStore(self.directory, repair=mode != "replay", size_limit=int(size_limit_bytes))
            except (OSError, sqlite3.Error) as error:
                raise CacheError(f"{self.directory}: cannot open the response cache there: {error}") from None
        self._stats = RunStats(mode, self.version)
        writes = self.directory is not None and mode in ("readwrite", "refresh")
        self._writer = BatchWriter(on_stored=store_counter(self._stats)) if writes else None
        self.results = ResultStore(self.directory, mode=mode, size_limit=int(size_limit_bytes), writer=self._writer)
        self._finalizer = weakref.finalize(self, close_cache, self._writer, self.results, self.directory, self._stats,
                                           self._store)
        self.enable_disk_cache = self.directory is not None
        self.enable_memory_cache = True

    @classmethod
    def from_settings(
        cls, settings: CacheSettings, *, observer: CallObserver | None = None, mode: CacheMode | None = None
    ) -> ResponseCache:
        """The cache a ``[cache]`` table describes (directory, mode, version, size limit).

        Args:
            settings: ``config.cache``.
            observer: Told about every real call and hit (a runtime's :class:`~cscprog.lm.gate.CallGate`).
            mode: Overrides ``settings.mode`` (maintenance commands open the cache ``readwrite``).

        Example:
            ```python
            cache = ResponseCache.from_settings(load_config().cache)
            ```
        """
        return cls(
            settings.path,
            mode=settings.mode if mode is None else mode,
            version=settings.version,
            observer=observer,
            size_limit_bytes=int(settings.size_limit_gb * 2**30),
        )

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else "memory"
        return f"ResponseCache({where!r}, mode={self.mode!r}, version={self.version!r})"

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Store what is queued, write this process's counters to ``last_run.json`` (if anything happened) and
        close the stores."""
        self._finalizer()

    def flush(self) -> None:
        """Return once every entry stored so far is on disk (entries are written by a background thread, in
        batches: see :mod:`cscprog.cache.writer`). A run calls it before it reports an item done.

        Example:
            ```python
            cache.flush()  # the calls made so far survive a crash from here on
            ```
        """
        if self._writer is not None:
            self._writer.flush()

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

    def _lookup(self, key: str) -> Entry | None:
        found = self._recent.get(key)
        if found is not None:
            return found
        queued = self._writer.pending(self._store, key) if self._writer is not None else None
        if queued is not None:
            return unpack_entry(queued)
        try:
            blob = self._store.get(key, None, retry=True)
        except (OSError, sqlite3.Error) as error:
            raise CorruptEntry(f"unreadable: {error}") from None
        if blob is None:
            return None
        entry = unpack_entry(blob)
        self._recent.remember(key, entry)
        return entry

    def _corrupt(self, key: str, model: str, shown: str, error: CorruptEntry) -> None:
        """A damaged entry: deleted to be recomputed, except in replay mode, which leaves the cache untouched."""
        self._stats.count("errors", model, shown)
        self._recent.forget(key)
        if self.mode == "replay":
            logger.warning("cache entry %s (%s @ %s) is corrupt (%s): left in place (replay mode changes nothing); "
                           "the call counts as a miss", key, model, shown, error)
            return
        logger.warning("cache entry %s (%s @ %s) is corrupt (%s): deleted, recomputing", key, model, shown, error)
        with contextlib.suppress(Exception):
            self._store.delete(key, retry=True)

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
            key, model, endpoint = "", model_of(request), endpoint_of(request)
        shown = endpoint or "default"
        if key and self.mode in ("readwrite", "replay"):
            try:
                entry = self._lookup(key)
                record = decode_record(*entry) if entry is not None else None
            except CorruptEntry as error:
                self._corrupt(key, model, shown, error)
                entry = record = None
            if entry is not None:
                meta = entry[0]
                usage, cost = meta.get("usage") or {}, meta.get("cost")
                self._stats.hit(model, shown, usage, cost)
                if self.observer is not None or is_recording():
                    info = self._call_info(request, key, model, endpoint)
                    note_call(CallRecord(key, model, endpoint, info.n, info.prompt_chars, info.max_tokens, usage, cost,
                                         text_outputs(record)))
                    if self.observer is not None:
                        self.observer.on_hit(info, dict(usage), cost)
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
            key, model, endpoint = "", model_of(request), endpoint_of(request)
        usage, cost = usage_and_cost(value)
        stored = False
        if key and self.mode in ("readwrite", "refresh"):
            stored = self._write(key, model, endpoint, value, usage, cost, memory=enable_memory_cache)
        if self.observer is not None or is_recording():
            info = self._call_info(request, key, model, endpoint)
            # a call whose entry was not stored cannot be replayed: its record has no key (no result is kept)
            note_call(CallRecord(key if stored else "", model, endpoint, info.n, info.prompt_chars, info.max_tokens,
                                 usage, cost, text_outputs(value)))
            if self.observer is not None:
                self.observer.after_call(info, usage, cost)

    def report_replayed(self, call: CallRecord) -> None:
        """Count a call served by the result layer as the cache hit it stands for, and tell the observer.

        Example:
            ```python
            cache.report_replayed(call)  # hits +1, the call's usage and cost saved, observer.on_hit(...)
            ```
        """
        shown = call.endpoint or "default"
        self._stats.hit(call.model, shown, call.usage, call.cost)
        if self.observer is not None:
            info = CallInfo(key=call.key, model=call.model, endpoint=call.endpoint, role=current_role(), n=call.n,
                            prompt_chars=call.prompt_chars, max_tokens=call.max_tokens)
            self.observer.on_hit(info, dict(call.usage), call.cost)

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
    ) -> bool:
        shown = endpoint or "default"
        encoded = encode_record(value)
        if encoded is None:
            logger.warning("a %s record from %s is not JSON-serializable; not cached", type(value).__name__, model)
            return False
        kind, cls, payload = encoded
        meta: dict[str, Any] = {
            "kind": kind,
            "model": model,
            "endpoint": shown,
            "provider": provider_of(model),
            "role": current_role(),
            "created": round(time.time(), 3),
            "usage": usage,
            "cost": cost,
            "version": self.version,
        }
        if cls is not None:
            meta["cls"] = cls
        blob = pack_entry(meta, payload)
        if self._writer is not None:
            self._writer.put(self._store, key, blob, (model, shown))  # counted once stored
            stored = True
        else:
            try:
                stored = self._store.set(key, blob, retry=True)
            except Exception as error:
                logger.warning("could not store cache entry %s: %s", key, error)
                stored = False
            if stored:
                self._stats.count("stores", model, shown)
        if stored:
            if memory:
                self._recent.remember(key, (meta, payload))
            else:
                self._recent.forget(key)
        return stored

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in self._recent or (self._writer is not None and self._writer.pending(self._store, key) is not None):
            return True
        return key in self._store

    def discard(self, request: dict[str, Any]) -> bool:
        """Delete the entry of ``request`` (e.g. a response that failed to parse, before a retry).

        Returns:
            True when an entry was deleted.
        """
        key = self._prepare(request)[0]
        self.flush()
        self._recent.forget(key)
        return bool(self._store.delete(key, retry=True))

    def reset_memory_cache(self) -> None:
        """Empty the in-memory LRU (the disk is untouched)."""
        self._recent.clear()

    def save_memory_cache(self, filepath: str | os.PathLike[str]) -> None:
        """Write the in-memory entries (all of a memory-only cache) as a bundle (DSPy's interface; no pickle)."""
        if self.directory is None:
            items = [(key, meta, payload) for key, meta, payload, _size in self._entries() if meta is not None]
        else:
            items = [(key, meta, payload) for key, (meta, payload) in self._recent.items()]
        write_bundle(Path(filepath), items)

    def load_memory_cache(self, filepath: str | os.PathLike[str], allow_pickle: bool = False) -> None:
        """Load a bundle into the in-memory layer (DSPy's interface; ``allow_pickle`` is unused, nothing is pickled).

        Raises:
            CacheBundleError: the file is not a valid bundle.
        """
        for key, meta, payload in read_bundle(Path(filepath)):
            if self.directory is None:
                self._store.set(key, pack_entry(meta, payload))
            else:
                self._recent.remember(key, (meta, payload))

