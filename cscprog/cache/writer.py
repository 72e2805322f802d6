"""The cache's batched writer: entries are stored by one background thread, many to a SQLite transaction.

Storing an entry on the thread that made the call costs that thread a SQLite transaction per call (and at 16
threads on 2 cores that client CPU is what binds). :class:`BatchWriter` takes the write off the calling thread: the
entry is queued (and served at once from :meth:`BatchWriter.pending` to any reader of this process), and a single
writer thread stores what has queued up, one transaction per shard per batch.

Durability is explicit: :meth:`BatchWriter.flush` returns once everything queued before it is stored. A run flushes
before it reports an item done (:func:`cscprog.runs.engine.attempt_item`), so an item line in an output means
its calls are on disk; a crash between a call and the flush loses at most entries of items not yet reported
done, which ``--resume`` recomputes. Closing the cache (and interpreter exit) flushes too.

Example:
    ```python
    writer = BatchWriter()
    writer.put(store, "key", b"blob")
    assert writer.pending(store, "key") == b"blob"
    writer.flush()   # now on disk
    writer.close()
    ```
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cscprog.cache.stats import RunStats, finish_run

__all__ = ["BatchWriter", "close_cache", "store_counter"]

logger = logging.getLogger(__name__)

MAX_BATCH = 512
"""Most entries one batch stores."""

LINGER = 0.05
"""Seconds the writer waits for more entries after the first of a batch (cut short by :meth:`BatchWriter.flush`).

Entries spread over the LM store's eight files and the result store's, so a batch costs a transaction per file it
touches: at 5 ms a concurrency-16 synthesis stored about one entry per transaction; at 50 ms its client CPU fell
by about 0.1 ms a call. Readers of this process see queued entries at once (:meth:`BatchWriter.pending`), and a run's
flush before it reports an item done cuts the wait short, so the longer wait delays nothing a run reports."""

_STOP = object()
_live: weakref.WeakSet[BatchWriter] = weakref.WeakSet()


class BatchWriter:
    """One background thread storing queued entries in batches (started on the first :meth:`put`).

    Args:
        on_stored: Called as ``on_stored(tag)`` with the ``tag`` given to :meth:`put`, for every entry stored (on
            the writer thread): counters.

    Example:
        ```python
        writer = BatchWriter(on_stored=lambda tag: None)
        ```
    """

    def __init__(self, on_stored: Callable[[Any], None] | None = None) -> None:
        self._on_stored = on_stored
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[tuple[int, str], bytes] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._queued = 0
        self._stored = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._hurry = threading.Event()

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cscprog-cache-writer", daemon=True)
        self._thread.start()
        _live.add(self)

    def put(self, store: Any, key: str, blob: bytes, tag: Any = None) -> None:
        """Queue ``blob`` for ``store[key]``; readers see it through :meth:`pending` until it is stored.

        Raises:
            RuntimeError: the writer is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the cache writer is closed")
            if self._thread is None:
                self._start()
            self._pending[(id(store), key)] = blob
            self._queued += 1
        self._queue.put((store, key, blob, tag))

    def pending(self, store: Any, key: str) -> bytes | None:
        """The queued, not yet stored blob of ``store[key]``, or None."""
        return self._pending.get((id(store), key))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry queued before this call is stored (or failed and was logged).

        Returns:
            False when ``timeout`` seconds passed first.
        """
        with self._done:
            target = self._queued
            if self._stored >= target:
                return True
        self._hurry.set()  # the writer stops lingering
        with self._done:
            return self._done.wait_for(lambda: self._stored >= target, timeout)

    def close(self) -> None:
        """Flush, then stop the writer thread (idempotent); later :meth:`put` calls raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            self._hurry.set()
            thread.join()
        _live.discard(self)

    def _run(self) -> None:
        while True:
            batch, stop = self._collect()
            if batch:
                self._store(batch)
            if stop:
                return

    def _collect(self) -> tuple[list[Any], bool]:
        """The next batch: the first entry queued, then everything queued within :data:`LINGER` seconds (at once
        when a flush or close asks); and whether the writer must stop after it."""
        item = self._queue.get()
        if item is _STOP:
            return [], True
        self._hurry.wait(LINGER)  # let entries gather: one transaction for all, one wake-up of this thread
        self._hurry.clear()
        batch = [item]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _store(self, batch: list[tuple[Any, str, bytes, Any]]) -> None:
        by_store: dict[int, tuple[Any, list[tuple[str, bytes, Any]]]] = {}
        for store, key, blob, tag in batch:
            by_store.setdefault(id(store), (store, []))[1].append((key, blob, tag))
        for store, items in by_store.values():
            try:
                stored = store.set_many([(key, blob) for key, blob, _tag in items])
            except Exception as error:
                logger.warning("could not store %d cache entries: %s (their calls are made again when needed)",
                               len(items), error)
                stored = [False] * len(items)
            for (key, blob, tag), ok in zip(items, stored, strict=True):
                if ok and self._on_stored is not None:
                    self._on_stored(tag)
                with self._lock:
                    if self._pending.get((id(store), key)) is blob:
                        del self._pending[(id(store), key)]
        with self._done:
            self._stored += len(batch)
            self._done.notify_all()


def store_counter(stats: RunStats) -> Callable[[Any], None]:
    """The ``on_stored`` of a cache's writer: an LM entry tagged ``(model, endpoint)`` counts as a store."""

    def stored(tag: Any) -> None:
        if isinstance(tag, tuple):
            stats.count("stores", *tag)

    return stored


def close_cache(writer: BatchWriter | None, results: Any, directory: Path | None, stats: RunStats, store: Any) -> None:
    """Close a cache: store what is queued, close the result store, then counters and entry store
    (:func:`cscprog.cache.stats.finish_run`). A cache's finalizer: runs once."""
    try:
        if writer is not None:
            writer.close()
    finally:
        try:
            results.close()
        finally:
            finish_run(directory, stats, store)


@atexit.register
def _flush_at_exit() -> None:
    """Store what is still queued when the interpreter exits (the writer thread is a daemon)."""
    for writer in list(_live):
        writer.close()
