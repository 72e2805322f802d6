"""The reproducible LLM response cache: DSPy's cache boundary, keyed per endpoint, checksummed, replayable.

DSPy looks every managed LM call up in ``dspy.cache`` (``get``) before it makes the request and stores the raw
record there (``put``) afterwards. :class:`ResponseCache` implements that interface on :mod:`diskcache` and fixes
what DSPy's own cache leaves out:

* the key includes the endpoint (``api_base``/``base_url``, trailing ``/`` stripped) and a version tag, and never
  a credential (``api_key``, authorization or token headers);
* every entry carries its usage, cost, model, endpoint, provider, role and creation time, plus a checksum: a
  corrupted or half-written entry is logged, deleted and recomputed, never returned;
* entries are JSON, never pickle, so a run can be exported as a portable bundle and verified elsewhere with
  ``mode="replay"``, where a miss is an error (:class:`CacheMissError`) instead of a paid call;
* a :class:`CallObserver` (rate limiter, budget, usage ledger) hears about every real call and every hit, with
  the tokens a hit saved.

:func:`install_router` puts a :class:`CacheRouter` in ``dspy.cache`` once; it forwards to the cache made active
with :func:`activate` (a ``dspy.context`` key, so ``dspy.Parallel`` workers and ``acall`` see it) and to DSPy's own
cache otherwise.

Example:
    ```python
    import dspy
    from cscprog.cache import ResponseCache, activate

    with ResponseCache("~/.cache/cscprog") as cache, activate(cache):
        dspy.Predict("question -> answer")(question="Where is my parcel?")
    print(cache.run_stats()["hits"])
    ```
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gzip
import hashlib
import importlib
import inspect
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import orjson
import pydantic
from dspy.dsp.utils.settings import settings as _dspy_settings

from cscprog.errors import CscprogError, DataError

logger = logging.getLogger(__name__)

CacheMode = Literal["readwrite", "replay", "off", "refresh"]
MODES: tuple[str, ...] = ("readwrite", "replay", "off", "refresh")

SETTINGS_KEY = "cscprog_cache"
"""The ``dspy.settings`` key :func:`activate` sets and :class:`CacheRouter` reads."""
ROLE_KEY = "cscprog_role"
"""The ``dspy.settings`` key naming the role of the calls made inside it (recorded with each entry)."""
LAST_RUN_FILE = "last_run.json"
"""Written into the cache directory when a cache that served or stored anything is closed."""
BUNDLE_FORMAT = "cscprog-cache-bundle"
BUNDLE_FORMAT_VERSION = 1

_MAGIC = b"CSC1 "
_DIGEST_SIZE = 16  # blake2b-128: a checksum against corruption, not a signature
_KINDS = ("native", "json", "litellm")
_EXCERPT_CHARS = 200
_SHARDS = 8

_SECRET_NAME_PARTS = ("api_key", "apikey", "secret", "password", "credential")
_SECRET_HEADER_PARTS = ("authorization", "token", "api_key", "api-key", "apikey", "secret", "cookie")
_HEADER_KEYS = ("extra_headers", "headers")
_ENDPOINT_KEYS = ("api_base", "base_url")


class CacheError(CscprogError):
    """The response cache cannot be used (its directory cannot be opened, say)."""


class CacheMissError(CacheError):
    """A call was not in the cache while it runs in ``replay`` mode.

    Attributes:
        role: The role of the call (``dspy.settings.cscprog_role``), or None.
        model: The model string.
        endpoint: The normalized ``api_base``, or ``"default"``.
        key: The cache key.
        excerpt: The first ~200 characters of the last user message.
    """

    def __init__(self, *, role: str | None, model: str, endpoint: str, key: str, excerpt: str, where: str) -> None:
        self.role = role
        self.model = model
        self.endpoint = endpoint
        self.key = key
        self.excerpt = excerpt
        super().__init__(
            f"replay mode: no cached response for role {role or '(none)'}, model {model}, endpoint {endpoint} "
            f"in {where} (key {key[:12]}); last user message: {excerpt!r}"
        )


class CacheBundleError(CacheError, DataError):
    """A cache bundle is unreadable or malformed; the message names the file and the line."""


@dataclass(frozen=True)
class CallInfo:
    """What an observer learns about one LM call at the cache boundary.

    Attributes:
        key: The cache key.
        model: The model string.
        endpoint: The normalized ``api_base``/``base_url``, or None for the provider's default.
        role: The ``cscprog_role`` set in ``dspy.settings`` around the call, or None.
        n: The number of completions asked for.
        prompt_chars: Characters in the rendered messages (a cheap size estimate before tokenizing).
        max_tokens: The completion limit of the call, when set.
    """

    key: str
    model: str
    endpoint: str | None
    role: str | None
    n: int
    prompt_chars: int
    max_tokens: int | None


@runtime_checkable
class CallObserver(Protocol):
    """Hears about calls at the cache boundary: rate limiting, budgets, usage ledgers.

    ``before_call`` runs on every miss (in every mode, ``off`` and ``refresh`` included) right before DSPy makes
    the real request; it may block (rate limit) or raise (budget exhausted), and its exception reaches the caller.
    A failed request is followed by no ``after_call``. ``after_call`` runs once a real call finished and its record
    was stored; ``on_hit`` runs when a call is served from the cache, with the usage it saved.
    """

    def before_call(self, call: CallInfo) -> None:
        """A real request is about to be made."""

    def after_call(self, call: CallInfo, usage: dict[str, int], cost: float | None) -> None:
        """A real request finished with this usage and cost (USD, None when unknown)."""

    def on_hit(self, call: CallInfo, usage: dict[str, int], cost: float | None) -> None:
        """A call was served from the cache; ``usage`` and ``cost`` are what the original call spent."""


class _CorruptEntry(Exception):
    pass


# --- keys -------------------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """orjson's fallback for the request values DSPy itself transforms (pydantic types, callables)."""
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
        return value.model_json_schema()
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if callable(value):
        try:
            return f"<callable_source:{inspect.getsource(value)}>"
        except (TypeError, OSError):
            return f"<callable:{getattr(value, '__name__', 'lambda')}>"
    raise TypeError(f"cannot put a {type(value).__name__} into a cache key")


