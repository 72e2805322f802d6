"""``cscprog arena``: put support agents in front of the same simulated customers and compare whole conversations.

Example:
    ```
    cscprog arena -C base=program -C compiled=program:compiled.json -n 20 --trials 3 -o runs/arena
    cscprog arena -C base=program -C plain=chat:agent_prompt.txt -n 20 -o runs/arena2 --turn-cap 16
    cscprog arena -C mine=module:my_agents.support:Agent -n 5 -o runs/arena3 --resume
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, TaxonomyOption, config_and_taxonomy, console, print_json
from cscprog.cli.respond import load_generator
from cscprog.cli.rolecs import plan_for_cli
from cscprog.cli.runs import (
    ConcurrencyOption,
    EngineOption,
    JsonSummaryOption,
    ProgressOption,
    ResumeOption,
    RunOptionError,
    check_choice,
    command_line,
    run_engine,
)
from cscprog.data import LANGUAGES
from cscprog.errors import DataError
from cscprog.framework import Taxonomy

if TYPE_CHECKING:
    from cscprog.arena import Candidate

CANDIDATE_HELP = (
    "A candidate as NAME=SPEC (repeat for more): SPEC is 'program' (a fresh response generator), "
    "'program:FILE' (a compiled program or a saved ResponseGenerator), 'module:package.module:attr' (any DSPy "
    "module taking history, language, domain and giving reply [, strategy]) or 'chat:PROMPT_FILE' (a plain chat "
    "endpoint, [roles.arena_agent], with that system prompt). A fine-tuned model: "
    "'module:cscprog.finetune.program:FinetunedResponder' with [roles.responder] on it."
)


def parse_candidate(text: str, taxonomy: Taxonomy, *, explicit_taxonomy: bool) -> Candidate:
    """The candidate a ``--candidate`` value names (see :data:`CANDIDATE_HELP`).

    Raises:
        RunOptionError: a malformed value or an unknown kind.
        DataError: a missing or unreadable file.
        ConfigError: a module path that does not import.
    """
    from cscprog.arena import ChatCandidate, ModuleCandidate, import_module_attr

    name, sep, spec = text.partition("=")
    if not sep:
        name, spec = "", text
    kind, _, argument = spec.partition(":")
    if kind == "program":
        path = Path(argument) if argument else None
        generator = load_generator(path, taxonomy, explicit_taxonomy=explicit_taxonomy, gold_strategy=False)
        default = path.stem if path else "base"
        return ModuleCandidate(name or default, generator, taxonomy, source=str(path) if path else "ResponseGenerator")
    if kind == "module":
        if not argument:
            raise RunOptionError(f"--candidate {text!r}: module needs an import path, module:package.module:attr")
        module = import_module_attr(argument)
        return ModuleCandidate(name or argument.rsplit(":", 1)[-1].split(".")[-1], module, taxonomy, source=argument)
    if kind == "chat":
        path = Path(argument)
        if not argument or not path.is_file():
            raise DataError(argument or "(none)", "chat candidate: no such system-prompt file")
        try:
            prompt = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DataError(str(path), f"not UTF-8 text (byte {error.start})") from None
        return ChatCandidate(name or "chat", prompt, source=str(path))
    raise RunOptionError(f"--candidate {text!r}: the kind must be program, module or chat, got {kind!r}")


def _summary_table(result: dict) -> Table:
    from cscprog.arena.report import SCORE_LABELS, format_interval

    names = list(result["candidates"])
    table = Table(title="arena (means over customers, bootstrap intervals)")
    table.add_column("score")
    for name in names:
        table.add_column(name)
    summary = result["summary"]
    for score in ("resolved", "flow_ok", "strategy_adherence", "satisfaction"):
        label, unit = SCORE_LABELS[score]
        table.add_row(label, *[format_interval(summary[name]["scores"][score], unit) if name in summary else "-"
                               for name in names])
    for pair in result["pairwise"]:
        table.add_row(f"{pair['a']} vs {pair['b']}: wins / ties / losses",
                      " / ".join(format_interval(pair[key], "%").split(" [")[0] for key in ("win", "tie", "loss")))
    return table


@app.command("arena")
def arena_command(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="Run directory (outputs, result.json, report.md)."),
    candidates: list[str] = typer.Option(..., "--candidate", "-C", help=CANDIDATE_HELP),
    n: int | None = typer.Option(None, "-n", "--customers", min=1,
                                 help="Customers (profile x topic pairs) to plan (default: all of them)."),
    profiles_path: Path | None = typer.Option(None, "--profiles", help="Profiles JSONL/JSON; default: the samples."),
    topics: list[str] | None = typer.Option(None, "--topics", help="A topic (repeat for more); default: the seven."),
    topics_file: Path | None = typer.Option(None, "--topics-file", help="Topics, one a line."),
    trials: int = typer.Option(1, "--trials", min=1, help="Trials per candidate and customer (pass^k, k<=trials)."),
    turn_cap: int = typer.Option(12, "--turn-cap", min=2, help="Most utterances of a conversation, both sides."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the customer plan and the bootstrap ([run] seed)."),
    language: str | None = typer.Option(None, "--language", help="en or zh (default: the profile's, else en)."),
    pairwise: bool = typer.Option(True, "--pairwise/--no-pairwise", help="Judge every pair of candidates."),
    adherence: bool = typer.Option(True, "--adherence/--no-adherence",
                                   help="Classify tagged turns to measure strategy adherence."),
    resamples: int = typer.Option(2000, "--resamples", min=1, help="Bootstrap resamples of every interval."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    concurrency: int | None = ConcurrencyOption,
    resume: bool = ResumeOption,
    engine: str | None = EngineOption,
    progress: str = ProgressOption,
    as_json: bool = JsonSummaryOption,
) -> None:
    """Compare support agents on the same seeded simulated customers: resolution, flow, satisfaction, pass^k, pairs.

    Writes customers.jsonl, conversations.jsonl, pairs.jsonl (each with a manifest), result.json, report.md and
    plots into OUTPUT. Exit status 0 when every item finished, 1 when some failed (retry with --resume), 130 when
    interrupted.
    """
    from cscprog.arena import ArenaSettings, arena_roles, run_arena
    from cscprog.lm.preflight import check_setup
    from cscprog.lm.runtime import Runtime
    from cscprog.runs import make_progress

    check_choice(progress, ("auto", "rich", "plain", "off"), "--progress")
    if language is not None:
        check_choice(language, LANGUAGES, "--language")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    plan_seed = seed if seed is not None else loaded_config.run.seed
    plan, chosen_topics, _ = plan_for_cli(profiles_path, topics, topics_file, n, plan_seed)
    built = [parse_candidate(text, tax, explicit_taxonomy=taxonomy is not None) for text in candidates]
    settings = ArenaSettings(
        output_dir=output, trials=trials, turn_cap=turn_cap, language=language,
        concurrency=concurrency if concurrency is not None else loaded_config.run.concurrency, resume=resume,
        pairwise=pairwise, check_adherence=adherence, resamples=resamples, seed=plan_seed,
        engine=run_engine(engine, loaded_config),
        progress=lambda stage: make_progress(f"arena {stage}", progress),  # type: ignore[arg-type]
        command=command_line(ctx), resume_command=command_line(ctx, add_resume=True),
        inputs={"profiles": str(profiles_path) if profiles_path else "sample:profiles", "topics": chosen_topics,
                "config": loaded_config.source},
    )
    check_setup(loaded_config, arena_roles(built, settings))  # exit 2 naming the key, before any call or file
    runtime = Runtime(loaded_config)
    try:
        with runtime.activate():
            outcome = run_arena(built, plan, settings, tax)
    finally:
        runtime.close()
    err = console(stderr=True)
    for stage, run in outcome.runs.items():
        err.print(f"arena {stage}: {run.summary()}")
    err.print(f"result {outcome.result_path}; report {outcome.report_path}")
    hint = next((run.resume_hint() for run in outcome.runs.values() if run.resume_hint()), None)
    if hint:
        err.print(hint)
    err.print(_summary_table(outcome.result))
    if as_json:
        print_json(outcome.result)
    if outcome.exit_status:
        raise typer.Exit(outcome.exit_status)
