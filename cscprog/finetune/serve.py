"""Serve a model that ``cscprog finetune`` trained, in-process, for ``evaluate``, ``respond`` and compiled programs.

``--model DIR`` (a fine-tuning output directory) makes the ``responder`` role run on the fine-tuned model:

* base was a GGUF (the embedded model): the merged GGUF in ``DIR`` is served by the embedded llama.cpp engine,
  i.e. the responder's settings become ``model = "local"`` with ``local_model_path`` = that file. Its model
  string is ``local/<file stem>``, and the stem carries the training data's fingerprint, so cache entries of
  two fine-tunes never mix.
* base was a Hugging Face directory: :class:`~cscprog.finetune.engine.TransformersEngine` serves base plus
  adapter, as ``finetuned/<dir name>-<fingerprint>``.

The program is :class:`~cscprog.finetune.program.FinetunedResponder`, which prompts the model in its training
layout.

Example:
    ```python
    from cscprog.finetune.serve import finetuned_runtime, load_finetuned

    model = load_finetuned(Path("ft/run1"))
    runtime = finetuned_runtime(config, model)
    with runtime.activate():
        rows = respond_dialogues(FinetunedResponder(config.taxonomy()), dialogues)
    ```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from cscprog.agents.responder import ROLE
from cscprog.config import LOCAL_MODEL, Config, LMSettings
from cscprog.errors import ConfigError
from cscprog.finetune.engine import AsyncTransformersEngine, TransformersEngine
from cscprog.finetune.program import FinetunedResponder
from cscprog.framework import Taxonomy
from cscprog.lm.backends import build_lm
from cscprog.lm.runtime import LMFactory, Runtime

__all__ = ["FinetunedModel", "finetuned_config", "finetuned_lm", "finetuned_lm_factory", "finetuned_program",
           "finetuned_runtime", "load_finetuned", "FinetunedServing", "serve_finetuned"]

_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FinetunedModel:
    """A fine-tuning output directory, read back.

    Attributes:
        directory: The directory.
        manifest: Its ``manifest.json``.
        gguf: The merged GGUF, or None (Hugging Face base).
        adapter_dir: The PEFT adapter.
        base_dir: The base model's ``transformers`` directory.
    """

    directory: Path
    manifest: dict[str, Any]
    gguf: Path | None
    adapter_dir: Path
    base_dir: Path

    @property
    def name(self) -> str:
        """The model name in DSPy model strings (and so in cache keys)."""
        if self.gguf is not None:
            return self.gguf.stem
        return f"{self.directory.resolve().name}-{self.manifest['data']['fingerprint'][:8]}"

    def summary(self) -> dict[str, Any]:
        """What ``evaluate`` records about the program's model.

        Example:
            ```python
            load_finetuned(Path("ft/run1")).summary()["final_loss"]
            ```
        """
        keep = ("base", "hyperparameters", "steps", "final_loss", "wall_time_s", "device", "versions")
        return {"path": str(self.directory), "model": self.name, "data": {
            key: self.manifest["data"].get(key) for key in ("examples", "fingerprint", "skipped_too_long")},
            **{key: self.manifest.get(key) for key in keep}}


def load_finetuned(directory: Path) -> FinetunedModel:
    """Read a ``cscprog finetune`` output directory.

    Raises:
        ConfigError: no manifest (not a finished run), or its adapter or GGUF is missing.

    Example:
        ```python
        model = load_finetuned(Path("ft/run1"))
        ```
    """
    directory = Path(directory)
    manifest_file = directory / _MANIFEST
    if not manifest_file.is_file():
        raise ConfigError(f"{directory}: not a finished `cscprog finetune` output (no {_MANIFEST}); finish it "
                          "with `cscprog finetune ... --resume`")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{manifest_file}: not a valid manifest ({error})") from None
    if manifest.get("kind") != "cscprog-finetune":
        raise ConfigError(f"{manifest_file}: not a `cscprog finetune` manifest")
    adapter_dir = directory / manifest.get("adapter", "adapter")
    gguf = directory / manifest["merged_gguf"] if manifest.get("merged_gguf") else None
    for needed in [adapter_dir, *([gguf] if gguf else [])]:
        if not needed.exists():
            raise ConfigError(f"{directory}: {needed.name} is missing")
    return FinetunedModel(directory=directory, manifest=manifest, gguf=gguf, adapter_dir=adapter_dir,
                          base_dir=Path(manifest["base"]["hf_dir"]))


def finetuned_lm(model: FinetunedModel, settings: LMSettings, cache_dir: Path) -> dspy.LM:
    """A ``dspy.LM`` on the fine-tuned model (llama.cpp for a merged GGUF, else transformers).

    Args:
        model: The fine-tuned model.
        settings: The responder's settings (temperature, max_tokens, seed, context and threads are kept).
        cache_dir: The cscprog cache directory.

    Example:
        ```python
        lm = finetuned_lm(load_finetuned(Path("ft/run1")), config.lm_for("responder"), config.cache.path)
        ```
    """
    if model.gguf is not None:
        return build_lm(_gguf_settings(model, settings), cache_dir=cache_dir)
    engine = TransformersEngine(model.base_dir, model.adapter_dir, default_max_tokens=settings.max_tokens or 256)
    kwargs: dict[str, Any] = {"temperature": settings.temperature or 0.0, "max_tokens": settings.max_tokens or 256}
    return dspy.LM(f"finetuned/{model.name}", engine=engine, async_engine=AsyncTransformersEngine(engine), **kwargs)


def _gguf_settings(model: FinetunedModel, settings: LMSettings) -> LMSettings:
    return settings.model_copy(update={"model": LOCAL_MODEL, "local_model_path": str(model.gguf)})


def finetuned_config(config: Config, model: FinetunedModel) -> Config:
    """``config`` with the ``responder`` role on the merged GGUF of ``model`` (other roles unchanged).

    A model without a merged GGUF (Hugging Face base) keeps ``config``: serve it with :func:`finetuned_lm_factory`.

    Example:
        ```python
        Runtime(finetuned_config(config, load_finetuned(Path("ft/run1"))))
        ```
    """
    if model.gguf is None:
        return config
    roles = {name: dict(value) for name, value in config.roles.items()}
    responder = _gguf_settings(model, config.lm_for(ROLE))
    roles[ROLE] = {**roles.get(ROLE, {}), **responder.model_dump(include={"model", "local_model_path"})}
    return config.model_copy(update={"roles": roles})


def finetuned_lm_factory(config: Config, model: FinetunedModel) -> LMFactory | None:
    """The runtime's LM factory serving ``model`` through transformers as the ``responder`` (None for a GGUF).

    Example:
        ```python
        Runtime(config, lm_factory=finetuned_lm_factory(config, model))
        ```
    """
    if model.gguf is not None:
        return None
    built: dict[str, dspy.LM] = {}

    def factory(role: str, settings: LMSettings) -> dspy.LM:
        if role == ROLE:
            return finetuned_lm(model, settings, config.cache.path)
        key = settings.model_dump_json()
        if key not in built:
            built[key] = build_lm(settings, cache_dir=config.cache.path)
        return built[key]

    return factory


def finetuned_runtime(config: Config, model: FinetunedModel) -> Runtime:
    """A :class:`Runtime` whose ``responder`` role is the fine-tuned model; other roles unchanged.

    Example:
        ```python
        runtime = finetuned_runtime(config, load_finetuned(Path("ft/run1")))
        ```
    """
    return Runtime(finetuned_config(config, model), lm_factory=finetuned_lm_factory(config, model))


def finetuned_program(model: FinetunedModel, taxonomy: Taxonomy) -> FinetunedResponder:
    """The response program for ``model`` (its training taxonomy must be ``taxonomy``).

    Raises:
        ConfigError: the model was trained on another taxonomy.

    Example:
        ```python
        program = finetuned_program(model, config.taxonomy())
        ```
    """
    trained = model.manifest.get("taxonomy")
    if trained and trained != taxonomy.name:
        raise ConfigError(f"{model.directory} was trained on the {trained} taxonomy, not {taxonomy.name}")
    return FinetunedResponder(taxonomy)


@dataclass(frozen=True)
class FinetunedServing:
    """What a command needs to run a fine-tuned model as its responder.

    Attributes:
        config: The configuration with the ``responder`` role on the model (a merged GGUF), or unchanged.
        lm_factory: The runtime's LM factory (a Hugging Face base, served by transformers), or None.
        program: The response program, prompted in the training layout.
        summary: What the run's manifest records about the model.
    """

    config: Config
    lm_factory: LMFactory | None
    program: FinetunedResponder
    summary: dict[str, Any]


def serve_finetuned(directory: Path, config: Config, taxonomy: Taxonomy) -> FinetunedServing:
    """Everything ``evaluate --model DIR`` and ``respond --model DIR`` need (see the module docstring).

    Raises:
        ConfigError: not a finished fine-tuning output, or trained on another taxonomy.

    Example:
        ```python
        served = serve_finetuned(Path("ft/run1"), config, config.taxonomy())
        runtime = Runtime(served.config, lm_factory=served.lm_factory)
        ```
    """
    model = load_finetuned(directory)
    return FinetunedServing(config=finetuned_config(config, model), lm_factory=finetuned_lm_factory(config, model),
                            program=finetuned_program(model, taxonomy), summary={"finetuned": model.summary()})