@functools.lru_cache(maxsize=1024)
def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_NAME_PARTS) or lowered.endswith("_token")


def _clean_headers(headers: Any) -> Any:
    if not isinstance(headers, dict):
        return headers
    return {
        name: value
        for name, value in headers.items()
        if not any(part in str(name).lower() for part in _SECRET_HEADER_PARTS)
    }


def normalize_endpoint(url: str | None) -> str | None:
    """The endpoint as it goes into keys and metadata: surrounding blanks and trailing ``/`` removed.

    Example:
        ```python
        assert normalize_endpoint("http://localhost:8080/v1/") == "http://localhost:8080/v1"
        ```
    """
    if not url:
        return None
    url = str(url).strip().rstrip("/")
    return url or None


def _endpoint_of(request: dict[str, Any]) -> str | None:
    for name in _ENDPOINT_KEYS:
        endpoint = normalize_endpoint(request.get(name))
        if endpoint:
            return endpoint
    return None


def _model_of(request: dict[str, Any]) -> str:
    model = request.get("model")
    if model is None and isinstance(request.get("request"), dict):
        model = request["request"].get("model")
    return str(model) if model is not None else "(unknown)"


def _provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).hexdigest()


# --- reading requests -------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """The text of a message content: a string, a list of parts, or an lm15 message dict."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return content["text"]
        for name in ("content", "parts"):
            if name in content:
                return _text_of(content[name])
        return ""
    if isinstance(content, (list, tuple)):
        return "".join(_text_of(part) for part in content)
    return ""


def _messages_of(request: dict[str, Any]) -> tuple[list[Any], Any]:
    """(messages, system) of a DSPy cache request: adapter calls or explicit lm15 requests."""
    messages = request.get("messages")
    if isinstance(messages, list):
        return messages, None
    inner = request.get("request")
    if isinstance(inner, dict):
        return list(inner.get("messages") or ()), inner.get("system")
    prompt = request.get("prompt")
    return ([{"role": "user", "content": prompt}] if prompt is not None else []), None


def _last_user_text(request: dict[str, Any]) -> str:
    messages, _ = _messages_of(request)
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return _text_of(message)
    return _text_of(messages[-1]) if messages else ""


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[: _EXCERPT_CHARS - 1] + "…"


def _prompt_chars(request: dict[str, Any]) -> int:
    messages, system = _messages_of(request)
    return len(_text_of(system)) + sum(len(_text_of(message)) for message in messages)


def _max_tokens(request: dict[str, Any]) -> int | None:
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(request.get(name), int):
            return request[name]
    inner = request.get("request")
    if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
        value = inner["config"].get("max_tokens")
        return value if isinstance(value, int) else None
    return None


def _n(request: dict[str, Any]) -> int:
    n = request.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


