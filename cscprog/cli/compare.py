"""``cscprog compare RUN_A RUN_B``: is B better than A on the same turns, and how sure is that?

Example:
    ```
    cscprog compare evaluations/base evaluations/compiled
    cscprog compare eval/a eval/b --metrics paper --test randomization --resamples 5000 --json
    cscprog compare eval/a eval/b --judge --judge-output eval/a-vs-b/pairs.jsonl
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, JsonOption, TaxonomyOption, config_and_taxonomy, console, print_json
from cscprog.cli.runs import ConcurrencyOption, ProgressOption, ResumeOption, RunSpec, check_choice, execute

_SHOWN = ("bleu2", "bleu4", "rouge_l", "bertscore", "bleurt", "semantic", "accuracy", "macro_f1")


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _metrics_table(report: dict[str, Any]) -> Table:
    from cscprog.evaluation.compare import LABELS, p_text

    table = Table(title=f"B - A over {report['turns']} turns ({report['profile']} profile, {report['test']}, "
                        f"{report['resamples']} resamples, seed {report['seed']})")
    for column in ("metric", "A", "B", "B - A", "95% CI", "p"):
        table.add_column(column, justify="right")
    for key in _SHOWN:
        entry = report["metrics"].get(key)
        if entry is None:
            continue
        if "unavailable" in entry:
            table.add_row(LABELS[key], "–", "–", "–", "–", entry["unavailable"] or "")
            continue
        table.add_row(LABELS[key], _num(entry["a"]), _num(entry["b"]), _num(entry["delta"], True),
                      f"[{entry['low']:+.2f}, {entry['high']:+.2f}]", p_text(entry))
    return table


def _judge(report: dict[str, Any], run_a: Any, run_b: Any, data: Path | None, tax: Any, output: Path,
           options: dict[str, Any], loaded_config: Any) -> dict[str, Any]:
    """Judge every turn through the runner every command uses (cached, resumable), then summarize the verdicts."""
    from cscprog.cli.data import load_for_cli
    from cscprog.evaluation.pairwise import PairwiseJudge, pair_turns, read_pair_records, summarize_pairs
    from cscprog.evaluation.verdicts import PAIR_ROLE

    source = data or Path(str((run_a.result.get("settings") or {}).get("data") or ""))
    if not str(source) or str(source) == ".":
        raise typer.BadParameter("--judge needs the dialogues: pass --data (run A's result.json names none)")
    dialogues = load_for_cli(source, tax, False, False).dialogues
    turns = pair_turns(run_a, run_b, dialogues, tax)
    judge = PairwiseJudge(tax)
    spec = RunSpec(name="pair-judge", output=output, config=loaded_config,
                   inputs={"a": str(run_a.path), "b": str(run_b.path), "data": str(source), "turns": len(turns),
                           "taxonomy": tax.name},
                   id_field="turn_id", roles=(PAIR_ROLE,), **options)
    execute(spec, items=[(turn.turn_id, turn) for turn in turns], work=judge)
    summary = summarize_pairs(read_pair_records(output), resamples=report["resamples"], seed=report["seed"])
    summary.update(output=str(output), asked=len(turns))
    return summary


def _judge_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"Pairwise judge over {summary['n']} of {summary['asked']} turns: B against A "
                        "(both orders; a verdict that flips with the order counts as a tie)")
    for column in ("criterion", "B wins", "tie", "A wins"):
        table.add_column(column, justify="right")

    def cell(rate: dict[str, Any]) -> str:
        if rate.get("low") is None:
            return f"{100 * rate['estimate']:.1f}%"
        return f"{100 * rate['estimate']:.1f}% [{100 * rate['low']:.1f}, {100 * rate['high']:.1f}]"

    for name, rates in (("overall", summary["overall"]), *summary["criteria"].items()):
        table.add_row(name, cell(rates["win"]), cell(rates["tie"]), cell(rates["loss"]))
    return table


@app.command("compare")
def compare_command(
    ctx: typer.Context,
    run_a: Path = typer.Argument(..., help="Baseline run: an evaluation directory or its predictions.jsonl."),
    run_b: Path = typer.Argument(..., help="The run compared with it, on the same turns."),
    metrics: str | None = typer.Option(None, "--metrics", help="Metric profile: standard or paper (default: A's)."),
    test: str = typer.Option("bootstrap", "--test", help="bootstrap (paired) or randomization (approximate)."),
    resamples: int | None = typer.Option(None, "--resamples", min=1,
                                         help="Resamples per test (default [metrics] resamples)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed of the tests (default [metrics] seed)."),
    judge: bool = typer.Option(False, "--judge", help="Also ask the pairwise LLM judge (role pair_judge)."),
    data: Path | None = typer.Option(None, "--data", help="Dialogues for the judge (default: run A's data)."),
    judge_output: Path | None = typer.Option(None, "--judge-output",
                                             help="Judge verdicts JSONL (default: RUN_B/pairs-vs-<A>.jsonl)."),
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    resume: bool = ResumeOption,
    concurrency: int | None = ConcurrencyOption,
    progress: str = ProgressOption,
) -> None:
    """Per-metric difference B - A with a 95% interval and p-value, by strategy and domain; optionally judged.

    The judge (--judge) sees each turn's history, the gold strategy and both replies in both orders, and picks the
    better reply or a tie per criterion; its verdicts are cached and resumable (--resume).

    Exit status 2 when the runs are not on the same turns (the message names them) or an input is malformed.
    """
    from cscprog.evaluation.compare import LABELS, TESTS, compare_runs, load_run, p_text
    from cscprog.evaluation.metrics.conventions import PROFILES
    from cscprog.evaluation.metrics.neural import load_scorers

    check_choice(test, TESTS, "--test")
    if metrics is not None:
        check_choice(metrics, tuple(PROFILES), "--metrics")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    if judge:  # before the runs are read and tested: a judge that cannot be called is exit 2 at once
        from cscprog.evaluation.verdicts import PAIR_ROLE
        from cscprog.lm.preflight import check_setup

        check_setup(loaded_config, (PAIR_ROLE,))
    settings = loaded_config.metrics
    a, b = load_run(run_a), load_run(run_b)
    profile = metrics or a.profile or settings.profile
    scorers = load_scorers(settings, profile, semantic=True)
    report = compare_runs(a, b, labels=tax.names, profile=profile, scorers=scorers, test=test,
                          resamples=resamples or settings.resamples,
                          seed=settings.seed if seed is None else seed)
    if judge:
        target = judge_output or (b.path.parent / f"pairs-vs-{a.path.parent.name}.jsonl")
        options = {"resume": resume, "concurrency": concurrency, "progress": progress, "context": ctx}
        report["judge"] = _judge(report, a, b, data, tax, target, options, loaded_config)
    if as_json:
        print_json(report)
    else:
        out = console()
        out.print(_metrics_table(report))
        out.print("Signatures: " + "; ".join(f"{LABELS[key]} {report['metrics'][key]['signature']}"
                                             for key in _SHOWN if key in report["metrics"]))
        for key in _SHOWN:
            entry = report["metrics"].get(key) or {}
            if "sentence" in entry:
                out.print(entry["sentence"])
        for name, groups in report["breakdowns"].items():
            tested = {g: e for g, e in groups.items() if "accuracy" in e}
            for key in ("accuracy", "rouge_l", "bleu2"):
                significant = [f"{g} ({e[key]['delta']:+.1f}, {p_text(e[key])})" for g, e in tested.items()
                               if key in e and e[key]["significant"]]
                out.print(f"{LABELS[key]} by {name}: {len(tested)} of {len(groups)} group(s) tested; significant "
                          "differences: " + (", ".join(significant) if significant else "none") + " (details: --json)")
        if judge:
            out.print(_judge_table(report["judge"]))
            consistency = report["judge"]["position_consistency"]
            interval = ("" if consistency.get("low") is None else
                        f" (95% CI [{100 * consistency['low']:.1f}, {100 * consistency['high']:.1f}])")
            out.print(f"Position consistency: {100 * consistency['estimate']:.1f}% of verdicts survive swapping the "
                      f"replies{interval}; verdicts in {report['judge']['output']}")
