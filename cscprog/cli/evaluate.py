"""``cscprog evaluate``, ``cscprog score`` and ``cscprog compile``: measure programs and optimize them.

Example:
    ```
    cscprog evaluate sample:annotated_en --limit 8 -o eval/base
    cscprog evaluate dev.jsonl --program compiled.json --context generated -o eval/compiled --json
    cscprog score finetuned_predictions.jsonl --reference test.jsonl --json
    cscprog compile --train rolecs.jsonl --dev dev.jsonl --optimizer bootstrap --budget light -o compiled.json
    ```
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, JsonOption, TaxonomyOption, config_and_taxonomy, console, print_json
from cscprog.cli.data import load_for_cli
from cscprog.cli.finetune import ModelOption, finetuned_serving
from cscprog.cli.logs import LogStream
from cscprog.cli.runs import (
    ConcurrencyOption,
    EngineOption,
    ProgressOption,
    ResumeOption,
    check_choice,
    command_line,
    run_engine,
)
from cscprog.errors import ConfigError
from cscprog.evaluation.comparability import paper_comparability
from cscprog.framework import Taxonomy
from cscprog.lm.preflight import check_setup
from cscprog.roles import Role

_HEADLINE = (("B-2", "bleu2"), ("B-4", "bleu4"), ("R-L", "rouge_l"), ("BS", "bertscore"), ("BR", "bleurt"),
             ("ACC", "accuracy"), ("macro-F1", "macro_f1"), ("WL-F1", "semantic"), ("Dist-1", "distinct1"),
             ("Dist-2", "distinct2"))

MetricsOption = typer.Option(None, "--metrics", help="Metric conventions: standard or paper (default [metrics] "
                                                     "profile). Every score carries its signature.")
BertScoreOption = typer.Option(None, "--bertscore/--no-bertscore",
                               help="Compute BERTScore (default: [metrics] bertscore; always under --metrics paper).")
ResamplesOption = typer.Option(None, "--resamples", min=1, help="Bootstrap resamples per interval "
                                                                "(default [metrics] resamples).")


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _scores_table(result: dict[str, Any], title: str) -> Group:
    """The title, one row per score (x100) with its 95% interval, and the counts: fits 80 columns."""
    intervals, metrics = result.get("intervals") or {}, result.get("metrics") or {}
    table = Table()
    table.add_column("score")
    table.add_column("x100", justify="right")
    table.add_column("95% CI", justify="right")
    for name, key in _HEADLINE:
        interval = intervals.get(key)
        table.add_row(name, _num(result.get(key)),
                      f"{interval['low']:.2f} – {interval['high']:.2f}" if interval else "–")
    caption = (f"{result['n']} turns scored, {result['failures']} failed; 95% CI: "
               f"{metrics.get('interval', 'bootstrap')}, {metrics.get('resamples')} resamples, "
               f"seed {metrics.get('seed')}")
    return Group(Text(title, style="bold"), table, Text(caption))


def _metric_options(loaded_config: Any, metrics: str | None, bertscore: bool | None,
                    resamples: int | None) -> dict[str, Any]:
    """Profile, scorers, resamples and seed for evaluate/score from the options and ``[metrics]``."""
    from cscprog.evaluation.metrics.conventions import PROFILES
    from cscprog.evaluation.metrics.neural import load_scorers

    settings = loaded_config.metrics
    if metrics is not None:
        check_choice(metrics, tuple(PROFILES), "--metrics")
    profile = metrics or settings.profile
    return {"profile": profile, "scorers": load_scorers(settings, profile, bertscore=bertscore),
            "resamples": resamples or settings.resamples, "seed": settings.seed}


def _notes(result: dict[str, Any]) -> list[str]:
    """Why each missing model-based score is missing, the signatures, and which paper columns are comparable."""
    marks = paper_comparability(result)
    comparable = [name for name, mark in marks.items() if mark["comparable"]]
    others = [name for name, mark in marks.items() if not mark["comparable"]]
    signatures = "; ".join(f"{key} {signature}" for key, signature in (result.get("signatures") or {}).items())
    return [*(f"{key}: {why}" for key, why in (result.get("unavailable") or {}).items() if key != "semantic"),
            f"Signatures: {signatures}",
            f"Comparable with the paper's Table 2 (on its CSConv test set only): {', '.join(comparable) or 'none'}; "
            f"not comparable: {', '.join(others) or 'none'} (why: report.md)"]


def _load_program(path: Path | None, taxonomy: Taxonomy, explicit_taxonomy: bool) -> tuple[Any, dict[str, Any] | None]:
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.optimizers import load_compiled, read_compiled

    if path is None:
        return ResponseGenerator(taxonomy), None
    extra = {"taxonomy": taxonomy} if explicit_taxonomy else {}
    program = load_compiled(path, ResponseGenerator, **extra)
    manifest = read_compiled(path).get("manifest") or {}
    keep = ("recipe", "optimizer", "budget", "before", "after", "improvement", "settings", "versions")
    return program, {"path": str(path), **{key: manifest.get(key) for key in keep}}


def _default_output(data: Path, context: str) -> Path:
    name = str(data).removeprefix("sample:") if str(data).startswith("sample:") else Path(data).stem
    return Path("evaluations") / f"{name}-{context}"


@app.command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Annotated dialogue file (CSConv format or cscprog JSONL) or sample:NAME."),
    program: Path | None = typer.Option(None, "--program", help="A compiled program (from `cscprog compile`)."),
    model: Path | None = ModelOption,
    context: str = typer.Option("reference", "--context",
                                help="reference (gold history) or generated (the program's own earlier turns)."),
    limit: int | None = typer.Option(None, "--limit", min=1,
                                     help="Evaluate at most N dialogues, picked by a hash of their ids."),
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Output directory (default: evaluations/<data>-<context>)."),
    as_json: bool = JsonOption,
    concurrency: int | None = ConcurrencyOption,
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    resume: bool = ResumeOption,
    engine: str | None = EngineOption,
    progress: str = ProgressOption,
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the PNG plots."),
    metrics: str | None = MetricsOption,
    bertscore: bool | None = BertScoreOption,
    resamples: int | None = ResamplesOption,
) -> None:
    """Run the program at every supporter turn, score it like the paper, write result.json, report.md, plots.

    Exit status: 0 when every dialogue ran, 1 when some could not (their turns count as failures), 130 when
    interrupted (continue with --resume), 2 for bad input.
    """
    from cscprog.evaluation.evaluate import CONTEXTS, evaluate
    from cscprog.lm.runtime import Runtime
    from cscprog.runs import make_progress

    check_choice(context, CONTEXTS, "--context")
    check_choice(progress, ("auto", "rich", "plain", "off"), "--progress")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    served = finetuned_serving(model, program, loaded_config, tax)
    if served is not None:
        loaded_config = served.config
    check_setup(loaded_config, (Role.RESPONDER,) if served is None or served.lm_factory is None else ())
    scoring = _metric_options(loaded_config, metrics, bertscore, resamples)
    dialogues = load_for_cli(data, tax, False, False).dialogues
    target = output or _default_output(data, context)
    chosen_engine = run_engine(engine, loaded_config)
    runtime = Runtime(loaded_config, lm_factory=served.lm_factory if served else None)
    try:
        # stdout carries only our output (one JSON object with --json); DSPy's prints go to the log (-vv)
        with runtime.activate(), contextlib.redirect_stdout(LogStream("dspy")):
            if served is not None:
                generator, program_manifest = served.program, served.summary
            else:
                generator, program_manifest = _load_program(program, tax, taxonomy is not None)
            outcome = evaluate(generator, dialogues, out_dir=target, context=context, limit=limit,
                               concurrency=concurrency, resume=resume, plots=plots, **scoring,
                               progress=make_progress("evaluate", progress),  # type: ignore[arg-type]
                               data_source=str(data), program_manifest=program_manifest,
                               command=command_line(ctx), resume_command=command_line(ctx, add_resume=True),
                               engine=chosen_engine)
    finally:
        runtime.close()
    result = outcome.result
    if as_json:
        print_json(result)
    else:
        out = console()
        out.print(_scores_table(result, f"{data} ({context} context), {result['metrics']['profile']} profile"))
        for note in _notes(result):
            out.print(note)
        out.print(f"Wrote {target / 'result.json'}, {target / 'predictions.jsonl'}, {target / 'report.md'}"
                  + (f" and {len(result.get('plots', []))} plots" if result.get("plots") else ""))
    if result["failures"]:
        typer.echo(f"{result['failures']} of {result['n']} turn(s) failed and are scored as wrong", err=True)
    if outcome.exit_status:
        typer.echo(f"not every dialogue ran; to resume: {command_line(ctx, add_resume=True)}", err=True)
        raise typer.Exit(outcome.exit_status)


@app.command("score")
def score_command(
    predictions: Path = typer.Argument(..., help="Predictions JSONL, one record per supporter turn: dialogue_id, "
                                                 "turn_index and either pred_strategy + pred_reply or completion "
                                                 "(the raw text of a model fine-tuned on `cscprog export` data)."),
    reference: Path = typer.Option(..., "--reference", help="The annotated reference dialogues, or sample:NAME."),
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    metrics: str | None = MetricsOption,
    bertscore: bool | None = BertScoreOption,
    resamples: int | None = ResamplesOption,
) -> None:
    """Score predictions made by any system (e.g. a fine-tuned model) against reference dialogues.

    Every record is checked: an unknown dialogue id, a turn index that is no supporter turn, a duplicate, an
    unknown strategy label or a wrong type stops with exit status 2, naming the line and the field. Supporter
    turns of a predicted dialogue without a prediction count as failures.
    """
    from cscprog.evaluation.predictions import score_file

    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    scoring = _metric_options(loaded_config, metrics, bertscore, resamples)
    dialogues = load_for_cli(reference, tax, False, False).dialogues
    result = score_file(predictions, dialogues, tax, **scoring)
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(_scores_table(result, f"{predictions} against {reference}"))
    for note in _notes(result):
        out.print(note)
    coverage = result["coverage"]
    out.print(f"{coverage['dialogues_scored']} of {coverage['dialogues_in_reference']} reference dialogues scored; "
              f"{coverage['turns_missing_predictions']} supporter turn(s) without a prediction (scored as wrong)")


def _parse_weights(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--weights: expected name=number pairs like strategy=0.7,reply=0.3, got {part!r}") \
                from None
    return weights


def _objective(spec: str | None, weights: str | None, profile: str | None, loaded_config: Any,
               tax: Any) -> Any:
    """The ``--metric`` objective (None: the default weighted accuracy/ROUGE-L of ``--weights``)."""
    from cscprog.evaluation.metrics.conventions import PROFILES
    from cscprog.evaluation.metrics.neural import load_scorers
    from cscprog.evaluation.metrics.objective import Objective, parse_terms

    if profile is not None:
        check_choice(profile, tuple(PROFILES), "--metrics")
    if spec is None:
        if profile is not None:
            raise ConfigError("--metrics chooses the conventions of --metric; give --metric too")
        return None
    if weights is not None:
        raise ConfigError("--weights and --metric both set the metric; give one (e.g. --metric 0.7*acc+0.3*rouge_l)")
    terms = parse_terms(spec)
    chosen = profile or loaded_config.metrics.profile
    scorers = None
    if {"bertscore", "bleurt", "semantic"} & set(terms):
        scorers = load_scorers(loaded_config.metrics, chosen, bertscore="bertscore" in terms,
                               semantic="semantic" in terms)
    return Objective(terms, labels=tax.names, profile=chosen, scorers=scorers)


@app.command("compile")
def compile_command(
    train: Path = typer.Option(..., "--train", help="Training dialogues (e.g. RoleCS) or sample:NAME."),
    dev: Path = typer.Option(..., "--dev", help="Dev dialogues (e.g. a CSConv dev split) or sample:NAME."),
    optimizer: str = typer.Option(..., "--optimizer", help="Recipe: bootstrap, copro, mipro, gepa or finetune "
                                                           "(LoRA fine-tuning, the train extra)."),
    budget: str = typer.Option("light", "--budget", help="light, medium or heavy."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to save the compiled program (JSON)."),
    weights: str | None = typer.Option(None, "--weights", help="Metric weights, e.g. strategy=0.7,reply=0.3 "
                                                               "(default 0.5 each)."),
    metric: str | None = typer.Option(None, "--metric", help="The metric to optimize: any metric of the profile "
                                      "or a weighted mix, e.g. bleu2, rouge_l, bertscore or "
                                      "0.5*accuracy+0.5*rouge_l (default 0.5*accuracy+0.5*rouge_l)."),
    metrics: str | None = MetricsOption,
    train_limit: int | None = typer.Option(None, "--train-limit", min=1, help="Use at most N training dialogues."),
    dev_limit: int | None = typer.Option(None, "--dev-limit", min=1, help="Use at most N dev dialogues."),
    seed: int | None = typer.Option(None, "--seed", help="Optimizer seed (default: [run] seed of the config)."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="finetune: where the model is trained "
                                                                    "(default: the output path with .model)."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="finetune: stop after N steps."),
    concurrency: int | None = ConcurrencyOption,
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    as_json: bool = JsonOption,
) -> None:
    """Optimize the response program with a recipe; print the dev scores before and after; save it with its manifest."""
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.evaluation.evaluate import sample_dialogues
    from cscprog.lm.runtime import Runtime
    from cscprog.optimizers import BUDGETS, RECIPES, compile_program, save_compiled, training_examples
    from cscprog.optimizers.finetune import FINETUNE_RECIPE, compile_finetune

    check_choice(optimizer, (*RECIPES, FINETUNE_RECIPE), "--optimizer")
    check_choice(budget, BUDGETS, "--budget")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    check_setup(loaded_config, (Role.RESPONDER,) if optimizer in ("bootstrap", FINETUNE_RECIPE)
                else (Role.RESPONDER, Role.REFLECTION))
    train_set = training_examples(sample_dialogues(load_for_cli(train, tax, False, False).dialogues,
                                                   train_limit))
    dev_set = training_examples(sample_dialogues(load_for_cli(dev, tax, False, False).dialogues,
                                                 dev_limit))
    objective = _objective(metric, weights, metrics, loaded_config, tax)
    chosen_seed = loaded_config.run.seed if seed is None else seed
    inputs = {"train": str(train), "dev": str(dev), "train_limit": train_limit, "dev_limit": dev_limit,
              "train_examples": len(train_set), "dev_examples": len(dev_set)}
    started = time.monotonic()
    runtime = Runtime(loaded_config)
    try:
        with runtime.activate(), contextlib.redirect_stdout(LogStream("dspy")):
            if optimizer == FINETUNE_RECIPE:
                result = compile_finetune(ResponseGenerator(tax), train_set, dev_set, budget=budget,
                                          out_dir=model_dir or output.with_suffix(".model"), config=loaded_config,
                                          taxonomy=tax, metric=objective, max_steps=max_steps,
                                          num_threads=concurrency or loaded_config.run.concurrency)
            else:
                result = compile_program(ResponseGenerator(tax), train_set, dev_set, recipe=optimizer,
                                         budget=budget, metric=objective, weights=_parse_weights(weights),
                                         num_threads=concurrency, seed=chosen_seed)
            saved = save_compiled(output, result, runtime, inputs=inputs)
    finally:
        runtime.close()
    summary = {"program": str(saved), "recipe": optimizer, "optimizer": result.settings["optimizer"],
               "budget": budget, "before": result.before, "after": result.after,
               "improvement": result.improvement, "duration_s": round(time.monotonic() - started, 3),
               "settings": result.settings}
    if result.improvement < 0:
        hint = ("random search (--budget medium) keeps the uncompiled program among its candidates"
                if optimizer == "bootstrap" and budget == "light" else "try another recipe or budget")
        typer.echo(f"warning: the compiled program scores lower than the base program on dev; {hint}", err=True)
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"{result.settings['optimizer']} ({optimizer}, {budget}) on {len(dev_set)} dev examples")
    for column in ("", "metric", "strategy accuracy", "reply ROUGE-L", "failures"):
        table.add_column(column, justify="right")
    for name, scores in (("before", result.before), ("after", result.after)):
        table.add_row(name, _num(scores["metric"]), _num(scores["strategy_accuracy"]), _num(scores["reply_rouge_l"]),
                      str(scores["failures"]))
    out = console()
    out.print(table)
    out.print(f"Saved {saved} (metric {result.improvement:+.2f} points)")
