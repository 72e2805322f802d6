"""Cache counters: this process's hits, misses, stores and errors, ``last_run.json``, and whole-cache summaries.

A :class:`ResponseCache <cscprog.cache.ResponseCache>` counts what it does in a ``RunStats``; when the cache is
closed (or garbage-collected) after serving or storing anything, the counters are written atomically to
``last_run.json`` in its directory, where :func:`read_last_run` (and ``cscprog cache stats``) find them.

Example:
    ```python
    from cscprog.cache import json_stats, read_last_run

    last = read_last_run("~/.cache/cscprog")
    if last:
        print(json_stats(last))
    ```
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from cscprog.files import atomic_write
from cscprog.stamps import utc_iso

logger = logging.getLogger(__name__)

LAST_RUN_FILE = "last_run.json"
"""Written into the cache directory when a cache that served or stored anything is closed."""


class RunStats:
    """This process's counters for one cache; shared with the finalizer that writes ``last_run.json``."""

    def __init__(self, mode: str, version: str) -> None:
        self.lock = threading.Lock()
        self.mode = mode
        self.version = version
        self.started = time.time()
        self.totals = {"hits": 0, "misses": 0, "stores": 0, "errors": 0}
        self.saved = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": 0.0, "cost_unknown": 0}
        self.by_call: dict[tuple[str, str], dict[str, int]] = {}

    def count(self, what: str, model: str, endpoint: str) -> None:
        with self.lock:
            self.totals[what] += 1
            row = self.by_call.get((model, endpoint))
            if row is None:
                row = self.by_call[(model, endpoint)] = {"hits": 0, "misses": 0, "stores": 0, "errors": 0}
            row[what] += 1

    def hit(self, model: str, endpoint: str, usage: dict[str, int], cost: float | None) -> None:
        self.count("hits", model, endpoint)
        with self.lock:
            for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
                self.saved[name] += usage.get(name, 0)
            if cost is None:
                self.saved["cost_unknown"] += 1
            else:
                self.saved["cost"] += cost

    def active(self) -> bool:
        return any(self.totals.values())

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "mode": self.mode,
                "version": self.version,
                "started": utc_iso(self.started),
                **dict(self.totals),
                "saved": dict(self.saved),
                "by_call": [
                    {"model": model, "endpoint": endpoint, **dict(row)}
                    for (model, endpoint), row in sorted(self.by_call.items())
                ],
            }


def write_last_run(directory: Path, counters: dict[str, Any]) -> None:
    """Write a run's cache counters as ``last_run.json`` in ``directory`` (the one writer of that file).

    ``finished`` and ``pid`` are added; a failure to write is logged, never raised (the run's results are safe).

    Example:
        ```python
        write_last_run(Path("~/.cache/cscprog").expanduser(), {"mode": "readwrite", "hits": 3, "misses": 1})
        ```
    """
    data = {**counters, "finished": utc_iso(time.time()), "pid": os.getpid()}
    try:
        atomic_write(directory / LAST_RUN_FILE, orjson.dumps(data, option=orjson.OPT_INDENT_2), fsync=False)
    except OSError as error:
        logger.warning("could not write %s: %s", directory / LAST_RUN_FILE, error)


def finish_run(directory: Path | None, stats: RunStats, store: Any) -> None:
    """Write ``last_run.json`` (when the cache did anything) and close the store. Runs once."""
    try:
        if directory is not None and stats.active():
            write_last_run(directory, stats.snapshot())
    finally:
        with contextlib.suppress(Exception):
            store.close()


def read_last_run(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The counters the last closed cache wrote into ``directory``, or None.

    Example:
        ```python
        last = read_last_run("~/.cache/cscprog")
        if last:
            print(last["hits"], last["misses"])
        ```
    """
    path = Path(directory).expanduser() / LAST_RUN_FILE
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def summarize_entries(entries: Iterable[tuple[str, dict[str, Any] | None, bytes, int]]) -> dict[str, Any]:
    """Counts over ``(key, meta or None if corrupt, payload, size)`` entries: totals, time range, groups."""
    groups: dict[str, dict[str, dict[str, Any]]] = {"by_model": {}, "by_endpoint": {}, "by_role": {}}
    count = corrupt = payload_bytes = 0
    oldest = newest = None
    for _key, meta, _payload, size in entries:
        if meta is None:
            corrupt += 1
            continue
        count += 1
        payload_bytes += size
        created = meta.get("created")
        if isinstance(created, (int, float)):
            oldest = created if oldest is None else min(oldest, created)
            newest = created if newest is None else max(newest, created)
        usage, cost = meta.get("usage") or {}, meta.get("cost")
        names = {
            "by_model": str(meta.get("model")),
            "by_endpoint": str(meta.get("endpoint")),
            "by_role": str(meta.get("role") or "(none)"),
        }
        for group, name in names.items():
            row = groups[group].setdefault(
                name, {"entries": 0, "bytes": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}
            )
            row["entries"] += 1
            row["bytes"] += size
            row["prompt_tokens"] += int(usage.get("prompt_tokens", 0))
            row["completion_tokens"] += int(usage.get("completion_tokens", 0))
            row["cost"] += cost or 0.0
    return {
        "entries": count,
        "corrupt": corrupt,
        "entry_bytes": payload_bytes,
        "oldest": utc_iso(oldest) if oldest is not None else None,
        "newest": utc_iso(newest) if newest is not None else None,
        **{group: dict(sorted(rows.items())) for group, rows in groups.items()},
    }


def json_stats(stats: dict[str, Any]) -> str:
    """``stats()`` as indented JSON text (for the CLI and manifests).

    Example:
        ```python
        print(json_stats(cache.stats()))
        ```
    """
    return json.dumps(stats, indent=2, sort_keys=False, default=str)
