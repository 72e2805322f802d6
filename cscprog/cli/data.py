"""``cscprog stats``, ``cscprog validate`` and ``cscprog split``: look at a dialogue file, check it, split it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from cscprog.cli.app import app
from cscprog.cli.common import (
    ConfigOption,
    JsonOption,
    TaxonomyOption,
    config_and_taxonomy,
    console,
    parse_shares,
    print_json,
)
from cscprog.data import DialogueFile, dataset_stats, read_dialogues, split_dialogues, write_dialogues
from cscprog.errors import ConfigError, DataError
from cscprog.framework import Taxonomy

SkipOption = typer.Option(False, "--skip-invalid", help="Skip bad records (reported) instead of stopping.")
UnknownOption = typer.Option(False, "--unknown-as-others", help="Map unknown strategy labels to Others.")


def resolve_data_path(path: Path) -> Path:
    """A file path, or ``sample:NAME`` for a packaged sample (``sample:annotated_en``)."""
    text = str(path)
    if text.startswith("sample:"):
        from cscprog.samples import sample_path

        try:
            return sample_path(text.removeprefix("sample:"))
        except ValueError as error:
            raise DataError(text, str(error)) from None
    return path


def _report_renamed(loaded: DialogueFile, limit: int = 20) -> None:
    """Say on stderr which repeated dialogue ids were renamed (outputs carry the new ids)."""
    if not loaded.renamed:
        return
    typer.echo(f"note: {len(loaded.renamed)} repeated dialogue id(s) renamed (outputs use the new ids):", err=True)
    for line in loaded.renamed[:limit]:
        typer.echo(f"  {line}", err=True)
    if len(loaded.renamed) > limit:
        typer.echo(f"  ... and {len(loaded.renamed) - limit} more", err=True)


def load_for_cli(path: Path, taxonomy: Taxonomy, skip_invalid: bool, unknown_as_others: bool) -> DialogueFile:
    """Read a dialogue file with the command's taxonomy and policies, reporting skipped records on stderr."""
    loaded = read_dialogues(resolve_data_path(path), taxonomy=taxonomy, skip_invalid=skip_invalid,
                            unknown_strategy="fallback" if unknown_as_others else "error")
    _report_renamed(loaded)
    if loaded.skipped:
        typer.echo(f"skipped {len(loaded.skipped)} invalid record(s):", err=True)
        for problem in loaded.skipped[:20]:
            typer.echo(f"  {problem}", err=True)
        if len(loaded.skipped) > 20:
            typer.echo(f"  ... and {len(loaded.skipped) - 20} more", err=True)
    return loaded


@app.command("stats")
def stats_command(
    data: Path = typer.Argument(..., help="Dialogue file (released, cscprog or ESConv JSON/JSONL) or sample:NAME."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    skip_invalid: bool = SkipOption,
    unknown_as_others: bool = UnknownOption,
    as_json: bool = JsonOption,
) -> None:
    """Dialogues, utterances, supporter turns, strategy and stage distributions, flow violations, domains."""
    _, tax = config_and_taxonomy(config, taxonomy)
    loaded = load_for_cli(data, tax, skip_invalid, unknown_as_others)
    stats = dataset_stats(loaded.dialogues, tax)
    stats["skipped"] = len(loaded.skipped)
    if as_json:
        print_json(stats)
        return
    out = console()
    out.print(Text.assemble((str(data), "bold"), f": {stats['dialogues']} dialogues, {stats['utterances']} "
                            f"utterances ({stats['mean_utterances']} a dialogue), {stats['supporter_turns']} "
                            f"supporter turns, {stats['annotated_turns']} annotated, {stats['multi_label_turns']} "
                            "multi-label"))
    table = Table(title="Strategies")
    for column in ("strategy", "stage", "count", "share"):
        table.add_column(column, justify="right" if column in ("count", "share") else "left")
    for name, count in stats["strategy_counts"].items():
        table.add_row(name, tax.stage_of(name), str(count), f"{stats['strategy_shares'][name]:.1%}")
    out.print(table)
    out.print("Stages: " + ", ".join(f"{k} {v}" for k, v in stats["stage_counts"].items()))
    violations = ", ".join(f"{k} {v}" for k, v in stats["flow_violations"].items()) or "none"
    out.print(f"Flow-rule violations: {violations} (in {stats['dialogues_with_violations']} dialogues)")
    out.print("Domains: " + ", ".join(f"{k} {v}" for k, v in stats["domains"].items()))


@app.command("validate")
def validate_command(
    data: Path = typer.Argument(..., help="Dialogue file to check."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
) -> None:
    """Check a dialogue file: exit 0 when every record is valid, else 2 with one line per bad record."""
    _, tax = config_and_taxonomy(config, taxonomy)
    loaded = read_dialogues(resolve_data_path(data), taxonomy=tax, skip_invalid=True)
    _report_renamed(loaded)
    for problem in loaded.skipped:
        typer.echo(f"error: {problem}", err=True)
    if loaded.skipped:
        typer.echo(f"{data}: {len(loaded.skipped)} invalid record(s), {len(loaded)} valid", err=True)
        raise typer.Exit(2)
    typer.echo(f"{data}: {len(loaded)} valid dialogue(s) ({', '.join(sorted(loaded.formats))} format)")


DEFAULT_SPLITS = "train=0.6,dev=0.2,test=0.2"


def parse_ratios(text: str) -> dict[str, float]:
    """``train=0.6,dev=0.2,test=0.2`` as a dict; a clear error for anything else.

    Raises:
        ConfigError: a part is not ``name=number``, a name repeats, or the ratios do not sum to 1.
    """
    ratios = parse_shares(text, "--ratios", DEFAULT_SPLITS)
    if any(ratio < 0 for ratio in ratios.values()):
        raise ConfigError(f"--ratios: shares cannot be negative, got {text!r}")
    if abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise ConfigError(f"--ratios: the ratios must sum to 1, got {sum(ratios.values()):g} in {text!r}")
    return ratios


@app.command("split")
def split_command(
    data: Path = typer.Argument(..., help="Dialogue file or sample:NAME."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for one NAME.jsonl per split."),
    ratios: str = typer.Option(DEFAULT_SPLITS, "--ratios", help="Split names and shares, summing to 1."),
    salt: str = typer.Option("cscprog", "--salt", help="Changes which dialogues fall in which split."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    skip_invalid: bool = SkipOption,
    unknown_as_others: bool = UnknownOption,
    as_json: bool = JsonOption,
) -> None:
    """Split dialogues into train/dev/test files by a hash of their ids (stable: a dialogue never changes split)."""
    shares = parse_ratios(ratios)
    _, tax = config_and_taxonomy(config, taxonomy)
    loaded = load_for_cli(data, tax, skip_invalid, unknown_as_others)
    parts = split_dialogues(loaded.dialogues, shares, salt=salt)
    counts = {name: write_dialogues(output / f"{name}.jsonl", dialogues, taxonomy=tax)
              for name, dialogues in parts.items()}
    if as_json:
        print_json({"output": str(output), "counts": counts})
        return
    typer.echo(", ".join(f"{output / name}.jsonl: {count}" for name, count in counts.items()))
