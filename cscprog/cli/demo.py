"""``cscprog demo``: the whole method end to end on the packaged samples, then a Markdown report.

Example:
    ```
    cscprog demo                      # embedded local model, writes cscprog-demo/report.md
    cscprog demo -o /tmp/demo --fresh # make every LM call again
    cscprog demo --config cscprog.toml
    ```
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, console, load_cli_config
from cscprog.cli.logs import LogStream
from cscprog.cli.runs import PROGRESS_MODES, ProgressOption, check_choice


@app.command("demo")
def demo_command(
    output: Path = typer.Option(Path("cscprog-demo"), "--output", "-o",
                                help="Output directory (its previous demo outputs are replaced)."),
    config: Path | None = ConfigOption,
    fresh: bool = typer.Option(False, "--fresh", help="Make every LM call again instead of replaying the cache."),
    progress: str = ProgressOption,
) -> None:
    """Run the method end to end on the samples (rewrite, synthesize, judge, compile, evaluate) and write a report.

    Runs on the configured model (the embedded local model when none is configured). Every call goes through the
    response cache, so a second run replays it. Exit status: 0 when every stage ran (some items may have failed:
    the report lists them), 130 when interrupted, 1 when stopped by the budget, 2 for bad input or configuration.
    """
    from cscprog.demo import demo_config, provider_snippet, run_demo
    from cscprog.demo.stages import ROLES_USED
    from cscprog.lm.preflight import check_setup
    from cscprog.lm.runtime import Runtime
    from cscprog.runs import make_progress

    check_choice(progress, PROGRESS_MODES, "--progress")
    err = console(stderr=True)
    loaded = load_cli_config(config)
    check_setup(loaded, ROLES_USED)  # before the embedded model's weights are looked for or any call is made
    prepared, notes = demo_config(loaded, output, fresh=fresh)
    for note in notes:
        err.print(f"demo: {note}", markup=False, highlight=False)
    runtime = Runtime(prepared)
    try:
        # DSPy's optimizers print to stdout: their lines go to the log (-vv shows them), stdout keeps the summary
        with contextlib.redirect_stdout(LogStream("dspy")):
            result = run_demo(output, runtime, notes=notes,
                              progress=lambda stage: make_progress(f"demo: {stage}", progress))  # type: ignore[arg-type]
    finally:
        runtime.close()
    total = result.usage.get("total", {})
    out = console()
    out.print(f"Report: {result.report}", markup=False, highlight=False)
    out.print(f"{total.get('live_calls', 0)} live LM calls, {total.get('cache_hits', 0)} from the cache, "
              f"{result.duration_s:.1f} s. Failures: {result.failures_text()}"
              + (" (listed in the report)" if result.item_failures else ""), markup=False, highlight=False)
    cache_dir = prepared.cache.path
    out.print(f"Response cache: {cache_dir} (inspect it: cscprog cache stats --dir {cache_dir})", markup=False,
              highlight=False)
    if result.stopped:
        out.print(f"Stopped early: {result.stopped}")
    out.print("\nTo run the same pipeline on a hosted model, put this in cscprog.toml (or pass --config FILE):\n")
    out.print(provider_snippet(), markup=False, highlight=False)
    if result.exit_status:
        raise typer.Exit(result.exit_status)
