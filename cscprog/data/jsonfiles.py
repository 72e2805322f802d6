"""Raw JSON records of a data file (JSON list or JSONL), with every way a file can be unreadable named.

:func:`iter_records` yields ``(record, line, data, problem)`` for each record of a file: a JSONL file a line at a
time, any other file as one JSON document (a list of records, or one record). A file that cannot be read as
text at all (a directory, a device, a binary file, UTF-16 text, an empty file) raises
:class:`~cscprog.errors.DataError` naming the file; a line that is not UTF-8 or not JSON comes back as that
record's ``problem``, so callers may skip it. A UTF-8 byte-order mark is accepted. ``NaN`` and ``Infinity``
are refused (they are not JSON, and no output could carry them), and so is nesting deeper than
:data:`MAX_DEPTH`.

Example:
    ```python
    for record, line, data, problem in iter_records(Path("dialogues.jsonl")):
        if problem is not None:
            raise problem
        print(record, line, type(data).__name__)
    ```
"""

from __future__ import annotations

import codecs
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cscprog.errors import DataError

__all__ = ["MAX_DEPTH", "check_readable", "iter_records", "loads"]

MAX_DEPTH = 200
"""Deepest nesting of lists and objects accepted in a record (a dialogue needs about five)."""

_SNIFF_BYTES = 4096
_UTF16_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class _NotJson(ValueError):
    """A value JSON does not allow (NaN, Infinity) or nesting beyond MAX_DEPTH."""


def _no_constants(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value (write null or a number)")


def _depth(text: str) -> int:
    """The deepest bracket nesting of ``text``, brackets inside strings ignored."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity and nesting deeper than :data:`MAX_DEPTH` (``ValueError``).

    Example:
        ```python
        loads('{"a": [1, 2]}')  # {"a": [1, 2]}
        ```
    """
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise _NotJson(f"nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise _NotJson(f"nested more than {MAX_DEPTH} levels deep") from None


def check_readable(path: Path) -> None:
    """Raise a :class:`DataError` unless ``path`` is an existing regular file.

    Example:
        ```python
        check_readable(Path("data.jsonl"))
        ```
    """
    name = str(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(name, "no such file") from None
    except OSError as error:
        raise DataError(name, f"cannot read: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        raise DataError(name, "is a directory, not a data file")
    if not stat.S_ISREG(mode):
        raise DataError(name, "is not a regular file (a device, pipe or socket), not a data file")


def _sniff(path: Path) -> bytes:
    """The first bytes of the file, after checking it looks like UTF-8 text."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise DataError(name, f"cannot read: {error.strerror or error}") from None
    if head.startswith(_UTF16_BOMS) and not head.startswith(codecs.BOM_UTF8):
        raise DataError(name, "UTF-16/UTF-32 text; save the file as UTF-8")
    if b"\x00" in head:
        raise DataError(name, "binary data (NUL bytes), not JSON text: is this the right file?")
    return head


def _json_problem(name: str, error: ValueError, text: str, record: int | None, line: int | None) -> DataError:
    if isinstance(error, json.JSONDecodeError):
        truncated = line is None and error.pos >= len(text.rstrip())  # a JSONL line is judged as a whole
        reason = "truncated JSON" if truncated else "invalid JSON"
        return DataError(name, f"{reason}: {error.msg} (column {error.colno})", record=record,
                         line=line if line is not None else error.lineno)
    return DataError(name, f"invalid JSON: {error}", record=record, line=line)


def iter_records(path: Path) -> Iterator[tuple[int, int | None, Any, DataError | None]]:
    """``(record index, line or None, data, problem or None)`` of every record of a JSON or JSONL file.

    Raises:
        DataError: the file is missing, not a regular file, binary, UTF-16, empty, or (JSON list) not UTF-8
            or not valid JSON.

    Example:
        ```python
        records = [data for _record, _line, data, problem in iter_records(Path("p.jsonl")) if problem is None]
        ```
    """
    name = str(path)
    check_readable(path)
    head = _sniff(path)
    if not head.strip() and path.stat().st_size <= len(head):
        raise DataError(name, "empty file: no records")
    if path.suffix.lower() == ".jsonl":
        yield from _jsonl_records(path)
        return
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(name, f"not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise DataError(name, "empty file: no records")
    try:
        data = loads(text)
    except ValueError as error:
        raise _json_problem(name, error, text, None, None) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(name, f"expected a JSON list of dialogues, got {type(data).__name__}")
    for record, item in enumerate(data):
        yield record, None, item, None


def _jsonl_records(path: Path) -> Iterator[tuple[int, int | None, Any, DataError | None]]:
    name = str(path)
    record = 0
    seen_any = False
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                seen_any = True
                yield record, number, None, DataError(name, f"not UTF-8 text (byte {error.start} of the line)",
                                                      record=record, line=number)
                record += 1
                continue
            if not text.strip():
                continue
            seen_any = True
            try:
                data = loads(text)
            except ValueError as error:
                yield record, number, None, _json_problem(name, error, text, record, number)
            else:
                yield record, number, data, None
            record += 1
    if not seen_any:
        raise DataError(name, "empty file: no records")
