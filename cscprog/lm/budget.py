"""A run budget: stop cleanly once a number of live LM calls, tokens or US dollars is spent.

:meth:`Budget.before_call` runs before every live (uncached) request and raises :class:`BudgetExceeded`
once a limit is reached, so a run stops before spending more; what finished before is kept by the caller.
Calls are counted when they start (so concurrent threads cannot overshoot ``max_calls``); tokens and
cost when they finish (concurrent calls in flight can overshoot ``max_tokens``/``max_usd`` by their own
size). Dollars are only known where litellm/DSPy know the model's price: a call whose cost is ``None`` is
counted as "unknown cost" and reported, never as free.

Example:
    ```python
    budget = Budget(max_calls=100, max_usd=2.0)
    budget.before_call()                       # raises BudgetExceeded when a limit is reached
    budget.record({"prompt_tokens": 900, "completion_tokens": 120}, cost=0.0004)
    print(budget.summary())
    ```
"""

from __future__ import annotations

import threading
from typing import Any

from cscprog.errors import CscprogError

__all__ = ["Budget", "BudgetExceeded", "usage_tokens"]


class BudgetExceeded(CscprogError):
    """A run budget limit was reached; no further live LM call is made.

    Attributes:
        limit: ``"max_calls"``, ``"max_tokens"`` or ``"max_usd"``.
        spent: What was spent of that limit when the call was refused.
        maximum: The limit.
    """

    def __init__(self, limit: str, spent: float, maximum: float, detail: str) -> None:
        self.limit = limit
        self.spent = spent
        self.maximum = maximum
        super().__init__(detail)


def usage_tokens(usage: dict[str, Any] | None) -> int:
    """Prompt plus completion tokens of a DSPy usage dict (``total_tokens`` when only that is given).

    Example:
        ```python
        assert usage_tokens({"prompt_tokens": 3, "completion_tokens": 4}) == 7
        ```
    """
    if not usage:
        return 0
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    if prompt or completion:
        return int(prompt) + int(completion)
    return int(usage.get("total_tokens") or 0)


def _money(value: float) -> str:
    return f"${value:,.4f}"


class Budget:
    """Limits on live LM calls, tokens and USD for one run (None: unlimited). Thread-safe.

    Args:
        max_calls: Most live calls (cache hits are free).
        max_tokens: Most prompt plus completion tokens of live calls.
        max_usd: Most known cost in US dollars.

    Raises:
        ValueError: a limit is not positive.

    Example:
        ```python
        budget = Budget(max_tokens=50_000)
        ```
    """

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None, max_usd: float | None = None):
        for name, value in (("max_calls", max_calls), ("max_tokens", max_tokens), ("max_usd", max_usd)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.max_usd = max_usd
        self._lock = threading.Lock()
        self.calls = 0
        self.finished = 0
        self.tokens = 0
        self.usd = 0.0
        self.unknown_cost_calls = 0
        self.refused = 0
        self.exceeded: str | None = None

    @property
    def limited(self) -> bool:
        """True when at least one limit is set."""
        return any(value is not None for value in (self.max_calls, self.max_tokens, self.max_usd))

    def _spent(self) -> str:
        unknown = f", {self.unknown_cost_calls} call(s) of unknown cost" if self.unknown_cost_calls else ""
        return f"{self.calls} live call(s) started, {self.tokens:,} tokens and {_money(self.usd)} spent{unknown}"

    def _refuse(self, limit: str, spent: float, maximum: float, shown: str) -> BudgetExceeded:
        self.refused += 1
        self.exceeded = limit
        return BudgetExceeded(
            limit,
            spent,
            maximum,
            f"run budget exceeded: {limit} = {shown} reached ({self._spent()}); "
            "no further LM call was made, results finished so far are kept",
        )

    def before_call(self, call: Any = None) -> None:
        """Reserve one live call, or raise :class:`BudgetExceeded` when a limit is reached.

        Args:
            call: The :class:`cscprog.cache.CallInfo` of the request (unused; for the observer protocol).

        Raises:
            BudgetExceeded: the calls, tokens or known USD spent reached their limit.
        """
        with self._lock:
            if self.max_calls is not None and self.calls >= self.max_calls:
                raise self._refuse("max_calls", self.calls, self.max_calls, f"{self.max_calls:,}")
            if self.max_tokens is not None and self.tokens >= self.max_tokens:
                raise self._refuse("max_tokens", self.tokens, self.max_tokens, f"{self.max_tokens:,}")
            if self.max_usd is not None and self.usd >= self.max_usd:
                raise self._refuse("max_usd", self.usd, self.max_usd, _money(self.max_usd))
            self.calls += 1

    def record(self, usage: dict[str, Any] | None, cost: float | None) -> None:
        """Add a finished live call's tokens and cost (None cost: counted as unknown).

        Args:
            usage: DSPy's usage dict (``prompt_tokens``, ``completion_tokens``).
            cost: USD, or None when the price is unknown.
        """
        with self._lock:
            self.finished += 1
            self.tokens += usage_tokens(usage)
            if cost is None:
                self.unknown_cost_calls += 1
            else:
                self.usd += float(cost)

    def summary(self) -> dict[str, Any]:
        """Limits and spending, for manifests.

        Example:
            ```python
            Budget(max_calls=3).summary()["limits"]  # {"max_calls": 3, "max_tokens": None, "max_usd": None}
            ```
        """
        with self._lock:
            return {
                "limits": {"max_calls": self.max_calls, "max_tokens": self.max_tokens, "max_usd": self.max_usd},
                "spent": {
                    "calls": self.calls,
                    "finished_calls": self.finished,
                    "tokens": self.tokens,
                    "usd": round(self.usd, 8),
                    "unknown_cost_calls": self.unknown_cost_calls,
                },
                "refused_calls": self.refused,
                "exceeded": self.exceeded,
            }
