"""Cache bundles: a portable, checksummed export of cache entries as gzip-compressed JSON lines.

The first line is a header (``format``, ``format_version``, ``created``); every other line is one entry,
``{"key", "meta", "payload", "sum"}``, where ``sum`` covers the other three. Reading checks every line and names
the first bad one in a :class:`CacheBundleError <cscprog.cache.CacheBundleError>`; writing is atomic.

Example:
    ```python
    cache.export("run.cache.jsonl.gz")                                   # on the machine that paid for the calls
    ResponseCache("cache", mode="replay").import_bundle("run.cache.jsonl.gz")  # anywhere else
    ```
"""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from cscprog.cache.entries import KINDS, digest, pack_entry
from cscprog.cache.errors import CacheBundleError
from cscprog.files import atomic_writer
from cscprog.stamps import utc_iso

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "cscprog-cache-bundle"
BUNDLE_FORMAT_VERSION = 1


def _line_sum(key: str, meta: dict[str, Any], payload: str) -> str:
    canonical = orjson.dumps({"key": key, "meta": meta, "payload": payload}, option=orjson.OPT_SORT_KEYS)
    return digest(canonical)


def write_bundle(path: Path, entries: Iterable[tuple[str, dict[str, Any], bytes]]) -> None:
    header = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "created": utc_iso(time.time()),
    }
    try:
        with atomic_writer(path) as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw) as out:
            out.write(orjson.dumps(header) + b"\n")
            for key, meta, payload in entries:
                text = payload.decode("utf-8")
                line = {"key": key, "meta": meta, "payload": text, "sum": _line_sum(key, meta, text)}
                out.write(orjson.dumps(line) + b"\n")
    except OSError as error:
        raise CacheBundleError(str(path), f"cannot write bundle: {error.strerror or error}") from None


def read_bundle(path: Path) -> Iterator[tuple[str, dict[str, Any], bytes]]:
    """(key, meta, payload) of every entry of a bundle; CacheBundleError names the first bad line."""
    if not path.is_file():
        raise CacheBundleError(str(path), "bundle file not found")
    number = 0
    try:
        with gzip.open(path, "rb") as source:
            for number, raw in enumerate(source, start=1):
                if number == 1:
                    _check_header(path, raw)
                    continue
                if not raw.strip():
                    continue
                yield _check_line(path, number, raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        where = f"after line {number}: " if number else ""
        raise CacheBundleError(str(path), f"{where}not a complete gzip file ({error})") from None
    if number == 0:
        raise CacheBundleError(str(path), "empty bundle (no header line)")


def _check_header(path: Path, raw: bytes) -> None:
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != BUNDLE_FORMAT:
        raise CacheBundleError(str(path), "not a cscprog cache bundle (bad header)", line=1)
    if header.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise CacheBundleError(str(path), f"unsupported bundle format_version {header.get('format_version')!r}", line=1)


def _check_line(path: Path, number: int, raw: bytes) -> tuple[str, dict[str, Any], bytes]:
    def bad(reason: str) -> CacheBundleError:
        return CacheBundleError(str(path), reason, line=number)

    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise bad(f"not valid JSON ({error})") from None
    if not isinstance(line, dict):
        raise bad("not a JSON object")
    missing = [name for name in ("key", "meta", "payload", "sum") if name not in line]
    if missing:
        raise bad(f"missing field(s) {', '.join(missing)}")
    key, meta, payload, checksum = line["key"], line["meta"], line["payload"], line["sum"]
    if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise bad("'key' is not a sha256 hex digest")
    if not isinstance(meta, dict) or meta.get("kind") not in KINDS or not isinstance(meta.get("model"), str):
        raise bad("'meta' is not valid entry metadata (kind, model)")
    if not isinstance(payload, str):
        raise bad("'payload' is not a string")
    if checksum != _line_sum(key, meta, payload):
        raise bad("checksum mismatch (the line was altered or truncated)")
    data = payload.encode("utf-8")
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise bad(f"'payload' is not JSON ({error})") from None
    return key, meta, data


def export_entries(
    entries: Iterable[tuple[str, dict[str, Any] | None, bytes, int]], path: Path, *, model: str | None = None
) -> int:
    """Write the ``(key, meta or None if corrupt, payload, size)`` entries (of one model) as a bundle; their count.

    Corrupt entries are skipped and logged.
    """
    written = 0

    def selected() -> Iterator[tuple[str, dict[str, Any], bytes]]:
        nonlocal written
        for key, meta, payload, _size in entries:
            if meta is None:
                logger.warning("skipping corrupt cache entry %s", key)
            elif model is None or meta.get("model") == model:
                written += 1
                yield key, meta, payload

    write_bundle(path, selected())
    return written


def import_entries(store: Any, path: Path, *, overwrite: bool) -> list[str]:
    """Add the entries of the bundle at ``path`` to ``store`` after checking every line; the keys written."""
    for _ in read_bundle(path):
        pass  # validate everything first
    written = []
    for key, meta, payload in read_bundle(path):
        blob = pack_entry(meta, payload)
        try:
            done = store.set(key, blob, retry=True) if overwrite else store.add(key, blob, retry=True)
        except Exception as error:
            raise CacheBundleError(str(path), f"cannot store entry {key}: {error}") from None
        if done:
            written.append(key)
    return written
