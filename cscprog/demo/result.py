"""What a demo run did: :class:`DemoResult` (each stage's outcome, usage, timing, the exit status).

Example:
    ```python
    result = run_demo("cscprog-demo", runtime)
    print(result.completed, result.item_failures, result.exit_status)
    ```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cscprog.demo.plan import DemoPlan
from cscprog.demo.stages import CompileOutcome, CsconvOutcome, EvaluateOutcome, RolecsOutcome

__all__ = ["DemoResult"]


@dataclass
class DemoResult:
    """What :func:`run_demo` did.

    Attributes:
        out_dir: The output directory.
        report: ``out_dir/report.md``.
        plan: The plan that ran.
        csconv, rolecs, compiled, evaluation: Each stage's outcome (None when the demo stopped before it).
        stopped: Why the demo stopped early (Ctrl-C, budget), or None when every stage ran.
        interrupted: True when Ctrl-C stopped it.
        usage: The runtime's usage ledger at the end (calls, tokens, cache hits per role).
        notes: Remarks on the configuration (e.g. which embedded model, where the cache is).
        duration_s: Wall time.
        seconds: Wall time of each stage that ran (``csconv``, ``rolecs``, ``compile``, ``evaluate``).
    """

    out_dir: Path
    report: Path
    plan: DemoPlan
    csconv: CsconvOutcome | None = None
    rolecs: RolecsOutcome | None = None
    compiled: CompileOutcome | None = None
    evaluation: EvaluateOutcome | None = None
    stopped: str | None = None
    interrupted: bool = False
    usage: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        """True when every stage ran (items may still have failed: see :attr:`item_failures`)."""
        return self.stopped is None and self.evaluation is not None

    @property
    def item_failures(self) -> int:
        """Items whose LM output stayed unusable: run items, rewrites, classified turns, dev and test positions."""
        count = 0
        for outcome in (self.csconv, self.rolecs):
            for run in getattr(outcome, "runs", []):
                count += len(run.failures)
        if self.csconv is not None:
            count += sum(1 for row in self.csconv.decisions
                         if (row.get("decision") or {}).get("rule") == "generation_failure")
            count += sum(len(row.get("failures") or []) for row in self.csconv.annotations)
        if self.compiled is not None:
            count += self.compiled.result.before["failures"] + self.compiled.result.after["failures"]
        if self.evaluation is not None:
            count += sum(result.get("failures", 0) for result in self.evaluation.results.values())
        return count

    @property
    def exit_status(self) -> int:
        """0 when every stage ran (even with item failures), 130 when interrupted, 1 when stopped otherwise."""
        if self.completed:
            return 0
        return 130 if self.interrupted else 1