# --- records ----------------------------------------------------------------------------------------------------


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _usage_and_cost(record: Any) -> tuple[dict[str, int], float | None]:
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


def _encode_record(record: Any) -> tuple[str, str | None, bytes] | None:
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
            raise _CorruptEntry(f"refusing to rebuild class {path!r}")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as error:
            raise _CorruptEntry(f"class {path!r} not found: {error}") from None
        if not (isinstance(obj, type) and issubclass(obj, pydantic.BaseModel)):
            raise _CorruptEntry(f"{path!r} is not a pydantic model")
        cls = _CLASSES[path] = obj
    return cls


def _decode_record(meta: dict[str, Any], payload: bytes) -> Any:
    """Rebuild what DSPy stored: a fresh object, so no deepcopy is needed."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise _CorruptEntry(f"payload is not JSON: {error}") from None
    kind = meta.get("kind")
    if kind in ("native", "json"):
        return data
    if kind == "litellm":
        cls = _litellm_class(str(meta.get("cls")))
        try:
            record = cls(**data)
        except Exception as error:
            raise _CorruptEntry(f"cannot rebuild {cls.__name__}: {error}") from None
        hidden = getattr(record, "_hidden_params", None)
        if isinstance(hidden, dict) and meta.get("cost") is not None:
            hidden["response_cost"] = meta["cost"]
        return record
    raise _CorruptEntry(f"unknown entry kind {kind!r}")


def _pack(meta: dict[str, Any], payload: bytes) -> bytes:
    body = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS) + b"\n" + payload
    return _MAGIC + _digest(body).encode("ascii") + b"\n" + body


def _unpack(blob: Any, *, verify: bool = True) -> tuple[dict[str, Any], bytes]:
    """(meta, payload) of a stored entry. Raises _CorruptEntry on any damage."""
    if not isinstance(blob, bytes) or not blob.startswith(_MAGIC):
        raise _CorruptEntry("not a cscprog cache entry")
    header_end = blob.find(b"\n")
    if header_end < 0:
        raise _CorruptEntry("truncated header")
    body = memoryview(blob)[header_end + 1 :]
    if verify and _digest(body).encode("ascii") != blob[len(_MAGIC) : header_end]:
        raise _CorruptEntry("checksum mismatch")
    meta_end = blob.find(b"\n", header_end + 1)
    if meta_end < 0:
        raise _CorruptEntry("truncated metadata")
    try:
        meta = orjson.loads(blob[header_end + 1 : meta_end])
    except orjson.JSONDecodeError as error:
        raise _CorruptEntry(f"metadata is not JSON: {error}") from None
    if not isinstance(meta, dict):
        raise _CorruptEntry("metadata is not an object")
    return meta, blob[meta_end + 1 :]


# --- storage ----------------------------------------------------------------------------------------------------


class _MemoryStore:
    """The ``directory=None`` store: the subset of FanoutCache's API the cache uses, in a dict."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None, retry: bool = False) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: bytes, retry: bool = False) -> bool:
        with self._lock:
            self._data[key] = value
        return True

    def add(self, key: str, value: bytes, retry: bool = False) -> bool:
        with self._lock:
            if key in self._data:
                return False
            self._data[key] = value
        return True

    def delete(self, key: str, retry: bool = False) -> bool:
        with self._lock:
            return self._data.pop(key, None) is not None

    def clear(self, retry: bool = False) -> int:
        with self._lock:
            count = len(self._data)
            self._data.clear()
        return count

    def volume(self) -> int:
        return sum(len(value) for value in list(self._data.values()))

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        pass


class _RunStats:
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
                "started": _iso(self.started),
                **dict(self.totals),
                "saved": dict(self.saved),
                "by_call": [
                    {"model": model, "endpoint": endpoint, **dict(row)}
                    for (model, endpoint), row in sorted(self.by_call.items())
                ],
            }


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).isoformat(timespec="seconds")


def _finish(directory: Path | None, stats: _RunStats, store: Any) -> None:
    """Write ``last_run.json`` (when the cache did anything) and close the store. Runs once."""
    try:
        if directory is not None and stats.active():
            data = {**stats.snapshot(), "finished": _iso(time.time()), "pid": os.getpid()}
            target = directory / LAST_RUN_FILE
            temporary = directory / f".{LAST_RUN_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
            temporary.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
            os.replace(temporary, target)
    except OSError as error:
        logger.warning("could not write %s: %s", LAST_RUN_FILE, error)
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


# --- the cache --------------------------------------------------------------------------------------------------


