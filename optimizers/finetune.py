"""The ``finetune`` compile recipe: LoRA fine-tuning as a DSPy optimizer, served without DSPy's local path.

DSPy's own route (``BootstrapFinetune`` -> ``LocalProvider``) passes ``max_seq_length`` to TRL's ``SFTConfig``,
which TRL >= 0.20 rejects, and it serves the result through an SGLang server. :class:`LoRAFinetune` is a
``dspy.Teleprompter`` instead: ``compile(student, trainset=...)`` trains a LoRA adapter on the training examples
with :func:`cscprog.finetune.train.finetune` (the same examples ``cscprog finetune`` and ``cscprog export`` make)
and returns a :class:`~cscprog.finetune.program.FinetunedResponder` whose ``model_dir`` names the trained model.
:func:`compile_finetune` wraps it like :func:`cscprog.optimizers.compile_program`: dev scores of the student
before, of the fine-tuned model after (served in-process by :func:`cscprog.finetune.serve.finetuned_runtime`).

The saved program (``cscprog compile --optimizer finetune -o P.json``) records ``model_dir`` in its manifest, so
``cscprog evaluate --program P.json`` and ``cscprog respond --program P.json`` serve that model, exactly as
``--model DIR`` does. Budgets: ``light`` trains ``settings.epochs`` epochs, ``medium`` twice, ``heavy`` three times.

Example:
    ```python
    from cscprog.optimizers.finetune import compile_finetune

    with runtime.activate():
        result = compile_finetune(ResponseGenerator(), train, dev, out_dir=Path("ft/compiled"),
                                  config=runtime.config, max_steps=20)
    result.after["strategy_accuracy"], result.program.model_dir
    ```
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dspy
from cscprog.optimizers.compile import CompileResult, evaluate_program

from cscprog.config import Config
from cscprog.errors import DataError
from cscprog.evaluation.metrics.dspy_metrics import DEFAULT_WEIGHTS, combined_metric
from cscprog.finetune.program import FinetunedResponder
from cscprog.finetune.serve import finetuned_runtime, load_finetuned
from cscprog.finetune.train import finetune
from cscprog.framework import Taxonomy

__all__ = ["BUDGET_EPOCHS", "FINETUNE_RECIPE", "LoRAFinetune", "compile_finetune", "finetuned_model_dir"]

FINETUNE_RECIPE = "finetune"
"""The recipe name of ``cscprog compile --optimizer finetune``."""

BUDGET_EPOCHS = {"light": 1.0, "medium": 2.0, "heavy": 3.0}
"""Multiplier of ``[finetune] epochs`` per budget."""


class LoRAFinetune(dspy.teleprompt.Teleprompter):
    """Train a LoRA adapter on the training examples; the compiled program answers with the trained model.

    Args:
        out_dir: Where the run is written (adapter, merged GGUF, manifest, checkpoints).
        config: The configuration (``[finetune]``, and the ``[lm]`` GGUF that ``base = "embedded"`` means).
        taxonomy: The strategy taxonomy of the examples.
        epochs_factor: Multiplies ``[finetune] epochs`` (the budget).
        max_steps: Stop after this many optimizer steps.
        resume: Continue a run in ``out_dir`` from its last checkpoint.

    Example:
        ```python
        program = LoRAFinetune(Path("ft/c1"), config, taxonomy).compile(ResponseGenerator(), trainset=train)
        ```
    """

    def __init__(self, out_dir: Path, config: Config, taxonomy: Taxonomy, *, epochs_factor: float = 1.0,
                 max_steps: int | None = None, resume: bool = False) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.config = config
        self.taxonomy = taxonomy
        self.settings = config.finetune.model_copy(update={"epochs": config.finetune.epochs * epochs_factor})
        self.max_steps = max_steps
        self.resume = resume
        self.manifest: dict[str, Any] = {}

    def compile(self, student: dspy.Module, *, trainset: list[dspy.Example], teacher: Any = None,
                valset: Any = None, **_: Any) -> FinetunedResponder:
        """Fine-tune on ``trainset`` (``history, language, domain, strategy, reply`` examples).

        ``student`` is not changed: the fine-tuned model replaces its prompts, it does not extend them.

        Raises:
            DataError: no example, or an example with a strategy outside the taxonomy.
        """
        result = finetune(None, self.out_dir, settings=self.settings, lm=self.config.lm,
                          taxonomy=self.taxonomy, resume=self.resume,
                          source="<trainset>", max_steps=self.max_steps, examples=trainset)
        self.manifest = result.manifest
        return FinetunedResponder(self.taxonomy, model_dir=self.out_dir)


def finetuned_model_dir(program: Any) -> Path | None:
    """The fine-tuned model a program answers with (None for an ordinary program).

    Example:
        ```python
        finetuned_model_dir(result.program)   # Path('ft/compiled')
        ```
    """
    directory = getattr(program, "model_dir", None)
    return Path(directory) if directory is not None else None


def compile_finetune(
    program: dspy.Module,
    trainset: Sequence[dspy.Example],
    devset: Sequence[dspy.Example],
    *,
    out_dir: Path,
    config: Config,
    taxonomy: Taxonomy | None = None,
    budget: str = "light",
    metric: Callable[..., float] | None = None,
    num_threads: int = 1,
    max_steps: int | None = None,
    resume: bool = False,
) -> CompileResult:
    """Score ``program`` on ``devset``, fine-tune on ``trainset``, score the fine-tuned model on ``devset``.

    The ``before`` scores use the active runtime's responder; the ``after`` scores use the fine-tuned model as the
    responder (other roles as configured).

    Raises:
        DataError: an empty train or dev set, or bad training examples.
        ConfigError: the ``train`` extra is missing, or ``out_dir`` holds another run.

    Example:
        ```python
        result = compile_finetune(ResponseGenerator(), train, dev, out_dir=Path("ft/c1"), config=config)
        ```
    """
    if not trainset:
        raise DataError("<trainset>", "no training examples")
    if not devset:
        raise DataError("<devset>", "no dev examples")
    started = time.monotonic()
    taxonomy = taxonomy or getattr(program, "taxonomy", None) or config.taxonomy()
    score_metric = metric if metric is not None else combined_metric()
    before = evaluate_program(program, devset, score_metric, num_threads=num_threads)
    optimizer = LoRAFinetune(out_dir, config, taxonomy, epochs_factor=BUDGET_EPOCHS[budget], max_steps=max_steps,
                             resume=resume)
    compiled = optimizer.compile(program, trainset=list(trainset))
    runtime = finetuned_runtime(config, load_finetuned(out_dir))
    try:
        with runtime.activate():
            after = evaluate_program(compiled, devset, score_metric, num_threads=num_threads)
    finally:
        runtime.close()
    manifest = optimizer.manifest
    settings = {"recipe": FINETUNE_RECIPE, "budget": budget, "optimizer": "LoRAFinetune",
                "init": {"finetune": optimizer.settings.model_dump(mode="json"), "max_steps": max_steps},
                "compile": {}, "model_dir": str(out_dir),
                "metric": getattr(score_metric, "__name__", repr(score_metric)),
                "weights": dict(DEFAULT_WEIGHTS) if metric is None else None, "num_threads": num_threads,
                "train_examples": len(trainset), "dev_examples": len(devset),
                "final_loss": manifest.get("final_loss"), "steps": manifest.get("steps"),
                "data_fingerprint": manifest.get("data", {}).get("fingerprint")}
    return CompileResult(program=compiled, before=before, after=after, recipe=FINETUNE_RECIPE, settings=settings,
                         duration_s=round(time.monotonic() - started, 3))
