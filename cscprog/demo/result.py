"""What a demo run did: :class:`DemoResult` (each stage's outcome, usage, timing, the exit status).

Example:
    ```python
    result = run_demo("cscprog-demo", runtime)
    print(result.completed, result.failures_text(), result.exit_status)
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
        """True when every stage ran (items may still have failed: see :meth:`failures`)."""
        return self.stopped is None and self.evaluation is not None

    def failures(self) -> list[tuple[str, int, int, str]]:
        """``(stage, failed, out of, unit)`` for every stage that ran, in the words of the progress bars.

        Runner stages count items exactly as their bars and summaries do (failed: no usable LM output after the
        retries, in the stage's failures file). Stages that score turns count them: supporter turns the classifier
        left unlabelled inside annotated items, dev positions of the compile (base and compiled), test positions
        of each evaluation.
        """
        rows: list[tuple[str, int, int, str]] = []
        for outcome in (self.csconv, self.rolecs):
            for run in getattr(outcome, "runs", []):
                rows.append((run.name, run.result.failed, run.result.total, "items"))
        if self.csconv is not None and self.csconv.annotations:
            turns = sum(len(row["turns"]) for row in self.csconv.annotations)
            unlabelled = sum(len(row.get("failures") or []) for row in self.csconv.annotations)
            rows.append(("annotate", unlabelled, turns, "supporter turns"))
        if self.compiled is not None:
            before, after = self.compiled.result.before, self.compiled.result.after
            rows.append(("compile", before["failures"] + after["failures"], before["n"] + after["n"],
                         "dev positions"))
        if self.evaluation is not None:
            for (program, context), scores in self.evaluation.results.items():
                rows.append((f"evaluate {program} ({context})", scores.get("failures", 0), scores.get("n", 0),
                             "test positions"))
        return rows

    @property
    def item_failures(self) -> int:
        """Failed items of the runner stages (what their progress bars and summaries call failed)."""
        return sum(failed for _, failed, _, unit in self.failures() if unit == "items")

    def failures_text(self) -> str:
        """``"rewrite: 1 of 3 items failed; compile: 2 of 14 dev positions failed"``, or ``"none"``."""
        parts = [f"{stage}: {failed} of {total} {unit} failed" for stage, failed, total, unit in self.failures()
                 if failed]
        return "; ".join(parts) if parts else "none"

    @property
    def exit_status(self) -> int:
        """0 when every stage ran (even with item failures), 130 when interrupted, 1 when stopped otherwise."""
        if self.completed:
            return 0
        return 130 if self.interrupted else 1
