"""The demo as a library function: :func:`run_demo` runs the four stages and writes ``report.md``.

Outputs in ``out_dir`` (the previous demo's outputs there are replaced; nothing else in the directory is
touched): ``csconv/`` (rewrites, annotations), ``rolecs/`` (synthesized dialogues, verdicts), ``compile/``
(the compiled program), ``eval/<program>-<context>/`` (predictions, scores, plots), ``manifest.json`` and
``report.md``. Each stage's JSONL output has its own run manifest and, when items failed, a failures file.

Example:
    ```python
    from cscprog.demo import run_demo
    from cscprog.runs import make_progress
    from cscprog.lm.runtime import Runtime

    runtime = Runtime(config)
    try:
        result = run_demo("cscprog-demo", runtime, progress=lambda stage: make_progress(stage))
    finally:
        runtime.close()
    print(result.report, result.failures_text())
    ```
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cscprog.demo.plan import DemoPlan
from cscprog.demo.report import render_demo_report
from cscprog.demo.result import DemoResult
from cscprog.demo.stages import (
    ROLES_USED,
    DemoContext,
    DemoStopped,
    ProgressFactory,
    compile_stage,
    csconv_stage,
    evaluate_stage,
    rolecs_stage,
)
from cscprog.evaluation.plots import PLOT_FILES
from cscprog.lm.runtime import Runtime
from cscprog.runs import RunInputError
from cscprog.runs.manifest import build_manifest, write_manifest

__all__ = ["OUTPUTS", "run_demo"]

OUTPUTS = ("csconv", "rolecs", "compile", "eval", "manifest.json", "report.md")
"""What the demo writes into its directory (and replaces on the next run)."""


def _prepare(out_dir: Path) -> None:
    """Remove the previous run's outputs, except the evaluation plots: each carries the digest of what it shows and
    is drawn again only when that changes (:mod:`cscprog.evaluation.plots`), which a warm run would not do."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunInputError(f"{out_dir} exists and is not a directory; choose another --output")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        target = out_dir / name
        if name == "eval" and target.is_dir() and not target.is_symlink():
            _clear_keeping_plots(target)
        elif target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def _clear_keeping_plots(root: Path) -> None:
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_symlink() or (path.is_file() and path.name not in PLOT_FILES):
            path.unlink()
        elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()


def run_demo(
    out_dir: str | os.PathLike[str],
    runtime: Runtime,
    *,
    progress: ProgressFactory | None = None,
    plan: DemoPlan | None = None,
    notes: list[str] | None = None,
) -> DemoResult:
    """Run the whole method end to end on the packaged samples and write ``out_dir/report.md``.

    Args:
        out_dir: Output directory (created; the previous demo outputs in it are replaced).
        runtime: The runtime whose LMs and response cache serve every call (not closed here).
        progress: ``progress(stage) -> ProgressReporter`` for each stage's display; None: no display.
        plan: How much each stage does (default :class:`DemoPlan`).
        notes: Remarks on the configuration to show in the report.

    Returns:
        The :class:`DemoResult`; the report is written even when a stage stopped early.

    Raises:
        RunInputError: ``out_dir`` is a file.
        ConfigError: the configuration cannot serve a role (e.g. a missing API key variable).

    Example:
        ```python
        result = run_demo(Path("demo"), Runtime(config))
        result.exit_status   # 0 when every stage ran
        ```
    """
    started, clock = time.time(), time.monotonic()
    for role in ROLES_USED:  # a missing API key or an unusable backend stops here, not as a failure per item
        runtime.lm(role)
    target = Path(out_dir)
    _prepare(target)
    chosen = plan or DemoPlan()
    config = runtime.config
    local = any(runtime.settings(role).is_local for role in ROLES_USED)  # one in-process model serializes calls
    ctx = DemoContext(out_dir=target, runtime=runtime, taxonomy=config.taxonomy(), plan=chosen,
                      progress=progress, concurrency=1 if local else config.run.concurrency)
    result = DemoResult(out_dir=target, report=target / "report.md", plan=chosen, notes=list(notes or []))
    def timed(name: str, stage: Callable[[], Any]) -> Any:
        began = time.monotonic()
        try:
            return stage()
        finally:
            result.seconds[name] = round(time.monotonic() - began, 1)

    with runtime.activate():
        try:
            result.csconv = timed("csconv", lambda: csconv_stage(ctx))
            result.rolecs = timed("rolecs", lambda: rolecs_stage(ctx))
            result.compiled = timed("compile", lambda: compile_stage(ctx, result.rolecs))
            result.evaluation = timed("evaluate", lambda: evaluate_stage(ctx, result.compiled))
        except DemoStopped as stop:
            result.stopped, result.interrupted = str(stop), stop.interrupted
    result.usage = runtime.usage()
    result.duration_s = round(time.monotonic() - clock, 3)
    outputs = {name: str(target / name) for name in OUTPUTS if (target / name).exists() or name == "report.md"}
    manifest = build_manifest(runtime, command="cscprog demo", inputs={"plan": chosen.to_json()}, outputs=outputs,
                                started=started, stopped=result.stopped, item_failures=result.item_failures,
                                notes=result.notes, stage_seconds=result.seconds)
    write_manifest(target / "manifest.json", manifest)
    result.report.write_text(render_demo_report(result, manifest, ctx.taxonomy), encoding="utf-8")
    return result
