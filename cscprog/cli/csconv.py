"""``cscprog rewrite`` and ``cscprog annotate``: the CSConv steps over a dialogue file, resumable and concurrent.

Example:
    ```
    cscprog rewrite raw_calls.jsonl -o rewritten.jsonl --concurrency 8
    cscprog annotate sample:raw -o annotated.jsonl --format released
    cscprog annotate sample:raw -o annotated.jsonl --resume      # after Ctrl-C or a crash
    ```
"""

from __future__ import annotations

from pathlib import Path

import typer

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, TaxonomyOption, config_and_taxonomy
from cscprog.cli.data import SkipOption, load_for_cli
from cscprog.cli.runs import (
    FORMATS,
    ConcurrencyOption,
    DataArgument,
    EngineOption,
    FormatOption,
    JsonSummaryOption,
    OutputOption,
    ProgressOption,
    ResumeOption,
    RunSpec,
    check_choice,
    dialogue_record,
    execute,
    sibling_path,
)
from cscprog.data import Dialogue
from cscprog.errors import ConfigError
from cscprog.roles import Role
from cscprog.runs import ItemError, Routed


@app.command("rewrite")
def rewrite_command(
    ctx: typer.Context,
    raw: Path = DataArgument,
    output: Path = OutputOption,
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    concurrency: int | None = ConcurrencyOption,
    resume: bool = ResumeOption,
    engine: str | None = EngineOption,
    output_format: str = FormatOption,
    screen: bool = typer.Option(True, "--screen/--no-screen", help="Run the LLM pre-filter."),
    judge: bool = typer.Option(True, "--judge/--no-judge", help="Run the LLM quality judge after rewriting."),
    language: str | None = typer.Option(None, "--language", help="en or zh (default: each dialogue's own)."),
    skip_invalid: bool = SkipOption,
    progress: str = ProgressOption,
    as_json: bool = JsonSummaryOption,
) -> None:
    """Rewrite raw calls into alternating, strategy-annotated dialogues (CSConv), dropping the unusable ones.

    Kept dialogues go to OUTPUT; dropped ones, with the filter that dropped them in ``metadata.rewrite`` and the
    model's rewrite in ``metadata.rewritten``, to ``<OUTPUT stem>.dropped.jsonl``. A dialogue whose LLM calls gave
    no usable output is a failure (retried by --resume, its last raw LM text kept), not a drop.
    """
    from cscprog.csconv.rewriter import GENERATION_FAILURE, Rewriter

    check_choice(output_format, FORMATS, "--format")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    dialogues = load_for_cli(raw, tax, skip_invalid, unknown_as_others=True).dialogues
    rewriter = Rewriter(tax, use_screen=screen, use_judge=judge, language=language)
    dropped_path = sibling_path(output, "dropped")

    def work(dialogue: Dialogue) -> object:
        result = rewriter(dialogue=dialogue)
        decision = result.decision
        if decision.kept:
            return dialogue_record(result.dialogue, output_format, tax)
        if decision.rule == GENERATION_FAILURE:
            role = Role.JUDGE if decision.stage == "judge" else Role.REWRITER
            raise ItemError(f"{decision.stage}: {decision.reason}", role=role,
                            raw_text=decision.details.get("raw_text"))
        metadata = {**dialogue.metadata, "rewrite": decision.to_json(), "screen": result.screen,
                    "judge": result.judge,
                    # what the model wrote, so a reader sees why it was dropped
                    "rewritten": [turn.to_json() for turn in result.candidate.turns] if result.candidate else None}
        return Routed("dropped", dialogue.model_copy(update={"metadata": metadata}).to_json())

    spec = RunSpec(name="rewrite", output=output, config=loaded_config, concurrency=concurrency, resume=resume,
                   inputs={"raw": str(raw), "dialogues": len(dialogues), "format": output_format, "screen": screen,
                           "judge": judge, "language": language, "taxonomy": tax.name},
                   side_outputs={"dropped": dropped_path}, progress=progress, json_summary=as_json,
                   context=ctx, engine=engine, roles=(Role.REWRITER, Role.JUDGE) if judge else (Role.REWRITER,))
    execute(spec, items=[(d.id, d) for d in dialogues], work=work)


@app.command("annotate")
def annotate_command(
    ctx: typer.Context,
    data: Path = DataArgument,
    output: Path = OutputOption,
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    concurrency: int | None = ConcurrencyOption,
    resume: bool = ResumeOption,
    engine: str | None = EngineOption,
    output_format: str = FormatOption,
    only_missing: bool = typer.Option(False, "--only-missing", help="Keep existing labels; label the rest."),
    rationale: bool = typer.Option(False, "--rationale", help="Store a short rationale with every label."),
    strategy_model: Path | None = typer.Option(
        None, "--strategy-model",
        help="A model directory from `cscprog train-classifier`: label with it instead of an LM (no LM call)."),
    skip_invalid: bool = SkipOption,
    progress: str = ProgressOption,
    as_json: bool = JsonSummaryOption,
) -> None:
    """Label every supporter turn with one strategy of the taxonomy (raw or rewritten dialogues).

    A dialogue with a turn that could not be labelled after the retries is a failure (retried by --resume);
    it is not written half-labelled.
    """
    from cscprog.agents.classifier import StrategyClassifier
    from cscprog.agents.strategy_model import StrategyModel

    check_choice(output_format, FORMATS, "--format")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    if strategy_model is not None and rationale:
        raise ConfigError("--rationale needs an LM to write it; a --strategy-model gives no rationale")
    model = StrategyModel.load(strategy_model, tax) if strategy_model is not None else None
    dialogues = load_for_cli(data, tax, skip_invalid, unknown_as_others=False).dialogues
    classifier = StrategyClassifier(tax, concurrency=1, rationale=rationale, model=model)

    def work(dialogue: Dialogue) -> dict:
        result = classifier(dialogue, only_missing=only_missing)
        if result.failures:
            first = result.failures[0]
            raise ItemError(
                f"{len(result.failures)} supporter turn(s) not labelled; turn {first.turn_index}: {first.reason}",
                role=Role.CLASSIFIER, raw_text=first.raw_text,
            )
        return dialogue_record(result.dialogue, output_format, tax)

    spec = RunSpec(name="annotate", output=output, config=loaded_config, concurrency=concurrency, resume=resume,
                   inputs={"data": str(data), "dialogues": len(dialogues), "format": output_format,
                           "only_missing": only_missing, "rationale": rationale, "taxonomy": tax.name,
                           "strategy_model": str(strategy_model) if strategy_model is not None else None},
                   progress=progress, json_summary=as_json, context=ctx, engine=engine,
                   roles=(Role.CLASSIFIER,) if model is None else ())
    execute(spec, items=[(d.id, d) for d in dialogues], work=work)
