"""``cscprog view`` and ``cscprog human-eval``: self-contained HTML pages to look at data and to rate systems.

Example:
    ```
    cscprog view sample:annotated_en -o page.html
    cscprog view eval/base eval/compiled -o compare.html
    cscprog human-eval eval/base eval/compiled -o study/ --limit 50
    cscprog human-eval --score study/ratings-*.json
    ```
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, JsonOption, TaxonomyOption, config_and_taxonomy, console, print_json
from cscprog.errors import ConfigError


@app.command("view")
def view_command(
    targets: list[str] = typer.Argument(..., help="A dialogue file, sample:NAME, a failures file, a folder, an "
                                                  "evaluation run directory, or two run directories to compare."),
    output: Path = typer.Option(Path("page.html"), "--output", "-o", help="The HTML file to write."),
    data: str | None = typer.Option(None, "--data", help="Reference dialogues of evaluation runs (default: the "
                                                         "data their result.json names)."),
    side_outputs: bool = typer.Option(True, "--side-outputs/--no-side-outputs",
                                      help="Show a dialogue file's .dropped/.rejected/.failures files with it."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
) -> None:
    """Write one self-contained HTML page (no network needed) to read dialogues or evaluation runs."""
    from cscprog.view.build import build_view

    _, tax = config_and_taxonomy(config, taxonomy)
    page = build_view(targets, output, data=data, taxonomy=tax, side_outputs=side_outputs)
    size = page.stat().st_size / 1e6
    console().print(f"wrote {page} ({size:.1f} MB); open it in a browser")


@app.command("human-eval")
def human_eval_command(
    paths: list[Path] = typer.Argument(..., help="RUN_A RUN_B (evaluation run directories), or with --score the "
                                                 "ratings files raters exported."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder for the rating page and its key."),
    score: bool = typer.Option(False, "--score", help="Un-blind and score ratings files instead."),
    key: Path | None = typer.Option(None, "--key", help="The study's key.json (default: beside the ratings)."),
    judge: Path | None = typer.Option(None, "--judge", help="LLM pairwise judge verdicts (JSONL) to compare with."),
    seed: int = typer.Option(1234, "--seed", help="Seed of the item sample and of the A/B order per item."),
    limit: int | None = typer.Option(None, "--limit", help="Rate at most this many turns (a seeded sample)."),
    criteria: list[str] | None = typer.Option(None, "--criterion",
                                              help="name=question (repeat for more); default: strategy_adherence,"
                                                   " problem_resolution, empathy, naturalness."),
    data: str | None = typer.Option(None, "--data", help="Reference dialogues (default: from result.json)."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    as_json: bool = JsonOption,
) -> None:
    """A blind side-by-side rating page for two runs, or (--score) the win rates and agreement of its ratings."""
    if score:
        from cscprog.view.human_scores import score_ratings

        report = score_ratings(paths, key=key, judge=judge)
        if as_json:
            print_json(report)
        else:
            _print_scores(report)
        return
    if len(paths) != 2 or output is None:
        raise ConfigError("human-eval needs RUN_A RUN_B and -o DIR (or --score RATINGS...)")
    from cscprog.view.human_eval import parse_criteria, write_study
    from cscprog.view.runs import load_run

    _, tax = config_and_taxonomy(config, taxonomy)
    first = load_run(paths[0], data=data, taxonomy=tax)
    second = load_run(paths[1], dialogues=first.dialogues, taxonomy=tax)
    study = write_study(first, second, output, seed=seed, limit=limit, criteria=parse_criteria(criteria))
    summary = {"page": str(study.page), "key": str(study.key), "study": study.study, "items": study.items}
    if as_json:
        print_json(summary)
        return
    console().print(f"study {study.study}: {study.items} items\n  page for raters: {study.page}\n"
                    f"  key (keep it from raters): {study.key}")


def _fmt_share(share: dict) -> str:
    if share["value"] is None:
        return "–"
    low, high = share["ci95"]
    return f"{100 * share['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] ({share['count']}/{share['n']})"


def _print_scores(report: dict) -> None:
    out = console()
    systems = report["systems"]
    table = Table(title=f"study {report['study']}: {len(report['raters'])} rater(s), win rates (95% Wilson)")
    table.add_column("criterion")
    for name in (*systems, "tie"):
        table.add_column(name, justify="right")
    table.add_column("Fleiss κ", justify="right")
    table.add_column("judge agreement", justify="right")
    for criterion, entry in report["criteria"].items():
        fleiss = entry["agreement"]["fleiss"]["kappa"]
        judged = entry.get("judge")
        table.add_row(criterion, *(_fmt_share(entry["win_rate"][n]) for n in (*systems, "tie")),
                      "–" if fleiss is None else f"{fleiss:.3f}",
                      "–" if not judged or not judged["items"] else _fmt_share(judged["agreement"]))
    out.print(table)
    for criterion, entry in report["criteria"].items():
        for pair in entry["agreement"]["cohen"]:
            kappa = pair["cohen_kappa"]
            out.print(f"{criterion}: Cohen's κ {' vs '.join(pair['raters'])} = "
                      f"{'undefined' if kappa is None else f'{kappa:.3f}'} on {pair['items']} shared items")
    out.print(report["method"], style="dim")
