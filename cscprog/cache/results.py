"""The result layer's store: a predictor call's parsed outputs, kept next to the LM entries they came from.

Replaying a cached LM call through DSPy still formats the prompt, looks the request up and parses the reply. A
*result entry* skips all three: it is keyed by everything that determines the prompt (see
:mod:`cscprog.cache.result_keys`) and holds the adapter's parsed outputs together with the LM calls that produced
them (their cache keys, model, endpoint, usage, cost and raw outputs), so a result hit reports exactly the hits,
tokens and cost the full path would have reported.

Result entries are derived data: they live in their own store (``<cache>/results/``), are written only when the
LM entries they come from were served or stored in ``readwrite`` (or ``refresh``) mode, and are dropped whenever
LM entries are cleared or overwritten by an import. ``replay`` mode reads them and writes nothing (a cache without
a ``results/`` directory stays untouched: every call then takes the full path).

Only outputs that survive a JSON round trip unchanged are stored (strings, finite floats, ints, booleans, None,
lists and string-keyed dicts of those); anything else (pydantic objects, tool calls) always takes the full path.

Example:
    ```python
    store = ResultStore(Path("runs/cache"), mode="readwrite")
    store.put("k" * 64, [{"answer": "4"}], [call])
    outputs, calls = store.get("k" * 64)
    ```
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cscprog.cache.entries import pack_entry, unpack_entry
from cscprog.cache.errors import CorruptEntry
from cscprog.cache.memory import MemoryStore
from cscprog.cache.shards import ShardedStore
from cscprog.cache.writer import BatchWriter

__all__ = ["RESULTS_DIR", "RESULT_SHARDS", "CallRecord", "ResultStore", "is_recording", "json_plain", "note_call",
           "recording", "text_outputs"]

logger = logging.getLogger(__name__)

RESULTS_DIR = "results"
"""The result store's directory inside the cache directory."""

RESULT_SHARDS = 1
"""SQLite files of the result store. One: the cache writer stores a batch's result entries in one transaction (a
concurrency-16 synthesis spread them over eight, about one entry each). Results are derived data: a store left by
an earlier eight-file layout has its other files removed when opened for writing, and its entries recomputed."""

_FORMAT = 1


@dataclass
class CallRecord:
    """One LM call behind a result: what a hit on its LM entry reports (stats, observer) and its raw outputs.

    Attributes:
        key: The LM entry's cache key.
        model: The model string.
        endpoint: The normalized endpoint, or None.
        n: Completions asked for.
        prompt_chars: Characters of the rendered prompt.
        max_tokens: The completion limit, when set.
        usage: The tokens the original call used.
        cost: Its cost in USD, or None.
        outputs: What the LM call returned to the adapter (its completions' texts), or None when that is not
            plain text (the call's result is then not kept).
    """

    key: str
    model: str
    endpoint: str | None
    n: int
    prompt_chars: int
    max_tokens: int | None
    usage: dict[str, int]
    cost: float | None
    outputs: list[Any] | None = field(default=None)


_recorder: contextvars.ContextVar[list[CallRecord] | None] = contextvars.ContextVar(
    "cscprog_result_calls", default=None
)


@contextlib.contextmanager
def recording() -> Iterator[list[CallRecord]]:
    """Collect the :class:`CallRecord` of every LM call the cache serves or stores inside the block.

    Example:
        ```python
        with recording() as calls:
            adapter(lm, lm_kwargs={}, signature=signature, demos=[], inputs=inputs)
        ```
    """
    calls: list[CallRecord] = []
    token = _recorder.set(calls)
    try:
        yield calls
    finally:
        _recorder.reset(token)


def is_recording() -> bool:
    """True inside :func:`recording` (the cache then notes every call it serves or stores)."""
    return _recorder.get() is not None


def note_call(record: CallRecord) -> None:
    """Add ``record`` to the calls being recorded (:func:`recording`), if any."""
    calls = _recorder.get()
    if calls is not None:
        calls.append(record)


def text_outputs(record: Any) -> list[str] | None:
    """What DSPy's LM call returns for a cached record, when that is plain text: the ``outputs`` of a native record
    (DSPy loads them unchanged when every one is a string); None otherwise (dict outputs with logprobs or tool
    calls, LiteLLM records).

    Example:
        ```python
        assert text_outputs({"_dspy_format": "dspy-lm15-result-v1", "outputs": ["hi"]}) == ["hi"]
        ```
    """
    if not isinstance(record, dict) or "_dspy_format" not in record:
        return None
    outputs = record.get("outputs")
    if type(outputs) is not list or not all(type(output) is str for output in outputs):
        return None
    return list(outputs)


