"""Rate limits and the run budget shared by every Ray worker of a run, through one actor.

A provider's limit is global: 8 workers with a limiter each would send 8 times the allowed rate. So a run on
the Ray engine with any ``requests_per_minute``/``tokens_per_minute`` or ``[budget]`` limit starts one
:class:`SharedLimits` actor holding the run's :class:`cscprog.lm.limiter.RateLimiter` (one per endpoint and model,
as :class:`cscprog.lm.routing.LimiterPlan` groups them) and its :class:`cscprog.lm.budget.Budget`. Each worker
builds its runtime with :func:`remote_limits`: a :class:`RemoteRateLimiter` per limiter and a
:class:`RemoteBudget`, which the runtime's :class:`cscprog.lm.gate.CallGate` uses like local ones: before each
real request (a cache miss) the gate reserves capacity in the actor, which
answers at once with how long to wait (the limiter's reservations are first come, first served), and the
worker sleeps that long itself, so the actor never blocks. Token corrections and spending are sent after the call
without waiting for an answer. Cache hits never reach the actor.

An actor round trip is small next to an LLM call (``benchmarks/ray_throughput.py`` and ``docs/scaling.md`` say
how small).

Example:
    ```python
    specs = LimiterPlan.from_config(config).specs                # {"openai/m @ http://h/v1": (600.0, None)}
    actor = ray.remote(num_cpus=0)(SharedLimits).remote(specs, budget_limits(config))
    limiters, budget = remote_limits(actor, config)              # in each worker
    runtime = Runtime(config, limiters=limiters, budget=budget)
    ```
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cscprog.config import Config
from cscprog.lm.budget import Budget, BudgetExceeded
from cscprog.lm.limiter import RateLimiter
from cscprog.lm.routing import LimiterPlan, Rates

__all__ = [
    "RemoteBudget",
    "RemoteRateLimiter",
    "SharedLimits",
    "budget_limits",
    "needs_shared_limits",
    "remote_limits",
]


def budget_limits(config: Config) -> dict[str, Any] | None:
    """``[budget]`` as ``Budget`` keyword arguments, or None when no limit is set."""
    budget = config.budget
    limits = {"max_calls": budget.max_calls, "max_tokens": budget.max_tokens, "max_usd": budget.max_usd}
    return limits if any(value is not None for value in limits.values()) else None


def needs_shared_limits(config: Config) -> bool:
    """True when the run has a rate limit or a budget limit that all workers must share."""
    return bool(LimiterPlan.from_config(config).specs) or budget_limits(config) is not None


class SharedLimits:
    """The actor holding a run's rate limiters and budget for all its workers (every method returns at once).

    Args:
        specs: ``{name: (requests_per_minute, tokens_per_minute)}``: :class:`LimiterPlan` ``specs``.
        budget: ``Budget`` keyword arguments from :func:`budget_limits`, or None (spending is still counted).

    Example:
        ```python
        limits = SharedLimits({"openai/m @ default": (600.0, None)}, {"max_calls": 100})
        limits.reserve("openai/m @ default", 0, 1)   # 0.0: the first call may start now
        ```
    """

    def __init__(self, specs: dict[str, Rates], budget: dict[str, Any] | None) -> None:
        self._limiters = {name: RateLimiter(rpm, tpm) for name, (rpm, tpm) in specs.items()}
        self._budget = Budget(**(budget or {}))

    def reserve(self, name: str, tokens: int, requests: int) -> float:
        """Take capacity for one call now; the seconds the caller must wait before making it."""
        return self._limiters[name].reserve(tokens, requests)

    def reconcile(self, name: str, estimated: int, actual: int | None) -> None:
        """Correct a call's token reservation with its real usage."""
        self._limiters[name].reconcile(estimated, actual)

    def admit(self) -> tuple[str, float, float, str] | None:
        """Count one live call against the budget; ``(limit, spent, maximum, message)`` when it is refused."""
        try:
            self._budget.before_call()
        except BudgetExceeded as error:
            return error.limit, error.spent, error.maximum, str(error)
        return None

    def charge(self, usage: dict[str, Any] | None, cost: float | None) -> None:
        """Add a finished live call's tokens and cost to the budget."""
        self._budget.record(usage, cost)

    def summary(self) -> dict[str, Any]:
        """The budget's summary (limits, spending) and the limiters' reservations and wait, for the manifest."""
        return {
            "budget": self._budget.summary(),
            "limiters": {
                name: {"requests_per_minute": limiter.requests_per_minute,
                       "tokens_per_minute": limiter.tokens_per_minute, "reservations": limiter.calls,
                       "waited_seconds": round(limiter.waited_seconds, 3)}
                for name, limiter in sorted(self._limiters.items())
            },
        }


