"""``cscprog respond``: the program's next supporter turn (strategy, then reply) at every supporter position.

Example:
    ```
    cscprog respond sample:annotated_en -o turns.jsonl
    cscprog respond dev.jsonl -o turns.jsonl --context generated --program compiled.json --concurrency 8
    ```
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, TaxonomyOption, config_and_taxonomy
from cscprog.cli.data import SkipOption, load_for_cli
from cscprog.cli.finetune import ModelOption, finetuned_serving
from cscprog.cli.runs import (
    ConcurrencyOption,
    EngineOption,
    JsonSummaryOption,
    OutputOption,
    ProgressOption,
    ResumeOption,
    RunSpec,
    check_choice,
    execute,
)
from cscprog.data import Dialogue
from cscprog.errors import ConfigError, DataError
from cscprog.framework import Taxonomy
from cscprog.roles import Role
from cscprog.runs import ItemError

if TYPE_CHECKING:
    from cscprog.agents.responder import ResponseGenerator

logger = logging.getLogger(__name__)


def _is_plain_dspy_state(path: Path) -> bool:
    """True when ``path`` holds what ``dspy.Module.save`` writes (per-predictor state plus DSPy's ``metadata``)."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False  # load_compiled reports the unreadable file
    return (
        isinstance(document, dict)
        and "format" not in document
        and isinstance(document.get("metadata"), dict)
        and "dependency_versions" in document["metadata"]
    )


def load_generator(
    path: Path | None, taxonomy: Taxonomy, *, explicit_taxonomy: bool, gold_strategy: bool
) -> ResponseGenerator:
    """The ResponseGenerator ``cscprog respond`` runs: a fresh one, or the program saved at ``path``.

    A compiled program (written by ``cscprog compile`` / :func:`cscprog.optimizers.save_compiled`) is loaded with
    :func:`cscprog.optimizers.load_compiled`, which refuses another program class or cscprog version; its
    recorded taxonomy is kept unless ``--taxonomy`` was given. A bare ``dspy.Module.save`` state of a
    ResponseGenerator (no class or version recorded) is still accepted and loaded into a fresh generator.

    Raises:
        CompiledProgramError: the compiled program is unreadable, of another class or of another version.
        DataError: the file is missing, or a bare state does not fit a ResponseGenerator.

    Example:
        ```python
        generator = load_generator(Path("compiled.json"), load_taxonomy("csc"), explicit_taxonomy=False,
                                   gold_strategy=False)
        ```
    """
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.optimizers import load_compiled

    if path is None:
        return ResponseGenerator(taxonomy, use_gold_strategy=gold_strategy)
    if not path.is_file():
        raise DataError(str(path), "no such file")
    if not _is_plain_dspy_state(path):
        extra: dict[str, Any] = {"taxonomy": taxonomy} if explicit_taxonomy else {}
        program = load_compiled(path, ResponseGenerator, use_gold_strategy=gold_strategy, **extra)
        return program  # type: ignore[return-value]
    generator = ResponseGenerator(taxonomy, use_gold_strategy=gold_strategy)
    try:
        generator.load(str(path))
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(str(path), f"not a saved ResponseGenerator state: {error}") from None
    return generator


@app.command("respond")
def respond_command(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Dialogue file (annotated or not) or sample:NAME."),
    output: Path = OutputOption,
    context: str = typer.Option("reference", "--context",
                                help="reference (gold history) or generated (the program's own earlier turns)."),
    program: Path | None = typer.Option(
        None, "--program", help="A compiled program (from `cscprog compile`), or a ResponseGenerator's dspy save()."
    ),
    model: Path | None = ModelOption,
    gold_strategy: bool = typer.Option(False, "--gold-strategy",
                                       help="Oracle ablation: write replies for the gold strategies."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    concurrency: int | None = ConcurrencyOption,
    resume: bool = ResumeOption,
    engine: str | None = EngineOption,
    skip_invalid: bool = SkipOption,
    progress: str = ProgressOption,
    as_json: bool = JsonSummaryOption,
) -> None:
    """Predict the next supporter turn at every supporter position: one record per turn.

    Records (keyed by ``dialogue_id``) hold the history the program saw, the gold and predicted strategy and
    reply. A dialogue with a turn the program could not answer after the retries is a failure (retried by
    --resume); dialogues without supporter turns are skipped with a warning.
    """
    from cscprog.agents.responder import CONTEXTS, respond_dialogue

    check_choice(context, CONTEXTS, "--context")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    dialogues = load_for_cli(data, tax, skip_invalid, unknown_as_others=False).dialogues
    usable = [dialogue for dialogue in dialogues if dialogue.supporter_indices()]
    if len(usable) < len(dialogues):
        typer.echo(f"skipping {len(dialogues) - len(usable)} dialogue(s) without a supporter turn", err=True)
    served = finetuned_serving(model, program, loaded_config, tax)
    if served is not None:
        if gold_strategy:
            raise ConfigError("--gold-strategy does not apply to --model: a fine-tuned model chooses its strategy")
        loaded_config, generator = served.config, served.program
    else:
        generator = load_generator(program, tax, explicit_taxonomy=taxonomy is not None,
                                   gold_strategy=gold_strategy)

    def work(dialogue: Dialogue) -> list[dict]:
        rows = respond_dialogue(generator, dialogue, context, concurrency=1)  # type: ignore[arg-type]
        failed = [row for row in rows if not row.ok]
        if failed:
            raise ItemError(f"{len(failed)} of {len(rows)} supporter turn(s) got no response; turn "
                            f"{failed[0].turn_index}: {failed[0].failure}", role=Role.RESPONDER)
        return [row.to_json() for row in rows]

    spec = RunSpec(name="respond", output=output, config=loaded_config, concurrency=concurrency, resume=resume,
                   inputs={"data": str(data), "dialogues": len(usable), "context": context,
                           "program": str(program) if program else None, "gold_strategy": gold_strategy,
                           "taxonomy": tax.name, **(served.summary if served else {})},
                   id_field="dialogue_id", many_records=True, progress=progress, json_summary=as_json,
                   context=ctx, engine=engine, roles=() if served and served.lm_factory else (Role.RESPONDER,),
                   lm_factory=served.lm_factory if served else None)
    execute(spec, items=[(d.id, d) for d in usable], work=work)
