"""The :class:`CallGate`: cscprog's observer of every LM call (rate limits, budget, usage ledger).

The response cache (:class:`cscprog.cache.ResponseCache`) calls the gate on every cache miss right before
DSPy's real request (``before_call``: check the budget, then wait for the backend's rate limiter), after the
real call was stored (``after_call``: reconcile the token estimate, charge the budget, count usage) and on
every hit (``on_hit``: count the saved usage).

Example:
    ```python
    gate = CallGate(ledger=UsageLedger(), budget=Budget(max_calls=100), limiter_for=lambda call: limiter)
    cache = ResponseCache(directory, observer=gate)
    ```
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cscprog.lm.budget import Budget, usage_tokens
from cscprog.lm.limiter import RateLimiter, estimate_tokens
from cscprog.lm.usage import UsageLedger

if TYPE_CHECKING:
    from cscprog.cache import CallInfo

__all__ = ["CallGate"]

logger = logging.getLogger(__name__)


class CallGate:
    """Combines the rate limiter(s), the budget and the usage ledger behind the cache's observer protocol.

    Args:
        ledger: Where usage is counted (a new one when None).
        budget: The run budget (None: unlimited).
        limiter_for: Returns the :class:`RateLimiter` shared by the call's endpoint and model, or None.

    Attributes:
        misses: Calls that passed the gate towards a live request.
        waited_seconds: Total time callers slept for the rate limiters.

    Example:
        ```python
        gate = CallGate(budget=Budget(max_tokens=10_000))
        ```
    """

    def __init__(
        self,
        *,
        ledger: UsageLedger | None = None,
        budget: Budget | None = None,
        limiter_for: Callable[[CallInfo], RateLimiter | None] | None = None,
    ) -> None:
        self.ledger = ledger if ledger is not None else UsageLedger()
        self.budget = budget
        self._limiter_for = limiter_for
        self._lock = threading.Lock()
        self.misses = 0
        self.waited_seconds = 0.0

    def _limiter(self, call: CallInfo) -> RateLimiter | None:
        return self._limiter_for(call) if self._limiter_for is not None else None

    @staticmethod
    def _estimate(call: CallInfo) -> int:
        return estimate_tokens(call.prompt_chars, call.max_tokens) * max(1, call.n)

    def before_call(self, call: CallInfo) -> None:
        """Refuse the call when the budget is spent, else wait for the backend's rate limiter.

        Raises:
            BudgetExceeded: a budget limit was reached.
        """
        if self.budget is not None:
            self.budget.before_call(call)
        waited = 0.0
        limiter = self._limiter(call)
        if limiter is not None:
            waited = limiter.acquire(self._estimate(call), requests=max(1, call.n))
            if waited > 0:
                logger.debug("rate limit: %s waited %.3fs for %s", call.role, waited, call.model)
        with self._lock:
            self.misses += 1
            self.waited_seconds += waited

    def after_call(self, call: CallInfo, usage: dict[str, Any], cost: float | None) -> None:
        """Reconcile the rate limiter's estimate, charge the budget and count the usage of a live call."""
        limiter = self._limiter(call)
        if limiter is not None:
            limiter.reconcile(self._estimate(call), usage_tokens(usage) if usage else None)
        if self.budget is not None:
            self.budget.record(usage, cost)
        self.ledger.record_call(call.role, call.model, usage, cost)

    def on_hit(self, call: CallInfo, usage: dict[str, Any], cost: float | None) -> None:
        """Count the usage and cost a cache hit saved."""
        self.ledger.record_hit(call.role, call.model, usage, cost)
