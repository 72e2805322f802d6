"""``cscprog finetune``: LoRA supervised fine-tuning on the next supporter turn, with TRL and PEFT.

:func:`finetune` builds the examples (:mod:`cscprog.finetune.data`: one per supporter turn, loss on the
completion only), loads the base model (:mod:`cscprog.finetune.base`), trains a LoRA adapter with TRL's
``SFTTrainer`` (CUDA and bf16 when a GPU is present, float32 on CPU), saves checkpoints every ``save_steps``
steps, and writes into the output directory:

* ``adapter/``: the PEFT adapter and the tokenizer;
* ``<base>-ft-<id>.gguf``: when the base is a GGUF, the adapter merged into it (:mod:`cscprog.finetune.gguf`),
  which the embedded engine serves (:mod:`cscprog.finetune.serve`);
* ``manifest.json``: the data (fingerprint, counts, skipped examples), the base model, the hyperparameters, the
  package versions, the device, the loss curve's ends and the wall time;
* ``checkpoints/``: the trainer's checkpoints, for ``resume=True`` after an interruption.

A run refuses an output directory that holds another run (other data or settings), so ``--resume`` never mixes
two trainings.

Example:
    ```python
    from cscprog.finetune.train import finetune

    result = finetune(dialogues, Path("ft/run1"), settings=config.finetune, lm=config.lm,
                      taxonomy=config.taxonomy())
    result.manifest["final_loss"], result.merged_gguf
    ```
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cscprog.data import Dialogue
from cscprog.errors import ConfigError
from cscprog.files import atomic_write
from cscprog.finetune.base import BaseModel, resolve_base
from cscprog.finetune.data import TrainingSet, build_training_set, rows_from_examples
from cscprog.finetune.gguf import merge_adapter
from cscprog.framework import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from cscprog.config import FinetuneSettings, LMSettings

__all__ = ["MANIFEST", "TRAIN_INSTALL", "FinetuneResult", "ProgressFn", "finetune", "train_available"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PLAN = "plan.json"
TRAIN_INSTALL = 'pip install "cscprog[train]"'
_PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "gguf", "cscprog")

ProgressFn = Callable[[int, int, float | None], None]
"""``progress(step, total_steps, last_loss)``, called after every optimizer step."""


def train_available() -> bool:
    """True when the ``train`` extra's packages import.

    Example:
        ```python
        if not train_available():
            print('pip install "cscprog[train]"')
        ```
    """
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class FinetuneResult:
    """What :func:`finetune` wrote.

    Attributes:
        out_dir: The output directory.
        adapter_dir: The PEFT adapter.
        merged_gguf: The merged GGUF (None for a Hugging Face base).
        manifest: The manifest's content.
    """

    out_dir: Path
    adapter_dir: Path
    merged_gguf: Path | None
    manifest: dict[str, Any]


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _progress_callback(progress: ProgressFn) -> Any:
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        loss: float | None = None

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
            if logs and "loss" in logs:  # logged after every optimizer step (logging_steps=1)
                self.loss = float(logs["loss"])
                progress(state.global_step, state.max_steps, self.loss)

    return _Report()


def _plan(data: TrainingSet, base: BaseModel, settings: FinetuneSettings) -> dict[str, Any]:
    return {"data_fingerprint": data.fingerprint, "base": base.name,
            "settings": settings.model_dump(mode="json", exclude={"base"})}


def _check_out_dir(out_dir: Path, plan: dict[str, Any], resume: bool) -> Path | None:
    """The checkpoint to resume from (None: start afresh); refuses a directory of another run."""
    plan_file = out_dir / PLAN
    if not plan_file.is_file():
        if out_dir.exists() and any(out_dir.iterdir()):
            raise ConfigError(f"{out_dir} is not empty and holds no fine-tuning run; choose another --output")
        return None
    previous = json.loads(plan_file.read_text(encoding="utf-8"))
    if previous != plan:
        changed = sorted(key for key in plan if previous.get(key) != plan[key])
        raise ConfigError(f"{out_dir} holds a run with other {', '.join(changed)}; choose another --output")
    if not resume:
        raise ConfigError(f"{out_dir} already holds this run; pass --resume to continue it, or choose another "
                          "--output")
    checkpoints = sorted((out_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return checkpoints[-1] if checkpoints else None


def _trainer(base: BaseModel, tokenizer: Any, data: TrainingSet, settings: FinetuneSettings, out_dir: Path,
             progress: ProgressFn | None, max_steps: int | None) -> Any:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = SFTConfig(
        output_dir=str(out_dir / "checkpoints"), max_length=settings.max_length,
        num_train_epochs=settings.epochs, max_steps=max_steps or -1,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation, learning_rate=settings.learning_rate,
        lr_scheduler_type="linear", warmup_steps=0, logging_steps=1, save_strategy="steps",
        save_steps=settings.save_steps, save_total_limit=2, report_to=[], seed=settings.seed,
        data_seed=settings.seed, use_cpu=not cuda, bf16=bf16, completion_only_loss=True, disable_tqdm=True,
        dataloader_num_workers=0, log_level="warning", gradient_checkpointing=cuda,
    )
    model = AutoModelForCausalLM.from_pretrained(str(base.hf_dir),
                                                 dtype=torch.bfloat16 if bf16 else torch.float32)
    lora = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    rows = [{"prompt": row["prompt"], "completion": row["completion"]} for row in data.rows]
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, peft_config=lora)
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    if progress is not None:
        trainer.add_callback(_progress_callback(progress))
    return trainer


def _quiet_libraries() -> None:
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()


def finetune(
    dialogues: Sequence[Dialogue] | None,
    out_dir: Path,
    *,
    settings: FinetuneSettings,
    lm: LMSettings,
    taxonomy: Taxonomy | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    source: str = "<dialogues>",
    max_steps: int | None = None,
    examples: Sequence[Any] | None = None,
) -> FinetuneResult:
    """Train a LoRA adapter on the next supporter turn of ``dialogues`` (see the module docstring).

    Args:
        dialogues: Annotated dialogues (or None when ``examples`` are given).
        out_dir: The output directory (created; must be empty or hold this same run).
        settings: The ``[finetune]`` settings.
        lm: The ``[lm]`` settings (which GGUF ``base = "embedded"`` means).
        taxonomy: The taxonomy of the data (default CSC).
        resume: Continue this run from its last checkpoint.
        progress: Called after every optimizer step with the step, the total and the last loss.
        source: Name of the data, for errors and the manifest.
        max_steps: Stop after this many optimizer steps (default: ``settings.epochs`` epochs).
        examples: Next-turn examples (``history, language, domain, strategy, reply``) instead of dialogues.

    Returns:
        The paths written and the manifest.

    Raises:
        ConfigError: the ``train`` extra is missing, the base model is unusable, or ``out_dir`` holds another run.
        DataError: bad training data (see :func:`cscprog.finetune.data.build_training_set`).

    Example:
        ```python
        finetune(dialogues, Path("ft/run1"), settings=config.finetune, lm=config.lm)
        ```
    """
    if not train_available():
        raise ConfigError(f"fine-tuning needs torch, transformers, peft and trl: {TRAIN_INSTALL}")
    started = time.monotonic()
    _quiet_libraries()
    from transformers import AutoTokenizer

    taxonomy = taxonomy or load_taxonomy("csc")
    base = resolve_base(settings.base, lm)
    tokenizer = AutoTokenizer.from_pretrained(str(base.hf_dir))
    if examples is not None:
        data = rows_from_examples(examples, tokenizer, max_length=settings.max_length, taxonomy=taxonomy,
                                  source=source)
    else:
        data = build_training_set(dialogues or [], tokenizer, max_length=settings.max_length, taxonomy=taxonomy,
                                  source=source)
    if data.skipped:
        logger.warning("%d example(s) longer than %d tokens skipped", len(data.skipped), settings.max_length)
    plan = _plan(data, base, settings)
    checkpoint = _check_out_dir(out_dir, plan, resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / PLAN, json.dumps(plan, indent=2) + "\n")
    trainer = _trainer(base, tokenizer, data, settings, out_dir, progress, max_steps)
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    adapter_dir = out_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    merged = None
    if base.gguf is not None:
        merged = merge_adapter(base.gguf, adapter_dir, out_dir / f"{base.name}-ft-{data.fingerprint[:8]}.gguf",
                               merged_type=settings.merged_type)
    manifest = {
        "kind": "cscprog-finetune",
        "source": source,
        "data": data.summary(),
        "taxonomy": taxonomy.name,
        "base": base.describe(),
        "hyperparameters": settings.model_dump(mode="json"),
        "max_steps": max_steps,
        "device": trainer.args.device.type,
        "bf16": bool(trainer.args.bf16),
        "versions": _versions(),
        "steps": trainer.state.global_step,
        "epochs_done": trainer.state.epoch,
        "resumed_from": checkpoint.name if checkpoint else None,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "mean_train_loss": output.training_loss,
        "loss_curve": losses,
        "wall_time_s": round(time.monotonic() - started, 1),
        "adapter": "adapter",
        "merged_gguf": merged.name if merged else None,
    }
    atomic_write(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return FinetuneResult(out_dir=out_dir, adapter_dir=adapter_dir, merged_gguf=merged, manifest=manifest)
