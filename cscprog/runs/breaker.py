"""The circuit breaker of a run: stop when the provider keeps failing, instead of failing every item.

A dead endpoint, an exhausted quota or a rejected key makes every item fail the same way; trying the rest only
fills the failures file (and may cost money). The runner tells the breaker how each item ended. An item that
failed because of the provider (a DSPy ``LMError`` in its cause chain, after the LM layer's own retries) counts
towards the limit; a finished item or a failure of another kind (unparsable output, bad data) resets it. After
``limit`` provider failures of the same kind in a row the run stops cleanly: running items finish, no new item
starts, the exit status is 1 and the resume command is shown. A rejected key (HTTP 401/403, ``LMAuthError``)
stops the run at once: every later call would be rejected too.

Example:
    ```python
    breaker = CircuitBreaker(limit=5)
    reason = breaker.failed(describe_failure("d-1", error))
    if reason:
        stop.request(reason)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dspy.utils.exceptions import LMAuthError, LMError

__all__ = ["AUTH_KINDS", "DEFAULT_BREAKER_LIMIT", "CircuitBreaker", "auth_stop_reason", "provider_failure_kind"]

DEFAULT_BREAKER_LIMIT = 10
"""Provider failures of one kind in a row that stop a run, unless configured (``[run] max_consecutive_failures``)."""

AUTH_KINDS: frozenset[str] = frozenset({LMAuthError.__name__})
"""Provider failure kinds that stop a run at the first occurrence."""

_REASON_EXCERPT = 300


def provider_failure_kind(error: BaseException) -> str | None:
    """The type name of the provider error behind ``error`` (itself or its cause chain), or None.

    Example:
        ```python
        provider_failure_kind(ItemError("failed"))  # None: not the provider's fault
        ```
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, LMError):
            return type(current).__name__
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_EXCERPT else text[:_REASON_EXCERPT] + "..."


def _auth_reason(kind: str, message: str) -> str:
    return f"the provider rejected the credentials ({kind}): {_excerpt(message)}"


def auth_stop_reason(error: BaseException) -> str | None:
    """The stop reason when ``error`` comes from rejected credentials (HTTP 401/403), else None.

    Engines call it where the item ran, so no other item starts after a rejected key.

    Example:
        ```python
        reason = auth_stop_reason(outcome.error)
        ```
    """
    kind = provider_failure_kind(error)
    return _auth_reason(kind, str(error)) if kind in AUTH_KINDS else None


class CircuitBreaker:
    """Counts provider failures in a row; says when the run must stop.

    Args:
        limit: Provider failures of the same kind in a row that stop the run (0: never, except a rejected key).

    Example:
        ```python
        breaker = CircuitBreaker(limit=10)
        breaker.succeeded()
        ```
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self.limit = limit
        self.kind: str | None = None
        self.count = 0

    def succeeded(self) -> None:
        """An item finished: the streak ends."""
        self.kind, self.count = None, 0

    def failed(self, record: Mapping[str, Any]) -> str | None:
        """Count one failure record (:func:`cscprog.runs.describe_failure`); the stop reason, or None.

        The record's ``provider_failure`` (the provider error's type name) decides whether it counts.
        """
        kind = record.get("provider_failure")
        if not isinstance(kind, str) or not kind:
            self.succeeded()
            return None
        if kind == self.kind:
            self.count += 1
        else:
            self.kind, self.count = kind, 1
        message = str(record.get("reason") or "")
        if kind in AUTH_KINDS:
            return _auth_reason(kind, message)
        if self.limit and self.count >= self.limit:
            return (
                f"circuit breaker: {self.count} items in a row failed with {kind} "
                f"([run] max_consecutive_failures = {self.limit}); last: {_excerpt(message)}"
            )
        return None
