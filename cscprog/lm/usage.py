"""Usage and cost per role and per model, for live calls and for calls served from the cache ("saved").

DSPy reports no usage on a cache hit; cscprog's cache stores each entry's usage and cost when it is written
and reports them on a hit, and the :class:`UsageLedger` adds them up as *saved* tokens and dollars. The
ledger also counts the retries and failures of :func:`cscprog.lm.invoke.invoke`.

Example:
    ```python
    ledger = UsageLedger()
    ledger.record_call("judge", "openai/gpt-4o-mini", {"prompt_tokens": 800, "completion_tokens": 40}, 0.0002)
    ledger.record_hit("judge", "openai/gpt-4o-mini", {"prompt_tokens": 800, "completion_tokens": 40}, 0.0002)
    ledger.summary()["by_role"]["judge"]["saved_cost_usd"]  # 0.0002
    ```
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["NO_ROLE", "UsageLedger", "UsageRow"]

NO_ROLE = "(no role)"
"""The role name used for calls made outside :meth:`cscprog.lm.runtime.Runtime.role`."""


@dataclass
class UsageRow:
    """Counters of one role or one model (or the total)."""

    live_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    saved_prompt_tokens: int = 0
    saved_completion_tokens: int = 0
    saved_cost_usd: float = 0.0
    saved_unknown_cost_calls: int = 0
    transient_retries: int = 0
    parse_retries: int = 0
    invalid_retries: int = 0
    truncated_retries: int = 0
    failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 8)
        data["saved_cost_usd"] = round(self.saved_cost_usd, 8)
        data["total_tokens"] = self.prompt_tokens + self.completion_tokens
        data["saved_total_tokens"] = self.saved_prompt_tokens + self.saved_completion_tokens
        return data


def _tokens(usage: dict[str, Any] | None) -> tuple[int, int]:
    if not usage:
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


class UsageLedger:
    """Thread-safe counters per role and per model.

    Example:
        ```python
        ledger = UsageLedger()
        ledger.record_retry("classifier", "parse")
        ledger.summary()["total"]["parse_retries"]  # 1
        ```
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = UsageRow()
        self._roles: dict[str, UsageRow] = {}
        self._models: dict[str, UsageRow] = {}

    def _rows(self, role: str | None, model: str | None) -> list[UsageRow]:
        rows = [self._total, self._roles.setdefault(role or NO_ROLE, UsageRow())]
        if model is not None:
            rows.append(self._models.setdefault(model, UsageRow()))
        return rows

    def record_call(self, role: str | None, model: str, usage: dict[str, Any] | None, cost: float | None) -> None:
        """Count one finished live call with its usage and cost (None: unknown)."""
        prompt, completion = _tokens(usage)
        with self._lock:
            for row in self._rows(role, model):
                row.live_calls += 1
                row.prompt_tokens += prompt
                row.completion_tokens += completion
                if cost is None:
                    row.unknown_cost_calls += 1
                else:
                    row.cost_usd += float(cost)

    def record_hit(self, role: str | None, model: str, usage: dict[str, Any] | None, cost: float | None) -> None:
        """Count one call served from the cache, with the usage and cost it saved."""
        prompt, completion = _tokens(usage)
        with self._lock:
            for row in self._rows(role, model):
                row.cache_hits += 1
                row.saved_prompt_tokens += prompt
                row.saved_completion_tokens += completion
                if cost is None:
                    row.saved_unknown_cost_calls += 1
                else:
                    row.saved_cost_usd += float(cost)

    def record_retry(self, role: str | None, kind: str, model: str | None = None) -> None:
        """Count one retry: ``kind`` is ``"transient"`` (429/5xx/timeout), ``"parse"``, ``"invalid"`` or
        ``"truncated"`` (a structured output cut off by its token budget, retried with a larger one)."""
        if kind not in ("transient", "parse", "invalid", "truncated"):
            raise ValueError(f"unknown retry kind {kind!r}")
        with self._lock:
            for row in self._rows(role, model):
                setattr(row, f"{kind}_retries", getattr(row, f"{kind}_retries") + 1)

    def record_failure(self, role: str | None, model: str | None = None) -> None:
        """Count one generation that failed after all its attempts."""
        with self._lock:
            for row in self._rows(role, model):
                row.failures += 1

    @property
    def hits(self) -> int:
        """Calls served from the cache so far."""
        with self._lock:
            return self._total.cache_hits

    @property
    def live_calls(self) -> int:
        """Live calls finished so far."""
        with self._lock:
            return self._total.live_calls

    def summary(self) -> dict[str, Any]:
        """``{"total": {...}, "by_role": {role: {...}}, "by_model": {model: {...}}}``, sorted by name."""
        with self._lock:
            return {
                "total": self._total.as_dict(),
                "by_role": {name: row.as_dict() for name, row in sorted(self._roles.items())},
                "by_model": {name: row.as_dict() for name, row in sorted(self._models.items())},
            }
