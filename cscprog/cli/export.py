"""``cscprog export``: annotated dialogues as fine-tuning data (one example per supporter turn).

The example layout (system prompt, user message, ``Strategy: ...`` / ``Reply: ...`` target, metadata) is
described in :mod:`cscprog.finetune.export`; ``cscprog score`` reads a fine-tuned model's raw outputs in that layout
from prediction lines with a ``completion`` field.

Example:
    ```
    cscprog export sample:annotated_en --format openai -o ft/csc.jsonl --split train=0.9,dev=0.1
    cscprog export csconv.jsonl --format hf -o ft/csconv_hf --system-prompt-file prompt.txt --json
    ```
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

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
from cscprog.cli.data import load_for_cli
from cscprog.cli.runs import check_choice, command_line
from cscprog.errors import ConfigError, DataError


def parse_split(text: str | None) -> dict[str, float] | None:
    """``train=0.9,dev=0.1`` as ``{"train": 0.9, "dev": 0.1}`` (None for None).

    Raises:
        ConfigError: a part is not ``name=number``, or a name repeats.

    Example:
        ```python
        parse_split("train=0.8,dev=0.1,test=0.1")
        ```
    """
    if text is None:
        return None
    return parse_shares(text, "--split", "train=0.9,dev=0.1")


def read_system_prompt(text: str | None, file: Path | None) -> str | None:
    """The system prompt from ``--system-prompt`` or ``--system-prompt-file`` (None: the default one).

    Raises:
        ConfigError: both options are given.
        DataError: the file cannot be read as UTF-8 text.
    """
    if text is not None and file is not None:
        raise ConfigError("give --system-prompt or --system-prompt-file, not both")
    if file is None:
        return text
    try:
        return file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(str(file), f"cannot read the system prompt file ({error})") from None


@app.command("export")
def export_command(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Annotated dialogue file (CSConv format or cscprog JSONL) or sample:NAME."),
    format: str = typer.Option(..., "--format", "-f", help="openai, sharegpt, alpaca or hf."),
    output: Path = typer.Option(..., "--output", "-o",
                                help="The JSONL file (with --split: <stem>.<split>.jsonl beside it), or the "
                                     "directory of the hf dataset."),
    split: str | None = typer.Option(None, "--split", help="Split by dialogue id, e.g. train=0.9,dev=0.1."),
    system_prompt: str | None = typer.Option(None, "--system-prompt",
                                             help="System prompt text (\"\" leaves it out; default: cscprog's)."),
    system_prompt_file: Path | None = typer.Option(None, "--system-prompt-file",
                                                   help="Read the system prompt from this UTF-8 file."),
    language: str | None = typer.Option(None, "--language", help="Export only dialogues in this language (en, zh)."),
    metadata: bool = typer.Option(True, "--metadata/--no-metadata",
                                  help="Add the top-level metadata key (dialogue_id, turn_index...) to JSONL lines."),
    split_salt: str = typer.Option("cscprog", "--split-salt", help="Salt of the split hash."),
    card: bool = typer.Option(True, "--card/--no-card", help="Write a README.md dataset card (Hugging Face format)."),
    license: str = typer.Option("unknown", "--license", help="License identifier for the card (mit, cc-by-4.0...)."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    as_json: bool = JsonOption,
) -> None:
    """Write one fine-tuning example per supporter turn: the history, then the strategy and the reply.

    Every supporter turn must carry a strategy of the taxonomy; bad input stops with exit status 2. Dialogues
    carrying a quality verdict the judge did not pass (cscprog judge) are left out and counted on stderr.
    """
    from cscprog.finetune.export import FORMATS, write_export
    from cscprog.finetune.judged import judged_selection

    check_choice(format, FORMATS, "--format")
    ratios = parse_split(split)
    prompt = read_system_prompt(system_prompt, system_prompt_file)
    _, tax = config_and_taxonomy(config, taxonomy)
    selection = judged_selection(load_for_cli(data, tax, False, False).dialogues)
    if selection.rejected:
        typer.echo(f"left out {len(selection.rejected)} dialogue(s) the quality judge rejected: "
                   + ", ".join(selection.rejected[:10]) + (" ..." if len(selection.rejected) > 10 else ""), err=True)
    dialogues = selection.kept
    result = write_export(output, dialogues, format, split=ratios, system_prompt=prompt,  # type: ignore[arg-type]
                          language=language, taxonomy=tax, metadata=metadata, salt=split_salt, source=str(data),
                          card=card, command=command_line(ctx), license=license)
    if as_json:
        print_json(result.as_dict())
        return
    table = Table(title=f"{data} -> {format}")
    for column in ("split", "dialogues", "examples"):
        table.add_column(column, justify="left" if column == "split" else "right")
    table.add_column("written to", overflow="fold")  # the whole path, wrapped, never cut
    for name, path in result.paths.items():
        table.add_row(name, str(result.dialogues[name]), str(result.examples[name]), str(path))
    console().print(table)
    if result.card is not None:
        console().print(f"dataset card: {result.card}")
