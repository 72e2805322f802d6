"""The embedded local model: a DSPy 3.4 engine pair over llama-cpp-python (``model = "local"``).

:func:`build_local_lm` resolves the GGUF weights (:mod:`cscprog.lm.local.weights`) and returns an ordinary
``dspy.LM`` whose engine runs llama.cpp in-process, so DSPy keeps owning caching, history, callbacks and
``n`` fan-out. The model string is ``local/<model name>``: cache entries are per model file.

Structured output: the engine declares ``response_format`` support, so :class:`dspy.JSONAdapter` sends a
strict JSON schema and the engine turns it into a llama.cpp grammar; the model then cannot produce text the
adapter fails to parse (``Literal`` fields become enums, ``bool`` fields ``true``/``false``). Tokens are chosen
by :class:`cscprog.lm.local.sampling.SequenceSampler`, which checks the grammar on the likeliest tokens first
instead of the whole vocabulary, and applies the repetition penalty (``local_repeat_penalty``). A structured
output that runs out of ``max_tokens`` comes back with ``finish_reason="length"``; the cache router stores it
and raises :class:`cscprog.cache.truncation.OutputTruncated` instead of handing half a JSON object to the
parser (on every replay too, so a warm run makes no call again). An LM built with ``cache=False`` never reaches
the router, so its engine raises the same error itself. :func:`recommended_adapter` returns a JSONAdapter: with
ChatAdapter's free-text ``[[ ## field ## ]]`` format small models often break the format, and DSPy then pays a
second call.

Concurrency: calls from several threads are decoded side by side in one llama.cpp context, up to
``parallel`` at once (:mod:`cscprog.lm.local.batch`; ``[lm] local_parallel``), so a runner with concurrency > 1
finishes sooner; a call's text does not depend on what is decoded beside it.

Determinism: each call samples with its own seed (the request's ``seed``, else the engine's default), and
each prompt is evaluated the same way whatever ran before it (:class:`cscprog.lm.local.model.SharedModel` keeps
prefix states that make this fast), so the same request gives the same text. One consequence: DSPy's ``n > 1`` and
``rollout_id`` (BestOfN, Refine) send identical requests, which yield identical candidates here; vary
``seed`` with the rollout (``lm.copy(rollout_id=k, seed=k, temperature=1.0)``) to get different samples.

The pieces: :mod:`cscprog.lm.local.model` (the loaded model shared per file, its prefix states and grammars),
:mod:`cscprog.lm.local.llama` (importing llama.cpp; no weight repacking on AMX machines),
:mod:`cscprog.lm.local.batch` (batched decoding of concurrent calls), :mod:`cscprog.lm.local.threads` (how many
threads llama.cpp gets), :mod:`cscprog.lm.local.messages` (a request as chat messages and a response format) and
:mod:`cscprog.lm.local.weights`.

Example:
    ```python
    import dspy
    from cscprog.config import LMSettings
    from cscprog.lm.local.engine import build_local_lm, recommended_adapter

    lm = build_local_lm(LMSettings(local_model_size="0.5b"))
    with dspy.context(lm=lm, adapter=recommended_adapter()):
        print(dspy.Predict("question -> answer")(question="Capital of France?").answer)
    ```
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy
from dspy.lm15 import (
    ContextLengthError,
    InvalidRequestError,
    Message,
    Request,
    Response,
    TextPart,
    Usage,
)

from cscprog.cache.router import install_router
from cscprog.cache.truncation import OutputTruncated
from cscprog.errors import ConfigError
from cscprog.lm.local.llama import LLAMA_MISSING, llama_available
from cscprog.lm.local.messages import chat_messages, json_schema_of
from cscprog.lm.local.model import (
    DEFAULT_PREFIX_CACHE_BYTES,
    DEFAULT_SEED,
    DEFAULT_SEQUENCES,
    SharedModel,
    shared_model,
)
from cscprog.lm.local.sampling import SamplingOptions, SequenceSampler
from cscprog.lm.local.weights import resolve_model_file

if TYPE_CHECKING:
    from cscprog.config import LMSettings

# `import dspy` does not import LiteLLM and the custom-engine path never does; if anything later imports it,
# it must read its bundled price list instead of fetching one from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

logger = logging.getLogger(__name__)

PROVIDER = "local"
"""The provider prefix of the model string: ``local/<model name>``."""
DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.0
"""Greedy decoding unless a role asks otherwise: small models follow formats best at temperature 0."""
DEFAULT_REPEAT_PENALTY = 1.1
"""llama.cpp's customary repetition penalty over the last 64 generated tokens: small models loop without one."""
SUPPORTED_PARAMS = frozenset({"temperature", "max_tokens", "seed", "stop", "top_p", "top_k", "response_format"})


