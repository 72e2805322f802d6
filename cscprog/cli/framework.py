"""``cscprog framework``: show the stages and strategies of the taxonomy in use."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, JsonOption, TaxonomyOption, config_and_taxonomy, console, print_json


@app.command("framework")
def framework_command(
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the stages and strategies (with their stage) as a table or JSON."""
    _, tax = config_and_taxonomy(config, taxonomy)
    if as_json:
        print_json(tax.to_dict())
        return
    out = console()
    stages = Table(title=f"Stages ({tax.name})")
    for column in ("#", "stage", "zh", "description"):
        stages.add_column(column)
    for stage in tax.stages:
        stages.add_row(str(stage.order), stage.name, stage.zh or "", stage.description)
    out.print(stages)
    table = Table(title=f"Strategies ({tax.name})")
    for column in ("#", "strategy", "abbr", "zh", "stage", "definition"):
        table.add_column(column)
    for s in tax.strategies:
        table.add_row(str(s.number), s.name, s.abbr, s.zh or "", s.stage, s.definition)
    out.print(table)
    typer.echo(f"Flow rules: {', '.join(f'{k}={v}' for k, v in vars(tax.flow).items() if v)}")