class RemoteRateLimiter:
    """A :class:`cscprog.lm.limiter.RateLimiter` whose buckets live in the :class:`SharedLimits` actor.

    Example:
        ```python
        limiter = RemoteRateLimiter(actor, "openai/m @ default", 600.0, None)
        limiter.acquire(tokens=1500)   # sleeps here as long as the shared buckets say
        ```
    """

    def __init__(self, actor: Any, name: str, requests_per_minute: float | None, tokens_per_minute: float | None,
                 *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._actor = actor
        self.name = name
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._sleep = sleep

    @property
    def limited(self) -> bool:
        """True when at least one rate is set."""
        return self.requests_per_minute is not None or self.tokens_per_minute is not None

    def reserve(self, tokens: int = 0, requests: int = 1) -> float:
        """Take capacity in the shared buckets; the seconds to wait (no sleep)."""
        import ray

        return float(ray.get(self._actor.reserve.remote(self.name, tokens, requests)))

    def acquire(self, tokens: int = 0, requests: int = 1) -> float:
        """Reserve, then sleep until the shared buckets cover the call; the seconds slept."""
        wait = self.reserve(tokens, requests)
        if wait > 0:
            self._sleep(wait)
        return wait

    def reconcile(self, estimated: int, actual: int | None) -> None:
        """Send the call's real token usage to the actor (not waited for)."""
        if self.tokens_per_minute is not None and actual is not None:
            self._actor.reconcile.remote(self.name, estimated, actual)

    def __repr__(self) -> str:
        return f"RemoteRateLimiter({self.name!r}, requests_per_minute={self.requests_per_minute}, " \
               f"tokens_per_minute={self.tokens_per_minute})"


class RemoteBudget:
    """A :class:`cscprog.lm.budget.Budget` kept in the :class:`SharedLimits` actor (calls, tokens, USD of all workers).

    Example:
        ```python
        budget = RemoteBudget(actor, {"max_calls": 100})
        budget.before_call()   # BudgetExceeded once the workers together started 100 live calls
        ```
    """

    def __init__(self, actor: Any, limits: dict[str, Any]) -> None:
        self._actor = actor
        self.max_calls = limits.get("max_calls")
        self.max_tokens = limits.get("max_tokens")
        self.max_usd = limits.get("max_usd")

    @property
    def limited(self) -> bool:
        """True when at least one limit is set."""
        return any(value is not None for value in (self.max_calls, self.max_tokens, self.max_usd))

    def before_call(self, call: Any = None) -> None:
        """Count one live call in the shared budget.

        Raises:
            BudgetExceeded: the workers together reached a limit.
        """
        import ray

        refused = ray.get(self._actor.admit.remote())
        if refused is not None:
            limit, spent, maximum, message = refused
            raise BudgetExceeded(limit, spent, maximum, message)

    def record(self, usage: dict[str, Any] | None, cost: float | None) -> None:
        """Send a finished call's tokens and cost to the shared budget (not waited for)."""
        self._actor.charge.remote(usage, cost)

    def summary(self) -> dict[str, Any]:
        """The shared budget's summary."""
        import ray

        return ray.get(self._actor.summary.remote())["budget"]


def remote_limits(actor: Any, config: Config) -> tuple[dict[str, RemoteRateLimiter], RemoteBudget | None]:
    """Proxies to the shared actor for a worker's runtime: a limiter per :class:`LimiterPlan` spec, and the budget
    (None when ``[budget]`` sets no limit: the worker counts its own spending).

    Example:
        ```python
        limiters, budget = remote_limits(actor, config)
        runtime = Runtime(config, limiters=limiters, budget=budget)
        ```
    """
    specs = LimiterPlan.from_config(config).specs
    limiters = {name: RemoteRateLimiter(actor, name, rpm, tpm) for name, (rpm, tpm) in specs.items()}
    limits = budget_limits(config)
    return limiters, (RemoteBudget(actor, limits) if limits is not None else None)