class LlamaEngine:
    """A DSPy engine (``complete(Request) -> Response``) running a GGUF model in-process with llama.cpp.

    Engines over the same file share one loaded model (see :func:`cscprog.lm.local.model.unload_models`); calls
    from several threads are decoded together, up to ``parallel`` at once. The model loads on the first call.

    Args:
        model_path: The GGUF file.
        n_ctx: Context window in tokens (prompt plus output).
        n_threads: CPU threads (default: :func:`~cscprog.lm.local.threads.default_threads` when the model loads).
        default_max_tokens: Output budget when the request names none.
        default_temperature: Temperature when the request names none.
        default_seed: Sampling seed when the request names none.
        extra_buffers: Let llama.cpp repack weights into extra buffer types (faster prompt processing);
            None: yes unless the CPU has AMX, whose kernels crash on some machines (see ``default_model_params``).
        prefix_cache_bytes: Memory for saved prompt-prefix states (0 disables them); shared per model file.
        repeat_penalty: Repetition penalty of every completion (1.0: none).
        parallel: Calls decoded side by side (slots in the shared context; each has ``n_ctx`` tokens).
        store_truncated: Return a structured output cut off by its budget with ``finish_reason="length"``, for the
            cache router to store and raise (True); raise :class:`OutputTruncated` here (False: an uncached LM).

    Example:
        ```python
        engine = LlamaEngine(Path("model.gguf"))
        lm = dspy.LM("local/model", engine=engine, async_engine=AsyncLlamaEngine(engine))
        ```
    """

    supports_function_calling = False
    supports_reasoning = False
    supports_response_schema = True
    supported_params = SUPPORTED_PARAMS

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        default_temperature: float = DEFAULT_TEMPERATURE,
        default_seed: int = DEFAULT_SEED,
        extra_buffers: bool | None = None,
        prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES,
        repeat_penalty: float = DEFAULT_REPEAT_PENALTY,
        parallel: int = DEFAULT_SEQUENCES,
        store_truncated: bool = True,
    ) -> None:
        self.store_truncated = store_truncated
        if store_truncated:
            install_router()  # the router is what turns a stored cut-off response into OutputTruncated
        self.repeat_penalty = repeat_penalty
        self.parallel = parallel
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.default_max_tokens = default_max_tokens
        self.default_temperature = default_temperature
        self.default_seed = default_seed
        self.extra_buffers = extra_buffers
        self.prefix_cache_bytes = prefix_cache_bytes
        self._model = shared_model(
            self.model_path, self.n_ctx, self.n_threads, extra_buffers, prefix_cache_bytes, parallel
        )

    @property
    def load_seconds(self) -> float | None:
        """How long loading the shared model took (None before the first call)."""
        return self._model.load_seconds

    def shared_model(self) -> SharedModel:
        """The loaded-model handle this engine uses (its lock gives exclusive use of the model)."""
        return self._model

    def stats(self) -> dict[str, Any]:
        """Counters of the shared model: load time, prefix-state cache hits, misses, entries and bytes, and the
        decoder's (prompt tokens and seconds, batched steps, tokens, decode and sampling seconds, most running).

        Example:
            ```python
            engine.stats()  # {'load_seconds': 1.1, 'prefix_hits': 9, 'prefix_misses': 3, 'steps': 40, ...}
            ```
        """
        model = self._model  # read without the lock: a snapshot, never blocked behind a running generation
        return {
            **vars(model.decoder.stats),
            "sequences": model.sequences,
            "load_seconds": model.load_seconds,
            "threads": model.threads,
            "prefix_hits": model.prefix_hits,
            "prefix_misses": model.prefix_misses,
            "prefix_entries": len(model._prefixes),
            "prefix_bytes": model._prefix_bytes,
        }

    def complete(self, request: Request) -> Response:
        """Run one chat completion with the model's own chat template.

        Raises:
            ContextLengthError: the prompt does not fit in ``n_ctx``.
            UnsupportedFeatureError: tools, images or an unknown ``response_format``.
        """
        messages = chat_messages(request)
        config = request.config
        wants_json, schema = json_schema_of(config.response_format)
        temperature = self.default_temperature if config.temperature is None else config.temperature
        options: dict[str, Any] = {
            "temperature": temperature,
            "max_tokens": config.max_tokens or self.default_max_tokens,
            "seed": self.default_seed if config.seed is None else config.seed,
            "stop": list(config.stop),
        }
        if config.top_p is not None:
            options["top_p"] = config.top_p
        if config.top_k is not None:
            options["top_k"] = config.top_k
        model = self._model
        llama = model.ensure_loaded()
        grammar = model.grammar(schema) if wants_json else None
        tokens, prefix, template_stop = model.render(messages)
        if len(tokens) >= model.n_ctx:
            raise ContextLengthError(
                f"the prompt has {len(tokens)} tokens, the context window {model.n_ctx} (raise lm.local_context)",
                provider=PROVIDER,
            )
        options["stop"] = template_stop + options["stop"]
        options["max_tokens"] = min(options["max_tokens"], model.n_ctx - len(tokens))
        try:
            text, used, finish = model.decoder.generate(
                tokens, prefix, SequenceSampler(llama, grammar, self._sampling(options))
            )
        except ValueError as error:
            raise InvalidRequestError(str(error), provider=PROVIDER) from error
        if finish == "length" and wants_json and not self.store_truncated:
            raise OutputTruncated(
                f"the structured output reached max_tokens={options['max_tokens']} before it was complete",
                max_tokens=options["max_tokens"], model=request.model,
            )
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant([TextPart(text)]),
            finish_reason=finish,
            usage=Usage(input_tokens=len(tokens), output_tokens=used),
        )

    def _sampling(self, options: dict[str, Any]) -> SamplingOptions:
        """The request's options as :class:`SamplingOptions` (top-k 40 and top-p 0.95 unless the request says)."""
        return SamplingOptions(
            max_tokens=options["max_tokens"],
            temperature=options["temperature"],
            seed=options["seed"],
            top_k=options.get("top_k") or 40,
            top_p=options.get("top_p") or 0.95,
            repeat_penalty=self.repeat_penalty,
            stop=tuple(options["stop"]),
        )

    def stream(self, request: Request) -> Any:
        """Streaming is not implemented for the local model."""
        raise NotImplementedError("the local model does not stream")

    def close(self) -> None:
        """Nothing to release per engine: the loaded model is shared (see :func:`~.model.unload_models`)."""

    def dump_state(self) -> dict[str, Any]:
        """Settings needed to rebuild the engine when DSPy saves an LM (weights are not saved)."""
        return {
            "model_path": str(self.model_path),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "default_max_tokens": self.default_max_tokens,
            "default_temperature": self.default_temperature,
            "default_seed": self.default_seed,
            "extra_buffers": self.extra_buffers,
            "prefix_cache_bytes": self.prefix_cache_bytes,
            "repeat_penalty": self.repeat_penalty,
            "parallel": self.parallel,
            "store_truncated": self.store_truncated,
        }

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> LlamaEngine:
        """Rebuild an engine from :meth:`dump_state`."""
        return cls(Path(state.pop("model_path")), **state)


