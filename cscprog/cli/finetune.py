"""``cscprog finetune``: train a LoRA adapter on annotated dialogues, ready for ``evaluate --model``.

The work is in :mod:`cscprog.finetune.train`; the settings are the config's ``[finetune]`` table, which the
options here override for one run.

Example:
    ```
    cscprog finetune train.jsonl -o ft/run1 --epochs 2
    cscprog finetune csconv_train.jsonl sample:annotated_zh judged.jsonl -o ft/run2   # several files, mixed
    cscprog finetune train.jsonl -o ft/run1 --resume          # after an interruption
    cscprog evaluate test.jsonl --model ft/run1 -o eval/ft
    ```
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, JsonOption, TaxonomyOption, config_and_taxonomy, console, print_json
from cscprog.cli.data import load_for_cli
from cscprog.cli.runs import check_choice
from cscprog.config import Config
from cscprog.data import Dialogue
from cscprog.errors import ConfigError, CscprogError, DataError
from cscprog.framework import Taxonomy

if TYPE_CHECKING:
    from cscprog.finetune.serve import FinetunedServing

ModelOption = typer.Option(None, "--model", help="A fine-tuned model: the output directory of cscprog finetune, "
                                                 "served in-process as the responder (no server).")


def compiled_model_dir(program: Path) -> Path | None:
    """The fine-tuned model of a program compiled with ``--optimizer finetune`` (None for any other program).

    Example:
        ```python
        compiled_model_dir(Path("program.json"))   # Path('/work/program.model')
        ```
    """
    from cscprog.finetune.program import FinetunedResponder
    from cscprog.optimizers import read_compiled

    if not program.is_file():
        return None  # the program loader reports the missing file
    try:
        document = read_compiled(program)
    except CscprogError:
        return None  # not a compiled program, or unreadable: the program loader reports it
    if document["program_class"] != f"{FinetunedResponder.__module__}.{FinetunedResponder.__qualname__}":
        return None
    model_dir = (document.get("manifest") or {}).get("program_init", {}).get("model_dir")
    if not model_dir:
        raise ConfigError(f"{program}: a fine-tuned program without its model directory (program_init.model_dir)")
    return Path(model_dir)


def finetuned_serving(model: Path | None, program: Path | None, config: Config,
                      taxonomy: Taxonomy) -> FinetunedServing | None:
    """What ``--model DIR`` (or a ``--program`` compiled with ``--optimizer finetune``) serves; else None.

    Raises:
        ConfigError: both options, or ``DIR`` is not a finished fine-tuning output.

    Example:
        ```python
        served = finetuned_serving(Path("ft/run1"), None, config, taxonomy)
        ```
    """
    from cscprog.finetune.serve import serve_finetuned

    if model is not None and program is not None:
        raise ConfigError("--model and --program exclude each other: a fine-tuned model has its own program")
    if program is not None:
        model = compiled_model_dir(program)
    if model is None:
        return None

    return serve_finetuned(model, config, taxonomy)


def training_dialogues(paths: list[Path], taxonomy: Taxonomy) -> list[Dialogue]:
    """The dialogues of every file in ``paths``, in order (CSConv samples and judged RoleCS output may mix).

    Raises:
        DataError: a file cannot be read, or a dialogue id appears in two files (naming both).

    Example:
        ```python
        training_dialogues([Path("sample:annotated_en"), Path("judged.jsonl")], taxonomy)
        ```
    """
    dialogues: list[Dialogue] = []
    first_file: dict[str, Path] = {}
    for path in paths:
        for dialogue in load_for_cli(path, taxonomy, False, False).dialogues:
            if dialogue.id in first_file:
                raise DataError(str(path), f"dialogue id {dialogue.id!r} is also in {first_file[dialogue.id]}: "
                                           "give every training dialogue its own id", field="id")
            first_file[dialogue.id] = path
            dialogues.append(dialogue)
    return dialogues


class _Bar:
    """The loss on a rich bar (terminal) or a plain line per step (logs), on stderr."""

    def __init__(self, mode: str) -> None:
        rich = mode == "rich" or (mode == "auto" and sys.stderr.isatty())
        self.off = mode == "off"
        self.progress = Progress(TextColumn("finetune"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                                 console=console(stderr=True)) if rich else None
        self.task: Any = None

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, step: int, total: int, loss: float | None) -> None:
        shown = "–" if loss is None else f"{loss:.4f}"
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task("finetune", total=total, loss=shown)
            self.progress.update(self.task, completed=step, total=total, loss=shown)
        elif not self.off and loss is not None:
            typer.echo(f"finetune: step {step}/{total} loss {shown}", err=True)


@app.command("finetune")
def finetune_command(
    data: list[Path] = typer.Argument(..., help="Annotated training dialogues (CSConv format or cscprog JSONL) "
                                                "or sample:NAME; several files train together, e.g. CSConv "
                                                "samples and judged RoleCS output (only dialogues the judge "
                                                "passed are used)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (adapter, merged GGUF, manifest)."),
    base: str | None = typer.Option(None, "--base", help="embedded, a .gguf file or a Hugging Face model "
                                                         "directory (default: finetune.base of the config)."),
    epochs: float | None = typer.Option(None, "--epochs", min=0.01, help="Epochs (default: finetune.epochs)."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after N optimizer steps."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use at most N dialogues, picked by a hash of "
                                                                  "their ids."),
    resume: bool = typer.Option(False, "--resume", help="Continue this run from its last checkpoint."),
    progress: str = typer.Option("auto", "--progress", help="auto, rich, plain or off (on stderr)."),
    as_json: bool = JsonOption,
    config: Path | None = ConfigOption,
    taxonomy: str | None = TaxonomyOption,
) -> None:
    """Fine-tune a model on the next supporter turn (strategy, then reply; loss on that target only).

    Dialogues carrying a quality verdict (cscprog judge, synthesize --filter) are used only when the judge passed
    them; the others are counted in the manifest (data.judge_rejected). Both languages train together.

    Exit status: 0 when trained, 2 for bad input or data (the message names the file, record, turn and field).
    """
    from cscprog.evaluation.evaluate import sample_dialogues
    from cscprog.finetune.train import finetune

    check_choice(progress, ("auto", "rich", "plain", "off"), "--progress")
    loaded_config, tax = config_and_taxonomy(config, taxonomy)
    overrides: dict[str, Any] = {}
    if base is not None:
        overrides["base"] = base
    if epochs is not None:
        overrides["epochs"] = epochs
    settings = loaded_config.finetune.model_copy(update=overrides)
    dialogues = sample_dialogues(training_dialogues(data, tax), limit)
    with _Bar(progress) as bar:
        result = finetune(dialogues, output, settings=settings, lm=loaded_config.lm,
                          taxonomy=tax, resume=resume, progress=bar,
                          source=", ".join(str(path) for path in data), max_steps=max_steps)
    manifest = result.manifest
    summary = {"output": str(output), "adapter": str(result.adapter_dir),
               "merged_gguf": str(result.merged_gguf) if result.merged_gguf else None,
               "examples": manifest["data"]["examples"], "skipped_too_long": manifest["data"]["skipped_too_long"],
               "languages": manifest["data"]["languages"], "judge_rejected": manifest["data"]["judge_rejected"],
               "judged_dialogues": manifest["data"]["judged_dialogues"],
               "steps": manifest["steps"], "first_loss": manifest["first_loss"],
               "final_loss": manifest["final_loss"], "wall_time_s": manifest["wall_time_s"],
               "device": manifest["device"]}
    if as_json:
        print_json(summary)
        return
    out = console()
    out.print(f"Trained {manifest['steps']} steps on {summary['examples']} examples "
              f"({summary['skipped_too_long']} skipped as too long) on {summary['device']} in "
              f"{summary['wall_time_s']:.0f} s; loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f} "
              "(per-step training loss, first and last step)")
    languages = ", ".join(f"{count} {language}" for language, count in summary["languages"].items())
    out.print(f"Examples by language: {languages}; judged dialogues trained on: {summary['judged_dialogues']}, "
              f"left out as rejected by the judge: {summary['judge_rejected']}")
    out.print(f"Wrote {output / 'manifest.json'}, {result.adapter_dir}"
              + (f" and {result.merged_gguf}" if result.merged_gguf else ""))
    out.print(f"Evaluate it: cscprog evaluate DATA --model {output}")