class ResponseCache:
    """The reproducible LLM response cache; a drop-in for ``dspy.cache`` (see the module docstring).

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
        endpoint = _endpoint_of(request)
        params: dict[str, Any] = {}
        for name, value in request.items():
            if name in _ENDPOINT_KEYS or _is_secret_name(name):
                continue
            params[name] = _clean_headers(value) if name in _HEADER_KEYS else value
        if endpoint is not None:
            params["_cscprog_endpoint"] = endpoint
        params["_cscprog_version"] = self.version
        try:
            data = orjson.dumps(params, default=_json_default, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            data = orjson.dumps(params, default=_json_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        return hashlib.sha256(data).hexdigest(), _model_of(request), endpoint

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
        return CallInfo(
            key=key,
            model=model,
            endpoint=endpoint,
            role=_dspy_settings.get(ROLE_KEY),
            n=_n(request),
            prompt_chars=_prompt_chars(request),
            max_tokens=_max_tokens(request),
        )

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
                role=_dspy_settings.get(ROLE_KEY),
                model=model,
                endpoint=shown,
                key=key or "(unkeyable)",
                excerpt=_excerpt(_last_user_text(request)),
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
            "role": _dspy_settings.get(ROLE_KEY),
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
        for key in self._store:
            blob = self._store.get(key, None, retry=True)
            if blob is None:
                continue  # evicted or deleted meanwhile
            size = len(blob) if isinstance(blob, bytes) else 0
            try:
                meta, payload = _unpack(blob, verify=verify)
            except _CorruptEntry:
                yield key, None, b"", size
                continue
            yield key, meta, payload, size

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
        groups: dict[str, dict[str, dict[str, Any]]] = {"by_model": {}, "by_endpoint": {}, "by_role": {}}
        entries = corrupt = payload_bytes = 0
        oldest = newest = None
        for _key, meta, _payload, size in self._entries():
            if meta is None:
                corrupt += 1
                continue
            entries += 1
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
        volume = self._store.volume() if hasattr(self._store, "volume") else payload_bytes
        return {
            "directory": self.where,
            "version": self.version,
            "entries": entries,
            "corrupt": corrupt,
            "bytes": int(volume),
            "entry_bytes": payload_bytes,
            "oldest": _iso(oldest) if oldest is not None else None,
            "newest": _iso(newest) if newest is not None else None,
            **{group: dict(sorted(rows.items())) for group, rows in groups.items()},
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
        written = 0

        def selected() -> Iterator[tuple[str, dict[str, Any], bytes]]:
            nonlocal written
            for key, meta, payload, _size in self._entries():
                if meta is None:
                    logger.warning("skipping corrupt cache entry %s", key)
                elif model is None or meta.get("model") == model:
                    written += 1
                    yield key, meta, payload

        _write_bundle(Path(path), selected())
        return written

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
        bundle = Path(path)
        for _ in _read_bundle(bundle):
            pass  # validate everything first
        written = 0
        for key, meta, payload in _read_bundle(bundle):
            blob = _pack(meta, payload)
            try:
                done = self._store.set(key, blob, retry=True) if overwrite else self._store.add(key, blob, retry=True)
            except Exception as error:
                raise CacheBundleError(str(bundle), f"cannot store entry {key}: {error}") from None
            if done:
                written += 1
                self._forget(key)
        return written

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


# --- bundles ----------------------------------------------------------------------------------------------------


def _line_sum(key: str, meta: dict[str, Any], payload: str) -> str:
    canonical = orjson.dumps({"key": key, "meta": meta, "payload": payload}, option=orjson.OPT_SORT_KEYS)
    return _digest(canonical)


def _write_bundle(path: Path, entries: Any) -> None:
    header = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "created": _iso(time.time()),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with gzip.open(temporary, "wb") as out:
            out.write(orjson.dumps(header) + b"\n")
            for key, meta, payload in entries:
                text = payload.decode("utf-8")
                line = {"key": key, "meta": meta, "payload": text, "sum": _line_sum(key, meta, text)}
                out.write(orjson.dumps(line) + b"\n")
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise CacheBundleError(str(path), f"cannot write bundle: {error.strerror or error}") from None


def _read_bundle(path: Path) -> Iterator[tuple[str, dict[str, Any], bytes]]:
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
    if not isinstance(meta, dict) or meta.get("kind") not in _KINDS or not isinstance(meta.get("model"), str):
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


# --- routing ----------------------------------------------------------------------------------------------------


class CacheRouter:
    """What :func:`install_router` puts in ``dspy.cache``: forwards to the active :class:`ResponseCache`.

    The active cache is ``dspy.settings.get("cscprog_cache")`` (set with :func:`activate` or
    ``dspy.configure(cscprog_cache=...)``); without one, calls go to the cache DSPy had before, unchanged.

    Example:
        ```python
        router = install_router()
        assert router.target() is not None
        ```
    """

    def __init__(self, previous: Any = None) -> None:
        self._previous = previous
        self._previous_lock = threading.Lock()

    def fallback(self) -> Any:
        """DSPy's own cache (built on first use when DSPy had not built one yet)."""
        if self._previous is None:
            with self._previous_lock:
                if self._previous is None:
                    from dspy.clients import _get_dspy_cache

                    self._previous = _get_dspy_cache()
        return self._previous

    def target(self) -> Any:
        """The cache the current context uses."""
        active = _dspy_settings.get(SETTINGS_KEY)
        return active if active is not None else self.fallback()

    def cache_key(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> str:
        """See :meth:`ResponseCache.cache_key`."""
        return self.target().cache_key(request, ignored_args_for_cache_key)

    def get(self, request: dict[str, Any], ignored_args_for_cache_key: list[str] | None = None) -> Any:
        """See :meth:`ResponseCache.get`."""
        return self.target().get(request, ignored_args_for_cache_key)

    def put(
        self,
        request: dict[str, Any],
        value: Any,
        ignored_args_for_cache_key: list[str] | None = None,
        enable_memory_cache: bool = True,
    ) -> None:
        """See :meth:`ResponseCache.put`."""
        self.target().put(request, value, ignored_args_for_cache_key, enable_memory_cache)

    def __contains__(self, key: object) -> bool:
        return key in self.target()

    def reset_memory_cache(self) -> None:
        """Empty the memory layer of the current target."""
        self.target().reset_memory_cache()

    def save_memory_cache(self, filepath: str) -> None:
        """Forwarded to the current target."""
        self.target().save_memory_cache(filepath)

    def load_memory_cache(self, filepath: str, allow_pickle: bool = False) -> None:
        """Forwarded to the current target."""
        self.target().load_memory_cache(filepath, allow_pickle=allow_pickle)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.target(), name)


