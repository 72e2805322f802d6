"""The errors of the response cache.

Example:
    ```python
    from cscprog.cache import CacheMissError, ResponseCache, activate

    try:
        with activate(ResponseCache("cache", mode="replay")):
            program(question="...")
    except CacheMissError as miss:
        print(miss.role, miss.model, miss.excerpt)
    ```
"""

from __future__ import annotations

from cscprog.errors import CscprogError, DataError


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


class CorruptEntry(Exception):
    """A stored entry is damaged (internal: the cache deletes it and recomputes, never returns it)."""
