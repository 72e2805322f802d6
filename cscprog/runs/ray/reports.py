"""What the Ray workers of a run report (usage, cache counters, roles, budget), merged for progress and manifest.

Each worker counts its own calls in its own :class:`cscprog.lm.runtime.Runtime`; it sends a report (a cumulative
snapshot with a sequence number) along with its results at most every half second, and a last one when it is
closed. :class:`WorkerReports` keeps the newest report of every worker, dead ones included (a worker that dies
loses only what it counted since its last report), and merges them into the sections of the run manifest
that the driver's own runtime, which made no call, cannot fill.

Example:
    ```python
    reports = WorkerReports()
    reports.update(0, {"seq": 3, "usage": runtime_a.usage(), ...})
    reports.update(1, {"seq": 1, "usage": runtime_b.usage(), ...})
    print(reports.usage()["total"]["live_calls"])
    ```
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from cscprog.lm.usage import UsageRow

__all__ = ["WorkerReports", "merge_budgets", "merge_cache_stats", "merge_usage", "worker_report"]

logger = logging.getLogger(__name__)

_COST_FIELDS = ("cost_usd", "saved_cost_usd")
_CACHE_COUNTS = ("hits", "misses", "stores", "errors")


def worker_report(runtime: Any, seq: int) -> dict[str, Any]:
    """A worker's cumulative report: usage, cache counters, roles used, rate-limit waits, local budget.

    Example:
        ```python
        report = worker_report(runtime, seq=1)
        ```
    """
    return {
        "seq": seq,
        "pid": os.getpid(),
        "usage": runtime.usage(),
        "cache": runtime.cache.run_stats(),
        "roles": runtime.roles_used(),
        "waited_seconds": runtime.gate.waited_seconds,
        "budget": runtime.budget.summary(),
    }


def _add(target: dict[str, Any], row: dict[str, Any]) -> None:
    for name, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            target[name] = target.get(name, 0) + value


def _finish_row(row: dict[str, Any]) -> dict[str, Any]:
    for name in _COST_FIELDS:
        if name in row:
            row[name] = round(row[name], 8)
    return row


def merge_usage(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several :meth:`cscprog.lm.runtime.Runtime.usage` summaries, in the same shape.

    Example:
        ```python
        merged = merge_usage([runtime_a.usage(), runtime_b.usage()])
        ```
    """
    total = UsageRow().as_dict()
    groups: dict[str, dict[str, dict[str, Any]]] = {"by_role": {}, "by_model": {}}
    for summary in summaries:
        _add(total, summary.get("total", {}))
        for group, rows in groups.items():
            for name, row in summary.get(group, {}).items():
                _add(rows.setdefault(name, UsageRow().as_dict()), row)
    return {
        "total": _finish_row(total),
        **{group: {name: _finish_row(row) for name, row in sorted(rows.items())} for group, rows in groups.items()},
    }


def merge_cache_stats(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The sum of several caches' ``run_stats()``: hits, misses, stores, errors, saved usage, rows per backend."""
    merged: dict[str, Any] = dict.fromkeys(_CACHE_COUNTS, 0)
    saved: dict[str, Any] = {}
    by_call: dict[tuple[str, str], dict[str, Any]] = {}
    for snapshot in snapshots:
        for name in _CACHE_COUNTS:
            merged[name] += int(snapshot.get(name) or 0)
        _add(saved, snapshot.get("saved") or {})
        for row in snapshot.get("by_call") or []:
            key = (str(row.get("model")), str(row.get("endpoint")))
            target = by_call.setdefault(key, {"model": key[0], "endpoint": key[1], **dict.fromkeys(_CACHE_COUNTS, 0)})
            for name in _CACHE_COUNTS:
                target[name] += int(row.get(name) or 0)
    if "cost" in saved:
        saved["cost"] = round(saved["cost"], 8)
    merged["saved"] = saved
    merged["by_call"] = [by_call[key] for key in sorted(by_call)]
    return merged


def merge_budgets(summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The sum of the spending of several unshared (unlimited) budgets, or None when there is none."""
    if not summaries:
        return None
    spent: dict[str, Any] = {}
    for summary in summaries:
        _add(spent, summary.get("spent", {}))
    if "usd" in spent:
        spent["usd"] = round(spent["usd"], 8)
    exceeded = next((s["exceeded"] for s in summaries if s.get("exceeded")), None)
    return {"limits": summaries[0].get("limits"), "spent": spent,
            "refused_calls": sum(int(s.get("refused_calls") or 0) for s in summaries), "exceeded": exceeded}


class WorkerReports:
    """The newest report of every worker of a run (thread-safe), merged on demand.

    Example:
        ```python
        reports = WorkerReports()
        reports.update(0, report)
        merged = reports.usage()
        ```
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, dict[str, Any]] = {}

    def update(self, worker: int, report: dict[str, Any] | None) -> None:
        """Keep ``report`` unless this worker already sent a newer one (results may arrive out of order)."""
        if not report:
            return
        with self._lock:
            current = self._latest.get(worker)
            if current is None or int(report.get("seq", 0)) >= int(current.get("seq", 0)):
                self._latest[worker] = report

    def reports(self) -> list[dict[str, Any]]:
        """The newest report of each worker, by worker index."""
        with self._lock:
            return [self._latest[index] for index in sorted(self._latest)]

    def usage(self) -> dict[str, Any]:
        """Usage of all workers together."""
        return merge_usage(report["usage"] for report in self.reports())

    def cache(self) -> dict[str, Any]:
        """Cache counters of all workers together."""
        return merge_cache_stats(report["cache"] for report in self.reports())

    def roles(self) -> dict[str, Any]:
        """The roles any worker used, with their model, endpoint and engine."""
        merged: dict[str, Any] = {}
        for report in self.reports():
            for role, described in report.get("roles", {}).items():
                merged.setdefault(role, described)
        return dict(sorted(merged.items()))

    def waited_seconds(self) -> float:
        """Seconds all workers together slept for rate limits."""
        return round(sum(float(report.get("waited_seconds") or 0.0) for report in self.reports()), 3)

    def budgets(self) -> dict[str, Any] | None:
        """The workers' own budgets merged (when the budget was not shared)."""
        return merge_budgets([report["budget"] for report in self.reports() if report.get("budget")])
