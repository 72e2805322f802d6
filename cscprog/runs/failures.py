"""The failures of a run: ``<output>.failures.jsonl``, one line per failed item, retried by ``resume``.

Each record names the item, the error type, the reason, and what the error carries that helps to debug it (the
role and the raw LM text of a :class:`cscprog.lm.invoke.GenerationFailure`, the cache key of a
:class:`cscprog.cache.CacheMissError`), with every secret value and URL credential redacted
(:func:`cscprog.redaction.redact`).
Failures are appended as they happen (so a crash keeps them); when a run ends, the file is rewritten to hold
the latest failure of every item that is still not finished, in input order, or removed when there is none.

Example:
    ```python
    log = FailureLog(Path("out.jsonl.failures.jsonl"), secrets=set())
    log.record("d-7", GenerationFailure("judge", "output did not parse", "garbage"))
    log.finalize(order=["d-1", "d-7"], done=set())
    ```
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from cscprog.files import atomic_write
from cscprog.redaction import redact
from cscprog.runs.breaker import provider_failure_kind

__all__ = ["FailureLog", "describe_failure", "failures_path"]

logger = logging.getLogger(__name__)

REASON_LIMIT = 4000
"""Characters of an error message kept in a failure record."""

CAUSE_LIMIT = 600
"""Characters of a chained exception's message kept in a failure record."""


def failures_path(output: str | os.PathLike[str]) -> Path:
    """``<output>.failures.jsonl``: where a run's failures go.

    Example:
        ```python
        failures_path("runs/out.jsonl")  # Path("runs/out.jsonl.failures.jsonl")
        ```
    """
    target = Path(output)
    return target.with_name(target.name + ".failures.jsonl")


def _clip(text: str, limit: int = REASON_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "...[truncated]"


def describe_failure(item_id: str, error: BaseException, secrets: set[str] | None = None,
                     round_: int = 1) -> dict[str, Any]:
    """The failure record of one item (JSON-able, secrets redacted).

    Keys: ``item_id``, ``error`` (the exception type), ``reason`` (its message), ``round`` (how many runs in a
    row this item failed in), and when the error carries them ``role``, ``attempts``, ``raw_text``, ``model``,
    ``endpoint``, ``limit``; ``cause`` names a chained exception; ``provider_failure`` names the provider error
    (a DSPy ``LMError`` type) behind the failure, when there is one (the circuit breaker counts these).

    Example:
        ```python
        describe_failure("d-1", ValueError("bad"))  # {"item_id": "d-1", "error": "ValueError", "reason": "bad", ...}
        ```
    """
    record: dict[str, Any] = {"item_id": item_id, "error": type(error).__name__, "reason": _clip(str(error)),
                              "round": round_}
    for name in ("role", "attempts", "raw_text", "model", "endpoint", "limit"):
        value = getattr(error, name, None)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            record[name] = value
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None:
        record["cause"] = f"{type(cause).__name__}: {_clip(str(cause), CAUSE_LIMIT)}"
    provider = provider_failure_kind(error)
    if provider is not None:
        record["provider_failure"] = provider
    return redact(record, secrets or set())


class FailureLog:
    """The failures file of one run: appends as failures happen, rewrites once at the end.

    Args:
        path: ``<output>.failures.jsonl``.
        secrets: Values to redact from every record.
        previous: Failure records of earlier runs (from :meth:`load`), kept for items this run does not retry.

    Example:
        ```python
        log = FailureLog(failures_path(out), previous=FailureLog.load(failures_path(out)))
        ```
    """

    def __init__(self, path: Path, *, secrets: set[str] | None = None,
                 previous: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.secrets = secrets or set()
        self.latest: dict[str, dict[str, Any]] = dict(previous or {})
        self.count = 0
        self._handle: Any = None

    @staticmethod
    def load(path: Path) -> dict[str, dict[str, Any]]:
        """The latest failure record of each item in an existing failures file (unreadable lines skipped)."""
        found: dict[str, dict[str, Any]] = {}
        if not path.is_file():
            return found
        with path.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a torn last line of an interrupted run: that failure is retried anyway
                if isinstance(record, dict) and isinstance(record.get("item_id"), str):
                    found[record["item_id"]] = record
        return found

    def rounds(self) -> dict[str, int]:
        """How many runs in a row each item with a failure record has failed in."""
        return {item_id: int(entry.get("round") or 1) for item_id, entry in self.latest.items()}

    def record(self, item_id: str, error: BaseException, round_: int = 1) -> dict[str, Any]:
        """Append the failure of ``item_id`` in its ``round_``-th failing run (flushed at once); return the record."""
        return self.add(describe_failure(item_id, error, self.secrets, round_), round_)

    def add(self, entry: dict[str, Any], round_: int = 1) -> dict[str, Any]:
        """Append a failure already described (by :func:`describe_failure`, possibly in another process).

        The record is redacted again with this log's secrets and gets ``round_``; returns what was written.

        Example:
            ```python
            log.add(describe_failure("d-3", error), round_=2)
            ```
        """
        entry = redact({**entry, "round": round_}, self.secrets)
        item_id = str(entry["item_id"])
        self.latest[item_id] = entry
        self.count += 1
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab")
        self._handle.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return entry

    def finalize(self, order: list[str], done: set[str]) -> int:
        """Rewrite the file with the latest failure of each unfinished item (input order first); return how many.

        The file is removed when no failure remains.
        """
        self.close()
        remaining = {item_id: entry for item_id, entry in self.latest.items() if item_id not in done}
        ordered = [item_id for item_id in order if item_id in remaining]
        listed = set(ordered)
        ordered.extend(item_id for item_id in remaining if item_id not in listed)
        if not ordered:
            self.path.unlink(missing_ok=True)
            return 0
        lines = [(json.dumps(remaining[item_id], ensure_ascii=False) + "\n").encode("utf-8") for item_id in ordered]
        atomic_write(self.path, b"".join(lines))
        return len(ordered)

    def close(self) -> None:
        """Close the append handle (idempotent)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.close()
