"""Keeping credentials out of everything cscprog writes or logs: secret values and URL userinfo.

Two kinds of credential can reach a file or a log line: the value of an API key (read from the environment
variable a config names) and the userinfo part of a URL (``http://user:secret@host/v1``, the ``api_base`` of a
proxy that takes basic auth). :func:`redact` replaces both in any JSON-able value; :func:`redact_text` in a
string; :func:`redact_url` strips the userinfo of one URL; :func:`secret_values` collects the values to hide
from the environment. This module imports nothing of cscprog, so the cache, the LM layer and the runs may all
use it.

Example:
    ```python
    from cscprog.redaction import redact, redact_url

    redact_url("http://bob:hunter2@proxy:8080/v1")                  # "http://***@proxy:8080/v1"
    redact({"reason": "401 from https://u:p@h/v1"}, {"sk-123456"})  # {"reason": "401 from https://***@h/v1"}
    ```
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "redact",
    "redact_text",
    "redact_url",
    "secret_values",
    "url_credentials",
]

REDACTED = "***"
"""What a secret is replaced with."""

SECRET_NAME = re.compile(r"API_?KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
"""Environment variable names whose values are treated as secrets."""

_MIN_SUBSTRING = 6  # shorter secrets are replaced only where a whole value equals them
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@'\"<>]+@")


def redact_url(url: str | None) -> str | None:
    """``url`` without the credentials of its userinfo part (``scheme://***@host...``); None stays None.

    Example:
        ```python
        assert redact_url("http://u:p@h:1/v1") == "http://***@h:1/v1"
        assert redact_url("http://h:1/v1") == "http://h:1/v1"
        ```
    """
    if url is None:
        return None
    return _URL_USERINFO.sub(lambda match: match.group("scheme") + REDACTED + "@", str(url))


def url_credentials(url: str | None) -> set[str]:
    """The userinfo of ``url`` and its parts (``user:password``, ``user``, ``password``), to redact elsewhere.

    Example:
        ```python
        assert url_credentials("http://u:secret@h/v1") == {"u:secret", "u", "secret"}
        ```
    """
    if not url:
        return set()
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return set()
    userinfo, at, _host = parts.netloc.rpartition("@")
    if not at or not userinfo:
        return set()
    found = {userinfo, *(piece for piece in userinfo.split(":", 1) if piece)}
    return found


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL userinfo and every secret value of ``secrets`` (6+ characters) replaced by ``***``.

    Example:
        ```python
        redact_text("GET http://u:p@h/v1 with sk-abcdef", {"sk-abcdef"})  # "GET http://***@h/v1 with ***"
        ```
    """
    text = redact_url(text) or ""
    for secret in sorted((s for s in secrets if len(s) >= _MIN_SUBSTRING), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` with URL userinfo and every secret replaced by ``***`` (dict keys and strings, recursively).

    A string equal to a secret is replaced whatever its length; inside longer strings only secrets of six or
    more characters are (a short value would match innocent text).

    Example:
        ```python
        assert redact({"url": "http://x/?key=sk-123456"}, {"sk-123456"}) == {"url": "http://x/?key=***"}
        ```
    """
    secrets = set(secrets)

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            return REDACTED if item in secrets else redact_text(item, secrets)
        if isinstance(item, Mapping):
            return {clean(key) if isinstance(key, str) else key: clean(val) for key, val in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(val) for val in item]
        return item

    return clean(value)


def secret_values(
    names: Iterable[str] = (), urls: Iterable[str | None] = (), environ: Mapping[str, str] | None = None
) -> set[str]:
    """The values that must never be written: the variables ``names`` and every credential-like variable.

    Args:
        names: Environment variable names that hold secrets (a config's ``api_key_env`` values).
        urls: URLs whose userinfo (and its user and password) is secret (a config's ``api_base`` values).
        environ: The environment (default: ``os.environ``).

    Example:
        ```python
        secrets = secret_values(["MY_PROVIDER_KEY"], ["http://u:p@proxy/v1"])
        ```
    """
    environ = os.environ if environ is None else environ
    wanted = {name for name in environ if SECRET_NAME.search(name)} | {name for name in names if name}
    found = {environ[name] for name in wanted if environ.get(name)}
    for url in urls:
        found |= url_credentials(url)
    return found


class RedactingFilter(logging.Filter):
    """A logging filter that redacts URL userinfo and the given secrets from every record's message.

    Example:
        ```python
        handler.addFilter(RedactingFilter(secret_values()))
        ```
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        cleaned = redact_text(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
