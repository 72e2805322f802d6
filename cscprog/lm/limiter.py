"""A thread-safe token-bucket rate limiter for one backend (endpoint + model): requests and tokens per minute.

One :class:`RateLimiter` is shared by every thread that calls the same endpoint and model; the
:class:`cscprog.lm.runtime.Runtime` owns them (there is no module-level registry). Callers reserve capacity
before a request with :meth:`RateLimiter.acquire` (tokens estimated as ``prompt_chars / 4 + max_tokens``)
and correct the token estimate afterwards with :meth:`RateLimiter.reconcile` (the real usage).

Reservations are granted in arrival order: a caller takes its share at once (a bucket level may go below
zero) and sleeps until the bucket would have refilled to cover it, so N callers behind a limit of R
requests/s finish in about N/R seconds whatever the number of threads.

Example:
    ```python
    limiter = RateLimiter(requests_per_minute=600, tokens_per_minute=100_000)
    estimate = estimate_tokens(prompt_chars=4_000, max_tokens=500)  # 1500
    limiter.acquire(estimate)          # may sleep
    ...                                # the request
    limiter.reconcile(estimate, 1_180)  # what the provider reported
    ```
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "estimate_tokens"]


def estimate_tokens(prompt_chars: int, max_tokens: int | None) -> int:
    """The tokens reserved for a call before it runs: ``prompt_chars // 4 + max_tokens``.

    Example:
        ```python
        assert estimate_tokens(400, 100) == 200
        ```
    """
    return max(1, prompt_chars // 4 + (max_tokens or 0))


class _Bucket:
    __slots__ = ("rate", "capacity", "level", "stamp")

    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def reserve(self, amount: float) -> float:
        """Take ``amount`` now; return the seconds until the bucket covers it (a level may go negative)."""
        need = min(amount, self.capacity)
        wait = 0.0 if self.level >= need else (need - self.level) / self.rate
        self.level -= amount
        return wait


class RateLimiter:
    """Requests-per-minute and tokens-per-minute token buckets, thread-safe.

    Args:
        requests_per_minute: Request rate (None: unlimited).
        tokens_per_minute: Token rate (None: unlimited).
        burst_seconds: How many seconds of rate a full bucket holds (at least one request and one token): after
            an idle period up to that many calls start at once, then they are spaced at the rate.
        clock: Monotonic clock (for tests).
        sleep: Sleep function (for tests).

    Raises:
        ValueError: a rate or ``burst_seconds`` is not positive.

    Example:
        ```python
        limiter = RateLimiter(requests_per_minute=120)  # 2 calls/s, a full bucket holds 2
        for _ in range(5):
            limiter.acquire()  # waits 0, 0, 0.5, 1.0, 1.5 s: the five calls span 1.5 s
        ```
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, value in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        if not burst_seconds > 0:
            raise ValueError(f"burst_seconds must be > 0, got {burst_seconds!r}")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._requests = _Bucket(requests_per_minute, burst_seconds, now) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute, burst_seconds, now) if tokens_per_minute else None
        self.calls = 0
        self.waited_seconds = 0.0

    @property
    def limited(self) -> bool:
        """True when at least one rate is set."""
        return self._requests is not None or self._tokens is not None

    def reserve(self, tokens: int = 0, requests: int = 1) -> float:
        """Take ``requests`` requests and ``tokens`` tokens now; return the seconds to wait (no sleep)."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self._requests is not None:
                self._requests.refill(now)
                wait = self._requests.reserve(float(requests))
            if self._tokens is not None and tokens > 0:
                self._tokens.refill(now)
                wait = max(wait, self._tokens.reserve(float(tokens)))
            self.calls += 1
            self.waited_seconds += wait
        return wait

    def acquire(self, tokens: int = 0, requests: int = 1) -> float:
        """Reserve ``requests`` requests and ``tokens`` tokens, sleeping until the buckets cover them.

        Args:
            tokens: The estimated tokens of the call (see :func:`estimate_tokens`).
            requests: The HTTP requests the call makes (``n`` candidates make ``n`` on DSPy's native client).

        Returns:
            The seconds slept.
        """
        wait = self.reserve(tokens, requests)
        if wait > 0:
            self._sleep(wait)
        return wait

    def reconcile(self, estimated: int, actual: int | None) -> None:
        """Correct a call's token reservation with its real usage (None: keep the estimate).

        Args:
            estimated: The tokens reserved by :meth:`acquire`.
            actual: The prompt plus completion tokens the provider reported.
        """
        if self._tokens is None or actual is None:
            return
        with self._lock:
            self._tokens.refill(self._clock())
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + (estimated - actual))

    def __repr__(self) -> str:
        return (
            f"RateLimiter(requests_per_minute={self.requests_per_minute}, tokens_per_minute={self.tokens_per_minute})"
        )
