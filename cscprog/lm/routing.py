"""Which rate limiter a call waits for: one limiter per endpoint and model, shared by the roles that use it.

:class:`LimiterPlan` reads the limits from the configuration (the smallest ``requests_per_minute`` and
``tokens_per_minute`` of the roles sharing an endpoint and model) and names each limiter
(:func:`limiter_name`). :class:`LimiterRouter` answers the :class:`~cscprog.lm.gate.CallGate`'s question
"which limiter for this call?" over limiters built from the plan: local :class:`~cscprog.lm.limiter.RateLimiter`
objects in one process, or proxies to a shared actor in Ray workers. This is the only place that routes roles
to limiters.

Example:
    ```python
    plan = LimiterPlan.from_config(config)             # specs {"openai/m @ http://h/v1": (600.0, None)}
    router = LimiterRouter(plan, plan.local_limiters())
    gate = CallGate(budget=budget, limiter_for=router)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cscprog.cache import normalize_endpoint
from cscprog.lm.limiter import RateLimiter
from cscprog.roles import ROLES

if TYPE_CHECKING:
    from cscprog.cache import CallInfo
    from cscprog.config import Config

__all__ = ["LimiterPlan", "LimiterRouter", "Rates", "limiter_name"]

Rates = tuple[float | None, float | None]
"""``(requests_per_minute, tokens_per_minute)`` of one limiter."""


def limiter_name(model: str, endpoint: str | None) -> str:
    """The name of the limiter of one backend: ``"openai/m @ http://host:8000/v1"`` (``default``: no endpoint).

    Example:
        ```python
        limiter_name("openai/m", None)  # 'openai/m @ default'
        ```
    """
    return f"{model} @ {endpoint or 'default'}"


def _smallest(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


@dataclass(frozen=True)
class LimiterPlan:
    """The run's rate limits as data: ``specs`` ``{name: (rpm, tpm)}`` and ``by_role`` ``{role: name}``.

    Only backends with a limit have a limiter; a role without one is absent from ``by_role``.

    Example:
        ```python
        plan = LimiterPlan.from_config(config)
        plan.by_role.get("judge")  # 'openai/gpt-4o-mini @ default', or None
        ```
    """

    specs: dict[str, Rates]
    by_role: dict[str, str]

    @classmethod
    def from_config(cls, config: Config) -> LimiterPlan:
        """Group the roles by endpoint and model; each group's limits are the smallest its roles set."""
        groups: dict[str, list[Rates]] = {}
        by_role: dict[str, str] = {}
        for role in ROLES:
            settings = config.lm_for(role)
            if settings.requests_per_minute or settings.tokens_per_minute:
                name = limiter_name(settings.model, normalize_endpoint(settings.api_base))
                groups.setdefault(name, []).append((settings.requests_per_minute, settings.tokens_per_minute))
                by_role[role] = name
        specs = {
            name: (_smallest([rpm for rpm, _ in rates]), _smallest([tpm for _, tpm in rates]))
            for name, rates in groups.items()
        }
        return cls(specs, by_role)

    def local_limiters(self) -> dict[str, RateLimiter]:
        """A :class:`~cscprog.lm.limiter.RateLimiter` per spec, for a run in one process."""
        return {name: RateLimiter(rpm, tpm) for name, (rpm, tpm) in self.specs.items()}


class LimiterRouter:
    """The limiter a call waits for: its role's, or (a call without a known role) its endpoint and model's.

    Args:
        plan: The run's :class:`LimiterPlan`.
        limiters: A limiter per name of ``plan.specs`` (local, or proxies to shared buckets).

    Example:
        ```python
        router = LimiterRouter(plan, plan.local_limiters())
        router.for_role("customer")    # the limiter customer calls wait for, or None
        ```
    """

    def __init__(self, plan: LimiterPlan, limiters: Mapping[str, Any]) -> None:
        missing = sorted(set(plan.specs) - set(limiters))
        if missing:
            raise ValueError(f"no limiter given for {', '.join(missing)}")
        self.plan = plan
        self.limiters = dict(limiters)

    def for_role(self, role: str) -> Any:
        """The limiter of ``role``'s endpoint and model, or None when it has no limit."""
        name = self.plan.by_role.get(role)
        return self.limiters[name] if name is not None else None

    def __call__(self, call: CallInfo) -> Any:
        if call.role is not None and call.role in ROLES:
            return self.for_role(call.role)
        return self.limiters.get(limiter_name(call.model, call.endpoint))
