"""Cache keys: what of a DSPy request is hashed, with the endpoint normalized and every credential left out.

The key is the sha256 of the request's sorted JSON, plus the normalized endpoint (``api_base``/``base_url``,
trailing ``/`` and any ``user:password@`` stripped) and the cache's version tag. Parameters that look like
secrets (``api_key``, ``*_token``, ...) and secret-looking headers (authorization, cookies, tokens) never reach it.

Example:
    ```python
    from cscprog.cache.keys import normalize_endpoint, request_key

    key, model, endpoint = request_key({"model": "openai/m", "messages": [], "api_base": "http://a:8000/v1/"}, "1")
    assert endpoint == normalize_endpoint("http://a:8000/v1") == "http://a:8000/v1"
    ```
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pydantic

_SECRET_NAME_PARTS = ("api_key", "apikey", "secret", "password", "credential")
_SECRET_HEADER_PARTS = ("authorization", "token", "api_key", "api-key", "apikey", "secret", "cookie")
_HEADER_KEYS = ("extra_headers", "headers")
_ENDPOINT_KEYS = ("api_base", "base_url")


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
    """The endpoint as it goes into keys and metadata: blanks, trailing ``/`` and credentials removed.

    Credentials in the URL (``http://user:secret@host/v1``) never reach a key, an entry, a bundle or a log.

    Example:
        ```python
        assert normalize_endpoint("http://localhost:8080/v1/") == "http://localhost:8080/v1"
        assert normalize_endpoint("http://u:p@localhost:8080/v1") == "http://localhost:8080/v1"
        ```
    """
    if not url:
        return None
    url = str(url).strip().rstrip("/")
    if "@" in url:
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is not None and "@" in parts.netloc:
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return url or None


def endpoint_of(request: dict[str, Any]) -> str | None:
    for name in _ENDPOINT_KEYS:
        endpoint = normalize_endpoint(request.get(name))
        if endpoint:
            return endpoint
    return None


def model_of(request: dict[str, Any]) -> str:
    model = request.get("model")
    if model is None and isinstance(request.get("request"), dict):
        model = request["request"].get("model")
    return str(model) if model is not None else "(unknown)"


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def request_key(request: dict[str, Any], version: str) -> tuple[str, str, str | None]:
    """(key, model, endpoint) of a DSPy cache request under the cache version tag ``version``.

    Raises:
        TypeError: the request holds a value that cannot be serialized.

    Example:
        ```python
        key, model, endpoint = request_key({"model": "openai/m", "messages": [], "api_key": "sk-..."}, "1")
        ```
    """
    endpoint = endpoint_of(request)
    params: dict[str, Any] = {}
    for name, value in request.items():
        if name in _ENDPOINT_KEYS or _is_secret_name(name):
            continue
        params[name] = _clean_headers(value) if name in _HEADER_KEYS else value
    if endpoint is not None:
        params["_cscprog_endpoint"] = endpoint
    params["_cscprog_version"] = version
    try:
        data = orjson.dumps(params, default=_json_default, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = orjson.dumps(params, default=_json_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(data).hexdigest(), model_of(request), endpoint
