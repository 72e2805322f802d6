"""``cscprog respond``: the program's next supporter turn (strategy, then reply) at every supporter position.

Example:
    ```
    cscprog respond sample:annotated_en -o turns.jsonl
    cscprog respond dev.jsonl -o turns.jsonl --context generated --program compiled.json --concurrency 8
    ```
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, TaxonomyOption, config_and_taxonomy
from cscprog.cli.data import SkipOption, load_for_cli
from cscprog.cli.runs import (
    ConcurrencyOption,
    JsonSummaryOption,
    OutputOption,
    ProgressOption,
    ResumeOption,
    RunSpec,
    check_choice,
    execute,
)
from cscprog.data import Dialogue
from cscprog.errors import DataError
from cscprog.runs import ItemError

logger = logging.getLogger(__name__)


@app.command("respond")
def respond_command(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Dialogue file (annotated or not) or sample:NAME."),
    output: Path = OutputOption,
    context: str = typer.Option("reference", "--context",
                                help="reference (gold history) or generated (the program's own earlier turns)."),
    program: Path | None = typer.Option(None, "--program", help="A saved (compiled) ResponseGenerator state, JSON."),
    gold_strategy: bool = typer.Option(False, "--gold-strategy",
                                       help="Oracle ablation: write replies for the gold strategies."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    concurrency: int | None = ConcurrencyOption,
    resume: bool = ResumeOption,
    skip_invalid: bool = SkipOption,
    progress: str = ProgressOption,
    as_json: bool = JsonSummaryOption,
) -> None:
    """Predict the next supporter turn at every supporter position: one record per turn.

    Records (keyed by ``dialogue_id``) hold the history the program saw, the gold and predicted strategy and
    reply. A dialogue with a turn the program could not answer after the retries is a failure (retried by
    --resume); dialogues without supporter turns are skipped with a warning.
    """
    from cscprog.responder import CONTEXTS, ResponseGenerator, respond_dialogue

    check_choice(context, CONTEXTS, "--context")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    dialogues = load_for_cli(data, config, taxonomy, skip_invalid, unknown_as_others=False).dialogues
    usable = [dialogue for dialogue in dialogues if dialogue.supporter_indices()]
    if len(usable) < len(dialogues):
        typer.echo(f"skipping {len(dialogues) - len(usable)} dialogue(s) without a supporter turn", err=True)
    generator = ResponseGenerator(tax, use_gold_strategy=gold_strategy)
    if program is not None:
        if not program.is_file():
            raise DataError(str(program), "no such file")
        try:
            generator.load(str(program))
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(str(program), f"not a saved ResponseGenerator state: {error}") from None

    def work(dialogue: Dialogue) -> list[dict]:
        rows = respond_dialogue(generator, dialogue, context, concurrency=1)  # type: ignore[arg-type]
        failed = [row for row in rows if not row.ok]
        if failed:
            raise ItemError(f"{len(failed)} of {len(rows)} supporter turn(s) got no response; turn "
                            f"{failed[0].turn_index}: {failed[0].failure}", role="responder")
        return [row.to_json() for row in rows]

    spec = RunSpec(name="respond", output=output, config=config, concurrency=concurrency, resume=resume,
                   inputs={"data": str(data), "dialogues": len(usable), "context": context,
                           "program": str(program) if program else None, "gold_strategy": gold_strategy,
                           "taxonomy": tax.name},
                   id_field="dialogue_id", many_records=True, progress=progress, json_summary=as_json,
                   loaded_config=loaded_config, context=ctx)
    execute(spec, items=[(d.id, d) for d in usable], work=work)
