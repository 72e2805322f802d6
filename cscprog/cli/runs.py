"""What every long-running command shares: run options, the runtime, the runner, the summary and the exit status.

The commands themselves (``rewrite``, ``annotate`` in :mod:`cscprog.cli.csconv`; ``synthesize``, ``judge`` in
:mod:`cscprog.cli.rolecs`; ``respond`` in :mod:`cscprog.cli.respond`) only build their items and their work
function and call :func:`execute`, which runs them through :class:`cscprog.runs.Runner` inside a
:class:`cscprog.lm.runtime.Runtime` built from ``--config``, prints a summary on stderr (stdout stays empty unless
``--json``), and exits 0 (all finished), 1 (failures, or a budget stop), 130 (interrupted) or 2 (bad input).

Example:
    ```python
    execute(RunSpec(name="annotate", output=out, config=config, concurrency=None, resume=False,
                    inputs={"data": str(data)}), items=[(d.id, d) for d in dialogues], work=annotate_one)
    ```
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from cscprog.config import Config
from cscprog.data import Dialogue
from cscprog.data.io import released_record
from cscprog.errors import CscprogError
from cscprog.framework import Taxonomy
from cscprog.lm.preflight import check_setup
from cscprog.lm.runtime import LMFactory, Runtime
from cscprog.runs import Runner, make_progress
from cscprog.runs.engine import ExecutionEngine
from cscprog.runs.engines import ENGINES, make_engine

__all__ = [
    "FORMATS",
    "ConcurrencyOption",
    "DataArgument",
    "EngineOption",
    "FormatOption",
    "JsonSummaryOption",
    "OutputOption",
    "ProgressOption",
    "ResumeOption",
    "RunOptionError",
    "RunSpec",
    "check_choice",
    "command_line",
    "dialogue_record",
    "execute",
    "run_engine",
    "sibling_path",
]

DataArgument = typer.Argument(..., help="Dialogue file (released JSON/JSONL, cscprog JSONL, ESConv JSON) or "
                                        "sample:NAME.")
OutputOption = typer.Option(..., "--output", "-o", help="Output JSONL file (finished items are appended as they end).")
ConcurrencyOption = typer.Option(None, "--concurrency", "-j", min=1,
                                 help="Items run at once (default: [run] concurrency of the config).")
ResumeOption = typer.Option(False, "--resume", help="Continue an existing output: skip finished items, retry the rest.")
FormatOption = typer.Option("cscprog", "--format", help="Dialogue output format: cscprog or released.")
ProgressOption = typer.Option("auto", "--progress",
                              help="auto (a bar on a terminal, plain lines otherwise), rich, plain or off.")
JsonSummaryOption = typer.Option(False, "--json", help="Print the run summary as one JSON object on stdout.")
EngineOption = typer.Option(None, "--engine",
                            help="local (threads of this process) or ray (Ray worker processes, on this machine or "
                                 "the [run] ray_address cluster; pip install \"cscprog[ray]\"); default: [run] engine.")

FORMATS = ("cscprog", "released")
PROGRESS_MODES = ("auto", "rich", "plain", "off")


class RunOptionError(CscprogError):
    """A run option has a value the command cannot use."""


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    """``value`` when it is one of ``choices``, else a :class:`RunOptionError` naming the option."""
    if value not in choices:
        raise RunOptionError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
    return value


def run_engine(option: str | None, config: Config) -> ExecutionEngine:
    """The engine ``--engine`` (or else ``[run] engine``) names, at ``[run] ray_address`` for Ray.

    Raises:
        RunOptionError: an unknown engine name.
        EngineUnavailableError: ``ray`` without Ray installed (says how to install it).

    Example:
        ```python
        engine = run_engine("ray", load_config())
        ```
    """
    name = check_choice(option if option is not None else config.run.engine, ENGINES, "--engine")
    return make_engine(name, address=config.run.ray_address)


def sibling_path(output: Path, kind: str) -> Path:
    """``<OUT stem>.<kind><OUT suffix>``: ``kept.jsonl`` -> ``kept.rejected.jsonl``.

    Example:
        ```python
        sibling_path(Path("runs/syn.jsonl"), "rejected")  # Path("runs/syn.rejected.jsonl")
        ```
    """
    suffix = output.suffix or ".jsonl"
    return output.with_name(f"{output.stem}.{kind}{suffix}")


def dialogue_record(dialogue: Dialogue, output_format: str, taxonomy: Taxonomy) -> dict[str, Any]:
    """The output record of a dialogue: cscprog's own, or the released format with its id kept (for resume)."""
    if output_format == "released":
        return released_record(dialogue, taxonomy, with_id=True)
    return dialogue.to_json()