def json_plain(value: Any) -> bool:
    """True when ``value`` comes back from a JSON round trip as an equal object of the same types.

    Example:
        ```python
        assert json_plain({"a": [1, 2.5, None, "x"]}) and not json_plain({"a": (1, 2)})
        ```
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -(2**63) <= value < 2**64
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(json_plain(item) for item in value)
    if kind is dict:
        return all(type(name) is str and json_plain(item) for name, item in value.items())
    return False


def _drop_other_layouts(directory: Path) -> None:
    """Remove shard files of an earlier layout (``001/`` ... beside ``000/``): their entries are derived data."""
    if not directory.is_dir():
        return
    for shard in sorted(directory.iterdir()):
        if shard.is_dir() and shard.name.isdigit() and len(shard.name) == 3 and int(shard.name) >= RESULT_SHARDS:
            shutil.rmtree(shard, ignore_errors=True)
            logger.info("removed %s: a result-store file of an earlier layout (its results are recomputed)", shard)


class ResultStore:
    """Result entries of one cache directory (or of memory), with their own counters.

    Args:
        directory: The cache directory (the store is ``directory/results``); None keeps everything in memory.
        mode: The cache mode: ``replay`` opens an existing store only and never writes.
        size_limit: Disk size limit in bytes.
        writer: The cache's :class:`~cscprog.cache.writer.BatchWriter` (None: entries are stored at once).

    Example:
        ```python
        store = ResultStore(None, mode="readwrite")
        ```
    """

    def __init__(self, directory: Path | None, *, mode: str, size_limit: int = 20 * 2**30,
                 writer: BatchWriter | None = None) -> None:
        self.mode = mode
        self._writer = writer
        self.directory = directory / RESULTS_DIR if directory is not None else None
        self._size_limit = size_limit
        self._store: Any = MemoryStore() if directory is None else None
        self._lock = threading.Lock()
        self.counts = {"hits": 0, "misses": 0, "stores": 0, "errors": 0, "stale": 0}

    def _opened(self, *, create: bool) -> Any:
        if self._store is None and self.directory is not None:
            with self._lock:
                if self._store is None and (create or self.directory.is_dir()):
                    repair = self.mode != "replay"
                    if repair:
                        _drop_other_layouts(self.directory)
                    self._store = ShardedStore(self.directory, repair=repair, size_limit=self._size_limit,
                                               shards=RESULT_SHARDS, exact_index=False)
        return self._store

    def count(self, what: str) -> None:
        """Add one to counter ``what`` (hits, misses, stores, errors, stale)."""
        with self._lock:
            self.counts[what] += 1

    def get(
        self, key: str, holds: Callable[[str], bool] | None = None
    ) -> tuple[list[dict[str, Any]], list[CallRecord]] | None:
        """(outputs, calls) stored under ``key``, or None (a damaged entry is logged and treated as absent).

        ``holds(lm_key)``: whether the LM cache still holds an entry; a result with a call whose entry was lost
        or evicted is *stale* and not served (the full path re-fetches it, or misses in ``replay`` mode).
        """
        store = self._opened(create=False)
        try:
            blob = self._writer.pending(store, key) if self._writer is not None and store is not None else None
            if blob is None and store is not None:
                blob = store.get(key, None, retry=True)
            if blob is None:
                self.count("misses")
                return None
            meta, payload = unpack_entry(blob)
            data = orjson.loads(payload)
            if meta.get("format") != _FORMAT:
                raise CorruptEntry(f"unknown result format {meta.get('format')!r}")
            found = data["outputs"], [CallRecord(**call) for call in data["calls"]]
        except (CorruptEntry, orjson.JSONDecodeError, KeyError, TypeError, OSError, sqlite3.Error) as error:
            self.count("errors")
            logger.warning("result entry %s is unusable (%s): the call takes the full path", key, error)
            if self.mode != "replay" and store is not None:
                with contextlib.suppress(Exception):
                    store.delete(key, retry=True)
            return None
        if holds is not None and not all(holds(call.key) for call in found[1]):
            self.count("stale")
            return None
        self.count("hits")
        return found

    def put(self, key: str, outputs: list[dict[str, Any]], calls: list[CallRecord]) -> bool:
        """Store a result (not in ``replay``/``off`` mode); failures are logged, never raised. True when stored."""
        if self.mode not in ("readwrite", "refresh"):
            return False
        payload = orjson.dumps({"outputs": outputs, "calls": [dict(vars(call)) for call in calls]})
        meta = {"format": _FORMAT, "models": sorted({call.model for call in calls})}
        try:
            store = self._opened(create=True)
            if self._writer is not None:
                self._writer.put(store, key, pack_entry(meta, payload), "results")
                self.count("stores")
                return True
            stored = bool(store.set(key, pack_entry(meta, payload), retry=True))
        except Exception as error:
            logger.warning("could not store result entry %s: %s", key, error)
            return False
        if stored:
            self.count("stores")
        return stored

    def clear(self) -> int:
        """Drop every result entry (they are rebuilt from the LM entries on the next ``readwrite`` run)."""
        if self._writer is not None:
            self._writer.flush()
        store = self._opened(create=False)
        return int(store.clear(retry=True)) if store is not None and self.mode != "replay" else 0

    def close(self) -> None:
        """Close the store's connections."""
        if self._store is not None:
            self._store.close()
