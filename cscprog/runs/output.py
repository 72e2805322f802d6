"""The JSONL output of a run: crash-safe appends, a fast scan of finished ids, torn-tail repair, final ordering.

* :class:`JsonlSink` appends each finished item's lines with one ``write`` on an ``O_APPEND`` descriptor, then
  ``fsync``\\ s, so a crash loses at most the item being written. It holds an exclusive ``flock`` on the file so a
  second run cannot write the same output at the same time.
* :func:`scan_output` reads the ids of the finished items (only the id field: a regex on the line start and a
  check of the closing brace, with a full JSON parse only when the id is not the first key) and detects a torn
  tail: bytes after the last newline are an interrupted write and are dropped (for items with several
  records, the whole last item is dropped when the torn line belongs to it or cannot be attributed).
* :func:`rewrite_in_order` rewrites the file atomically (temp file, ``fsync``, rename) in input order, so the same
  inputs, seed and cache give byte-identical outputs at any concurrency.

Example:
    ```python
    scan = scan_output("out.jsonl", "id")          # repairs a torn tail
    with JsonlSink("out.jsonl") as sink:
        sink.append(b'{"id": "d-3", "turns": []}\\n')
    rewrite_in_order("out.jsonl", ["d-1", "d-2", "d-3"], "id")
    ```
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cscprog.files import atomic_writer, stale_temporaries
from cscprog.runs.items import RunInputError

__all__ = [
    "JsonlSink",
    "OutputScan",
    "remove_stale_temporaries",
    "rewrite_in_order",
    "scan_output",
]

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


@dataclass
class OutputScan:
    """What :func:`scan_output` found in an output file.

    Attributes:
        path: The file.
        exists: Whether the file exists.
        size: Bytes of complete, kept lines (the file is truncated to this when repaired).
        records: Complete lines kept.
        spans: Byte spans ``[(start, end), ...]`` of each id's lines, ids in file order.
        dropped_bytes: Bytes of the torn tail dropped (0 when the file ended cleanly).
        dropped_records: Complete lines dropped with the torn tail (the rest of an interrupted item).
        duplicates: Ids found in more than one separate place.
    """

    path: Path
    exists: bool = False
    size: int = 0
    records: int = 0
    spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    dropped_bytes: int = 0
    dropped_records: int = 0
    duplicates: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """The ids in the file, in order of first appearance."""
        return list(self.spans)

    @property
    def empty(self) -> bool:
        """True when the file is missing or holds no record (blank lines and a torn tail only)."""
        return not self.spans


def _id_pattern(id_field: str) -> re.Pattern[bytes]:
    key = re.escape(orjson.dumps(id_field))
    return re.compile(rb'\{\s*' + key + rb'\s*:\s*"([^"\\]*)"')


def _line_id(line: bytes, pattern: re.Pattern[bytes], id_field: str, path: Path, number: int) -> str:
    match = pattern.match(line)
    if match is not None and line.rstrip().endswith(b"}"):
        return match.group(1).decode("utf-8")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise RunInputError(
            f"{path}: line {number} is not valid JSON ({error}); the output is corrupt before its last line, "
            "fix or remove that line"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get(id_field), str):
        raise RunInputError(f"{path}: line {number} has no string field {id_field!r}, so its item cannot be identified")
    return record[id_field]


def _lines(handle: Any) -> Iterator[bytes]:
    """Lines of a binary file, split on ``\\n`` only (never on Unicode line separators)."""
    rest = b""
    while True:
        chunk = handle.read(_READ_CHUNK)
        if not chunk:
            if rest:
                yield rest
            return
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield part + b"\n"


def scan_output(path: str | os.PathLike[str], id_field: str, *, many_records: bool = False,
                repair: bool = True) -> OutputScan:
    """The finished ids of an output file, dropping a torn tail (and truncating the file when ``repair``).

    Args:
        path: The JSONL output.
        id_field: The record field holding the item id.
        many_records: Items write several lines; a torn tail then also drops the complete lines of the last
            item when the torn line belongs to it or its id cannot be read.
        repair: Truncate the file to :attr:`OutputScan.size` when a torn tail was found.

    Raises:
        RunInputError: a complete line (one ending with a newline) is not JSON or has no id.

    Example:
        ```python
        done = set(scan_output("dialogues.jsonl", "id").ids)
        ```
    """
    target = Path(path)
    scan = OutputScan(path=target)
    if not target.exists():
        return scan
    scan.exists = True
    pattern = _id_pattern(id_field)
    offset = 0
    last_id: str | None = None
    last_start = 0
    last_records = 0
    tail = b""
    with target.open("rb") as handle:
        for number, line in enumerate(_lines(handle), start=1):
            if not line.endswith(b"\n"):
                tail = line
                break
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            item_id = _line_id(line, pattern, id_field, target, number)
            spans = scan.spans.setdefault(item_id, [])
            if item_id == last_id and spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], offset)
                last_records += 1
            else:
                if spans:
                    scan.duplicates.append(item_id)
                spans.append((start, offset))
                last_id, last_start, last_records = item_id, start, 1
            scan.records += 1
    scan.size = offset
    if tail:
        scan.dropped_bytes = len(tail)
        if many_records and last_id is not None:
            match = pattern.match(tail)
            torn_id = match.group(1).decode("utf-8", "replace") if match else None
            if torn_id is None or torn_id == last_id:
                _drop_last_group(scan, last_id, last_start, last_records)
        if repair:
            logger.warning("%s: dropping a torn last line (%d bytes) left by an interrupted write", target,
                           scan.dropped_bytes)
            os.truncate(target, scan.size)
    return scan


def _drop_last_group(scan: OutputScan, item_id: str, start: int, records: int) -> None:
    spans = scan.spans[item_id]
    spans.pop()
    if not spans:
        del scan.spans[item_id]
    scan.dropped_bytes += scan.size - start
    scan.dropped_records += records
    scan.records -= records
    scan.size = start


def remove_stale_temporaries(path: str | os.PathLike[str]) -> int:
    """Delete temp files an interrupted atomic rewrite of ``path`` left behind; return how many.

    Only call it while holding the output (a :class:`JsonlSink`), so no live rewrite is in progress.
    """
    stale = stale_temporaries(path)
    for candidate in stale:
        candidate.unlink(missing_ok=True)
    return len(stale)


def rewrite_in_order(path: str | os.PathLike[str], order: Iterable[str], id_field: str) -> bool:
    """Rewrite an output atomically with its items in ``order``; ids not in ``order`` follow in file order.

    Returns:
        True when the file was rewritten, False when it was already in order (or missing).

    Example:
        ```python
        rewrite_in_order("out.jsonl", [item_id for item_id, _ in items], "id")
        ```
    """
    target = Path(path)
    scan = scan_output(target, id_field, repair=False)
    if scan.empty:
        return False
    present = scan.spans
    wanted = [item_id for item_id in order if item_id in present]
    listed = set(wanted)
    wanted.extend(item_id for item_id in present if item_id not in listed)
    if wanted == list(present) and not scan.duplicates and scan.dropped_bytes == 0:
        return False

    def chunks() -> Iterator[bytes]:
        with target.open("rb") as source:
            for item_id in wanted:
                for start, end in present[item_id]:
                    source.seek(start)
                    yield source.read(end - start)

    with atomic_writer(target) as out:
        out.writelines(chunks())
    return True


class JsonlSink:
    """An output file opened for crash-safe appends by one run (exclusive ``flock``).

    Args:
        path: The JSONL file (created with its directory when missing).

    Raises:
        RunInputError: the path is a directory or cannot be written, or another process holds the file (a second
            run on the same output).

    Example:
        ```python
        with JsonlSink("out.jsonl") as sink:
            sink.append(b'{"id": "a"}\\n')
        ```
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise RunInputError(f"{self.path}: is a directory; give the output as a file path (e.g. out.jsonl)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunInputError(f"{self.path}: cannot write the output here: {error.strerror or error}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise RunInputError(f"{self.path}: another cscprog run is writing this file; wait for it or pick "
                                "another output") from None
        self.appended = 0

    def append(self, data: bytes) -> None:
        """Append complete lines (one ``write`` call when the OS allows), then flush them to disk."""
        if self._fd is None:
            raise ValueError(f"{self.path}: the sink is closed")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.appended += 1

    def close(self) -> None:
        """Release the lock and close the file (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