def command_line(ctx: Any, *, add_resume: bool = False) -> str:
    """The command being run, rebuilt from its parsed parameters (``cscprog synthesize -n 10 -o out.jsonl``).

    Options left at their defaults are omitted (``--output`` is always shown); ``add_resume`` appends
    ``--resume`` when it is not already there.

    Args:
        ctx: The command's ``typer.Context``.
        add_resume: Append ``--resume``.

    Example:
        ```python
        @app.command("annotate")
        def annotate_command(ctx: typer.Context, ...):
            resume = command_line(ctx, add_resume=True)
        ```
    """
    words = str(ctx.command_path).split()
    if words:
        words[0] = "cscprog"
    arguments: list[str] = []
    options: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if getattr(param, "param_type_name", "") == "argument":
            values = value if isinstance(value, list | tuple) else [value]
            arguments.extend(str(item) for item in values if item is not None)
            continue
        if value is None or param.name == "resume":
            continue
        names = sorted(param.opts, key=lambda name: (not name.startswith("--"), name))
        if getattr(param, "is_flag", False):
            if value != param.default:
                secondary = list(getattr(param, "secondary_opts", []) or [])
                options.append(names[0] if value else (secondary or names)[0])
            continue
        if value == param.default and param.name != "output":
            continue
        for item in value if getattr(param, "multiple", False) else [value]:
            options.extend([names[0], str(item)])
    tail = ["--resume"] if add_resume or ctx.params.get("resume") else []
    return shlex.join(words + arguments + options + tail)


@dataclass
class RunSpec:
    """How a command wants its run done.

    Attributes:
        name: The command (``synthesize``), shown on the progress bar.
        output: The main output.
        config: The loaded configuration (:func:`cscprog.cli.common.config_and_taxonomy`).
        concurrency: ``--concurrency`` or None for the config's ``[run] concurrency``.
        resume: ``--resume``.
        inputs: What the manifest records as the run's inputs.
        id_field: The record field holding the item id.
        many_records: Items write several records.
        side_outputs: Named extra outputs (``{"rejected": path}``).
        progress: ``auto``, ``rich``, ``plain`` or ``off``.
        json_summary: Print the summary as JSON on stdout.
        context: The command's ``typer.Context`` (to record the command line and the resume command).
        engine: ``--engine`` (``local`` or ``ray``), or None for the config's ``[run] engine``.
        roles: The LM roles the work calls, checked before the run (:func:`cscprog.lm.preflight.check_setup`).
        lm_factory: The runtime's LM factory (a fine-tuned model served in-process), or None for the config's LMs.
    """

    name: str
    output: Path
    config: Config
    concurrency: int | None
    resume: bool
    inputs: dict[str, Any] = field(default_factory=dict)
    id_field: str = "id"
    many_records: bool = False
    side_outputs: dict[str, Path] = field(default_factory=dict)
    progress: str = "auto"
    json_summary: bool = False
    context: Any = None
    engine: str | None = None
    roles: tuple[str, ...] = ()
    lm_factory: LMFactory | None = None


def _echo(text: str) -> None:
    typer.echo(text, err=True)


def execute(spec: RunSpec, *, items: Iterable[tuple[str, Any]], work: Callable[[Any], Any],
            setup: Callable[[Runtime], None] | None = None) -> None:
    """Run ``work`` over ``items`` as ``spec`` says, report on stderr, and exit with the run's status.

    Args:
        spec: The run's options.
        items: ``(item_id, payload)`` pairs.
        work: The work function (see :class:`cscprog.runs.Runner`).
        setup: Called with the active runtime before the run (e.g. to load a compiled program).

    Raises:
        typer.Exit: with status 1 or 130 when the run did not finish everything.
        CscprogError: bad input or a setup that cannot serve ``spec.roles`` (the CLI's status 2), before any call.
    """
    check_choice(spec.progress, PROGRESS_MODES, "--progress")
    config = spec.config
    check_setup(config, spec.roles)
    concurrency = spec.concurrency if spec.concurrency is not None else config.run.concurrency
    ctx = spec.context
    command = command_line(ctx) if ctx is not None else f"cscprog {spec.name}"
    resume_command = command_line(ctx, add_resume=True) if ctx is not None else None
    engine = run_engine(spec.engine, config)
    runtime = Runtime(config, lm_factory=spec.lm_factory)
    try:
        with runtime.activate():
            if setup is not None:
                setup(runtime)
            runner = Runner(
                work,
                output=spec.output,
                id_field=spec.id_field,
                concurrency=concurrency,
                resume=spec.resume,
                many_records=spec.many_records,
                side_outputs=dict(spec.side_outputs),
                runtime=runtime,
                progress=make_progress(spec.name, spec.progress),  # type: ignore[arg-type]
                command=command,
                inputs={**spec.inputs, "config": config.source},
                seed=config.run.seed,
                resume_command=resume_command,
                engine=engine,
            )
            result = runner.run(items)
    finally:
        runtime.close()
    _echo(f"{spec.name}: {result.summary()}")
    written = [f"output {result.output}"] + [f"{name} {path}" for name, path in result.side_outputs.items()]
    if result.failures.exists():
        written.append(f"failures {result.failures}")
    if result.manifest is not None:
        written.append(f"manifest {result.manifest}")
    _echo("  " + "; ".join(written))
    hint = result.resume_hint()
    if result.interrupted:
        _echo(f"Interrupted: finished items are saved. {hint}")
    elif hint:
        _echo(hint)
    if spec.json_summary:
        payload = {"command": spec.name, **result.as_dict(), "output": str(result.output),
                   "side_outputs": {name: str(path) for name, path in result.side_outputs.items()},
                   "failures": str(result.failures) if result.failures.exists() else None,
                   "manifest": str(result.manifest) if result.manifest else None}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        sys.stdout.flush()
    if result.exit_status:
        raise typer.Exit(result.exit_status)