class AsyncLlamaEngine:
    """The async counterpart of :class:`LlamaEngine`: runs its calls in a worker thread.

    Example:
        ```python
        engine = LlamaEngine(path)
        lm = dspy.LM("local/x", engine=engine, async_engine=AsyncLlamaEngine(engine))
        ```
    """

    supports_function_calling = False
    supports_reasoning = False
    supports_response_schema = True
    supported_params = SUPPORTED_PARAMS

    def __init__(self, engine: LlamaEngine) -> None:
        self.engine = engine

    async def complete(self, request: Request) -> Response:
        """Run :meth:`LlamaEngine.complete` off the event loop."""
        return await asyncio.to_thread(self.engine.complete, request)

    def stream(self, request: Request) -> Any:
        """Streaming is not implemented for the local model."""
        raise NotImplementedError("the local model does not stream")

    async def aclose(self) -> None:
        """Close the wrapped engine (the shared model stays loaded)."""
        self.engine.close()


def recommended_adapter() -> dspy.Adapter:
    """The adapter to use with the local model: JSON with schema-constrained decoding.

    Example:
        ```python
        with dspy.context(lm=lm, adapter=recommended_adapter()):
            ...
        ```
    """
    return dspy.JSONAdapter()


def build_local_lm(settings: LMSettings, **lm_kwargs: Any) -> dspy.LM:
    """A ``dspy.LM`` on the embedded model, with the weights resolved and checked.

    Args:
        settings: The role's settings (``model = "local"``): ``local_model_path`` or ``local_model_size``,
            ``local_context``, ``local_threads``, ``local_parallel``, ``temperature``, ``max_tokens``, ``seed``;
            known models are assembled once into ``models_dir``.
        **lm_kwargs: Extra ``dspy.LM`` arguments (``cache=False``, ``callbacks=[...]``, generation kwargs).

    Returns:
        ``dspy.LM("local/<model name>", engine=..., async_engine=...)``; the model loads on the first call.

    Raises:
        ConfigError: llama-cpp-python is not installed, or the weights are missing, damaged or not GGUF.

    Example:
        ```python
        lm = build_local_lm(config.lm_for("customer"))
        ```
    """
    if not llama_available():
        raise ConfigError(LLAMA_MISSING)
    path, name = resolve_model_file(settings.local_model_path, settings.local_model_size, settings.models_path)
    max_tokens = settings.max_tokens or DEFAULT_MAX_TOKENS
    engine = LlamaEngine(
        path,
        n_ctx=settings.local_context,
        n_threads=settings.local_threads,
        default_max_tokens=max_tokens,
        default_seed=DEFAULT_SEED if settings.seed is None else settings.seed,
        repeat_penalty=settings.local_repeat_penalty,
        parallel=settings.local_parallel,
        # a cut-off structured output is stored and raised by the cache router; with no cache it must raise here
        store_truncated=bool(lm_kwargs.get("cache", True)),
    )
    kwargs: dict[str, Any] = {
        "temperature": DEFAULT_TEMPERATURE if settings.temperature is None else settings.temperature,
        "max_tokens": max_tokens,
    }
    if settings.seed is not None:
        kwargs["seed"] = settings.seed
    kwargs.update(lm_kwargs)
    return dspy.LM(f"{PROVIDER}/{name}", engine=engine, async_engine=AsyncLlamaEngine(engine), **kwargs)