_install_lock = threading.Lock()


def install_router() -> CacheRouter:
    """Make ``dspy.cache`` a :class:`CacheRouter` (idempotent, thread-safe) and return it.

    Plain DSPy use is unchanged: without an active :class:`ResponseCache` the router forwards to the cache DSPy
    had (or builds DSPy's default one on first use). Call it again after ``dspy.configure_cache``, which replaces
    ``dspy.cache``; :func:`activate` does so itself.

    Example:
        ```python
        install_router()
        dspy.configure(cscprog_cache=ResponseCache("cache"))  # process-wide instead of a context
        ```
    """
    import dspy

    current = vars(dspy).get("cache")
    if isinstance(current, CacheRouter):
        return current
    with _install_lock, dspy._cache_lock:
        current = vars(dspy).get("cache")
        if isinstance(current, CacheRouter):
            return current
        router = CacheRouter(current)
        dspy.cache = router
        return router


@contextlib.contextmanager
def activate(cache: ResponseCache, *, role: str | None = None) -> Iterator[ResponseCache]:
    """Route the LM calls made inside the block (and in its ``dspy.Parallel`` workers and ``acall`` tasks) to ``cache``.

    Plain ``threading``/``ThreadPoolExecutor`` workers do not inherit ``dspy.context``: enter ``activate`` in the
    worker, or use ``dspy.configure(cscprog_cache=cache)``.

    Args:
        cache: The cache to use.
        role: Optionally also set ``cscprog_role`` (recorded with entries, shown in replay errors).

    Example:
        ```python
        with activate(ResponseCache("cache", mode="replay"), role="judge"):
            judge(dialogue=dialogue)
        ```
    """
    import dspy

    install_router()
    overrides: dict[str, Any] = {SETTINGS_KEY: cache}
    if role is not None:
        overrides[ROLE_KEY] = role
    with dspy.context(**overrides):
        yield cache


def json_stats(stats: dict[str, Any]) -> str:
    """``stats()`` as indented JSON text (for the CLI and manifests)."""
    return json.dumps(stats, indent=2, sort_keys=False, default=str)


__all__ = [
    "CacheBundleError",
    "CacheError",
    "CacheMissError",
    "CacheMode",
    "CacheRouter",
    "CallInfo",
    "CallObserver",
    "ResponseCache",
    "activate",
    "install_router",
    "normalize_endpoint",
    "read_last_run",
]
