"""Stored entries: a DSPy record as checksummed JSON (never pickle), and the usage and cost it carries.

An entry is ``CSC1 <blake2b-128 of the body>\\n<sorted JSON metadata>\\n<JSON payload>``. The metadata holds the
kind of record (``native`` DSPy dict, plain ``json``, or a ``litellm`` pydantic response), its usage, cost,
model, endpoint, provider, role and creation time. Any damage (bad magic, checksum, JSON) raises the internal
``CorruptEntry``, which the cache turns into a logged delete and a recomputation.

Example:
    ```python
    from cscprog.cache.entries import pack_entry, unpack_entry  # internal to the cache package

    blob = pack_entry({"kind": "json", "model": "openai/m"}, b'{"answer": 42}')
    meta, payload = unpack_entry(blob)
    ```
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator
from typing import Any

import orjson
import pydantic

from cscprog.cache.errors import CorruptEntry

_MAGIC = b"CSC1 "
_DIGEST_SIZE = 16  # blake2b-128: a checksum against corruption, not a signature
KINDS = ("native", "json", "litellm")


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).hexdigest()


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def usage_and_cost(record: Any) -> tuple[dict[str, int], float | None]:
    """Usage (prompt/completion/total tokens) and cost (USD) of a DSPy cache record.

    Native records are dicts with ``usage`` and ``cost``; LiteLLM records are ``ModelResponse`` objects with
    ``.usage`` and the cost in ``_hidden_params["response_cost"]``.
    """
    if isinstance(record, dict):
        raw_usage, cost = record.get("usage"), record.get("cost")
    else:
        raw_usage = getattr(record, "usage", None)
        hidden = getattr(record, "_hidden_params", None)
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    usage: dict[str, int] = {}
    if raw_usage:
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            value = _get(raw_usage, name)
            usage[name] = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
        if not usage["total_tokens"]:
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    else:
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if not isinstance(cost, (int, float)) or isinstance(cost, bool):
        cost = None
    return usage, float(cost) if cost is not None else None


def encode_record(record: Any) -> tuple[str, str | None, bytes] | None:
    """(kind, class path, JSON payload) of a record, or None when it cannot be stored without pickle."""
    try:
        if isinstance(record, pydantic.BaseModel):
            cls = type(record)
            if not cls.__module__.startswith("litellm"):
                return None
            try:
                payload = orjson.dumps(record.model_dump())
            except TypeError:
                payload = orjson.dumps(record.model_dump(mode="json"))
            return "litellm", f"{cls.__module__}:{cls.__qualname__}", payload
        payload = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return None
    kind = "native" if isinstance(record, dict) and "_dspy_format" in record else "json"
    return kind, None, payload


_CLASSES: dict[str, type] = {}


def _litellm_class(path: str) -> type:
    cls = _CLASSES.get(path)
    if cls is None:
        module_name, _, qualname = path.partition(":")
        if not module_name.startswith("litellm") or not qualname:
            raise CorruptEntry(f"refusing to rebuild class {path!r}")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as error:
            raise CorruptEntry(f"class {path!r} not found: {error}") from None
        if not (isinstance(obj, type) and issubclass(obj, pydantic.BaseModel)):
            raise CorruptEntry(f"{path!r} is not a pydantic model")
        cls = _CLASSES[path] = obj
    return cls


def decode_record(meta: dict[str, Any], payload: bytes) -> Any:
    """Rebuild what DSPy stored: a fresh object, so no deepcopy is needed."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise CorruptEntry(f"payload is not JSON: {error}") from None
    kind = meta.get("kind")
    if kind in ("native", "json"):
        return data
    if kind == "litellm":
        cls = _litellm_class(str(meta.get("cls")))
        try:
            record = cls(**data)
        except Exception as error:
            raise CorruptEntry(f"cannot rebuild {cls.__name__}: {error}") from None
        hidden = getattr(record, "_hidden_params", None)
        if isinstance(hidden, dict) and meta.get("cost") is not None:
            hidden["response_cost"] = meta["cost"]
        return record
    raise CorruptEntry(f"unknown entry kind {kind!r}")


def pack_entry(meta: dict[str, Any], payload: bytes) -> bytes:
    body = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS) + b"\n" + payload
    return _MAGIC + digest(body).encode("ascii") + b"\n" + body


def unpack_entry(blob: Any, *, verify: bool = True) -> tuple[dict[str, Any], bytes]:
    """(meta, payload) of a stored entry. Raises CorruptEntry on any damage."""
    if not isinstance(blob, bytes) or not blob.startswith(_MAGIC):
        raise CorruptEntry("not a cscprog cache entry")
    header_end = blob.find(b"\n")
    if header_end < 0:
        raise CorruptEntry("truncated header")
    body = memoryview(blob)[header_end + 1 :]
    if verify and digest(body).encode("ascii") != blob[len(_MAGIC) : header_end]:
        raise CorruptEntry("checksum mismatch")
    meta_end = blob.find(b"\n", header_end + 1)
    if meta_end < 0:
        raise CorruptEntry("truncated metadata")
    try:
        meta = orjson.loads(blob[header_end + 1 : meta_end])
    except orjson.JSONDecodeError as error:
        raise CorruptEntry(f"metadata is not JSON: {error}") from None
    if not isinstance(meta, dict):
        raise CorruptEntry("metadata is not an object")
    return meta, blob[meta_end + 1 :]


def stored_entries(store: Any, *, verify: bool = True) -> Iterator[tuple[str, dict[str, Any] | None, bytes, int]]:
    """(key, meta or None if corrupt, payload, stored size) of every entry of a store."""
    for key in store:
        blob = store.get(key, None, retry=True)
        if blob is None:
            continue  # evicted or deleted meanwhile
        size = len(blob) if isinstance(blob, bytes) else 0
        try:
            meta, payload = unpack_entry(blob, verify=verify)
        except CorruptEntry:
            yield key, None, b"", size
            continue
        yield key, meta, payload, size
