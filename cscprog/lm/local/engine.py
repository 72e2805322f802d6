"""The embedded local model: a DSPy 3.4 engine pair over llama-cpp-python (``model = "local"``).

:func:`build_local_lm` resolves the GGUF weights (:mod:`cscprog.lm.local.weights`) and returns an ordinary
``dspy.LM`` whose engine runs llama.cpp in-process, so DSPy keeps owning caching, history, callbacks and
``n`` fan-out. The model string is ``local/<model name>``: cache entries are per model file.

Structured output: the engine declares ``response_format`` support, so :class:`dspy.JSONAdapter` sends a
strict JSON schema and the engine turns it into a llama.cpp grammar; the model then cannot produce text the
adapter fails to parse, short of running out of ``max_tokens`` (``Literal`` fields become enums, ``bool``
fields ``true``/``false``). That is why :func:`recommended_adapter` returns a JSONAdapter. Measured with
ChatAdapter's free-text ``[[ ## field ## ]]`` format: the 1.5B model wrote ``[[ ## strategy ## ]] = Greeting``
in 10 of 10 calls (unparseable, so DSPy paid a second, JSON call every time) and the 0.5B model dropped the
``finished: bool`` field in 5 of 10; with the JSONAdapter all 60 calls parsed on the first try.

Determinism: each call samples with its own seed (the request's ``seed``, else the engine's default), and
each prompt is evaluated the same way whatever ran before it (see :class:`_SharedModel` for the prefix-state
cache that keeps this fast), so the same request gives the same text. One consequence: DSPy's ``n > 1`` and
``rollout_id`` (BestOfN, Refine) send identical requests, which yield identical candidates here; vary
``seed`` with the rollout (``lm.copy(rollout_id=k, seed=k, temperature=1.0)``) to get different samples.

Speed: llama.cpp's AMX kernels crash on some CPUs, so on AMX machines weight repacking is turned off
(:func:`_default_model_params`). Unless ``local_threads`` says otherwise, llama.cpp gets every core that no other
work keeps busy when the model is created (:func:`default_threads`): its OpenMP workers spin, and one
descheduled worker stalls every step.

Example:
    ```python
    import dspy
    from pathlib import Path
    from cscprog.config import LMSettings
    from cscprog.lm.local.engine import build_local_lm, recommended_adapter

    lm = build_local_lm(LMSettings(local_model_size="0.5b"), Path("~/.cache/cscprog").expanduser())
    with dspy.context(lm=lm, adapter=recommended_adapter()):
        print(dspy.Predict("question -> answer")(question="Capital of France?").answer)
    ```
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib.util
import json
import logging
import os
import threading
import time
from collections import OrderedDict
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
    UnsupportedFeatureError,
    Usage,
)

from cscprog.errors import ConfigError
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
DEFAULT_SEED = 0
"""The sampling seed of a call whose request carries none (never a process-wide RNG state)."""
SUPPORTED_PARAMS = frozenset({"temperature", "max_tokens", "seed", "stop", "top_p", "top_k", "response_format"})
LLAMA_MISSING = (
    'model = "local" needs the extra: pip install "cscprog[local]" '
    "(the first install compiles llama.cpp, about 10 minutes)"
)
DEFAULT_PREFIX_CACHE_BYTES = 256 * 1024 * 1024
"""Saved prompt-prefix KV states per model (about 12 KB a token for 0.5B, 28 KB for 1.5B)."""
_GRAMMAR_CACHE_SIZE = 32


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise ConfigError(LLAMA_MISSING) from error
    return llama_cpp


def llama_available() -> bool:
    """True when llama-cpp-python is installed (without importing it).

    Example:
        ```python
        if not llama_available():
            print('pip install "cscprog[local]"')
        ```
    """
    return importlib.util.find_spec("llama_cpp") is not None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cpu_times(stat: Path) -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``; None when unreadable."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(v) for v in fields[1:9]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(window: float = 0.25, *, stat: Path = Path("/proc/stat")) -> float | None:
    """How many cores other work keeps busy, measured over ``window`` seconds while this thread sleeps.

    Returns None where ``/proc/stat`` is not available (not Linux). This process's own CPU time in the window
    (its other threads) is not counted, so a test runner or progress thread does not look like a competitor.

    Example:
        ```python
        busy_cores()  # about 0.0 on an idle machine, 1.0 while another process runs flat out
        ```
    """
    before, own_before = _cpu_times(stat), time.process_time()
    if before is None:
        return None
    time.sleep(window)
    after, own_after = _cpu_times(stat), time.process_time()
    if after is None or after[1] <= before[1]:
        return None
    cores = os.cpu_count() or 1
    busy_fraction = (after[0] - before[0]) / (after[1] - before[1])
    own = (own_after - own_before) / window
    return max(0.0, busy_fraction * cores - own)


def default_threads(busy: float | None = None) -> int:
    """llama.cpp threads when ``local_threads`` is unset: the usable cores that no other work keeps busy.

    llama.cpp's OpenMP workers spin at each step; when one is descheduled the others wait, so a thread on a core
    that something else uses slows every step. Measured on a 2-core VM (0.5B, 841 prompt + 96 output tokens):
    idle machine, 1 thread 24.1 s a call, 2 threads 13.4 s; busy machine (1.5B, ~600 prompt tokens), 2 threads
    130 s a call, 1 thread 33 s. So: every usable core minus those busy at load time (:func:`busy_cores`,
    rounded), at least one; without that measurement, every core but one.

    Args:
        busy: Cores busy with other work (default: measured now).

    Example:
        ```python
        default_threads(busy=0.0)  # every core
        default_threads(busy=1.2)  # every core but one, at least one
        ```
    """
    cores = _usable_cores()
    if busy is None:
        busy = busy_cores()
    if busy is None:
        return max(1, cores - 1)
    return max(1, min(cores, cores - int(busy + 0.5)))


def _cpu_has_amx(llama_cpp: Any) -> bool:
    """True when llama.cpp was built with, and runs on, Intel AMX."""
    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode("utf-8", "replace")


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _default_model_params(llama_cpp: Any, *, use_extra_bufts: bool) -> Any:
    """Load models with llama.cpp's ``use_extra_bufts`` set as given.

    llama-cpp-python 0.3 has no argument for it, so the defaults function it reads is wrapped for the
    duration of one load. Extra buffer types repack the weights (AMX, AVX2/NEON layouts); the AMX one
    crashes the first matmul on some machines and VMs (ggml-org/llama.cpp#20824: a GP fault on ``ldtilecfg``,
    reproduced on the project's 2-core development VM), so it is turned off whenever the CPU reports AMX.
    """
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params
    fields = {name for name, _ in getattr(type(original()), "_fields_", ())}
    if use_extra_bufts or "use_extra_bufts" not in fields:
        yield
        return

    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = use_extra_bufts
        return params

    with _PARAMS_LOCK:
        module.llama_model_default_params = defaults
        try:
            yield
        finally:
            module.llama_model_default_params = original


class _SharedModel:
    """One loaded ``llama_cpp.Llama``, the lock that serializes every use of it (llama is not thread safe), and
    its caches: compiled grammars, and KV states of prompt prefixes.

    Prefix states make repeated calls of one DSPy signature cheap without making outputs depend on call order.
    A prompt is always evaluated in two fixed parts: the prefix (every message but the last: the signature's
    system message and demos, identical from call to call) and the rest. The KV state after the prefix is
    saved; a later prompt with the same prefix restores it instead of recomputing it. Restored or recomputed,
    the state is bit-for-bit the same and the rest is evaluated the same way, so the output is too.
    """

    def __init__(
        self, path: Path, n_ctx: int, n_threads: int | None, extra_buffers: bool | None, prefix_cache_bytes: int
    ) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.threads: int | None = None  # resolved at load (None requested: default_threads() then)
        self.extra_buffers = extra_buffers
        self.prefix_cache_bytes = prefix_cache_bytes
        self.lock = threading.Lock()
        self.llama: Any = None
        self.load_seconds: float | None = None
        self.prefix_hits = 0
        self.prefix_misses = 0
        self._full_prompt: Any = None
        self._head_prompt: Any = None
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._prefix_bytes = 0

    def ensure_loaded(self) -> Any:
        """Load the model on first use; the caller holds ``self.lock``."""
        if self.llama is not None:
            return self.llama
        llama_cpp = _import_llama()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = self.n_threads or default_threads()
        started = time.perf_counter()
        extra_buffers = self.extra_buffers
        if extra_buffers is None:
            extra_buffers = not _cpu_has_amx(llama_cpp)
        with _default_model_params(llama_cpp, use_extra_bufts=extra_buffers):
            llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=DEFAULT_SEED,
                verbose=False,
            )
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            llama.close()
            raise ConfigError(f"{self.path}: the GGUF file has no chat template (tokenizer.chat_template)")
        eos, bos = llama.token_eos(), llama.token_bos()
        tokens = {
            "eos_token": llama.detokenize([eos], special=True).decode("utf-8", "replace") if eos != -1 else "",
            "bos_token": llama.detokenize([bos], special=True).decode("utf-8", "replace") if bos != -1 else "",
        }
        self._full_prompt = Jinja2ChatFormatter(template, **tokens, stop_token_ids=[eos])
        self._head_prompt = Jinja2ChatFormatter(template, **tokens, add_generation_prompt=False)
        self.llama = llama
        self.threads = threads
        self.load_seconds = time.perf_counter() - started
        logger.info(
            "loaded %s in %.1f s (n_ctx=%d, threads=%d, extra buffers %s)",
            self.path,
            self.load_seconds,
            self.n_ctx,
            threads,
            "on" if extra_buffers else "off",
        )
        return llama

    def grammar(self, schema: dict[str, Any] | None) -> Any:
        """A llama.cpp grammar for a JSON schema (None: any JSON value); small LRU, the caller holds the lock."""
        key = json.dumps(schema, sort_keys=True) if schema is not None else ""
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

            if schema is None:
                grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            else:
                grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            self._grammars[key] = grammar
            while len(self._grammars) > _GRAMMAR_CACHE_SIZE:
                self._grammars.popitem(last=False)
        else:
            self._grammars.move_to_end(key)
        return grammar

    def render(self, messages: list[dict[str, str]]) -> tuple[list[int], int, list[str]]:
        """Tokens of the chat prompt, how many of them form the cacheable prefix, and the template's stop strings."""
        llama = self.llama
        full = self._full_prompt(messages=messages)
        tokens = llama.tokenize(full.prompt.encode("utf-8"), add_bos=not full.added_special, special=True)
        stop = [] if full.stop is None else [full.stop] if isinstance(full.stop, str) else list(full.stop)
        if len(messages) < 2 or not self.prefix_cache_bytes:
            return tokens, 0, stop
        head = self._head_prompt(messages=messages[:-1])
        head_tokens = llama.tokenize(head.prompt.encode("utf-8"), add_bos=not head.added_special, special=True)
        if len(head_tokens) >= len(tokens) or tokens[: len(head_tokens)] != head_tokens:
            return tokens, 0, stop  # the template does not render the head as a prefix: no caching
        return tokens, len(head_tokens), stop

    def start(self, prefix: list[int]) -> None:
        """Put exactly ``prefix`` in the KV cache, restoring a saved state or evaluating and saving it."""
        import llama_cpp

        llama = self.llama
        llama.reset()
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llama.ctx), -1, 0, -1)
        if not prefix:
            return
        key = tuple(prefix)
        state = self._prefixes.get(key)
        if state is not None:
            self._prefixes.move_to_end(key)
            llama_cpp.llama_state_seq_set_data(llama.ctx, state, len(state), 0)
            llama.input_ids[: len(prefix)] = prefix
            llama.n_tokens = len(prefix)
            self.prefix_hits += 1
            return
        self.prefix_misses += 1
        llama.eval(prefix)
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        if size > self.prefix_cache_bytes:
            return
        state = (ctypes.c_uint8 * size)()
        llama_cpp.llama_state_seq_get_data(llama.ctx, state, size, 0)
        self._prefixes[key] = state
        self._prefix_bytes += size
        while self._prefix_bytes > self.prefix_cache_bytes:
            _, dropped = self._prefixes.popitem(last=False)
            self._prefix_bytes -= len(dropped)

    def close(self) -> None:
        with self.lock:
            if self.llama is not None:
                self.llama.close()
                self.llama = None
            self._grammars.clear()
            self._prefixes.clear()
            self._prefix_bytes = 0


# A process-wide pool of loaded models, keyed by resolved file path. Module-level state is deliberate here:
# a model costs hundreds of MB and seconds to load, every role (and every dspy.LM copy DSPy makes) must share
# one instance, and llama.cpp contexts cannot be used from two threads at once. The pool is explicit (this
# dict and its lock), small (one entry per GGUF file) and emptied by unload_models().
_MODELS: dict[Path, _SharedModel] = {}
_MODELS_LOCK = threading.Lock()


def _shared_model(
    path: Path, n_ctx: int, n_threads: int | None, extra_buffers: bool | None, prefix_cache_bytes: int
) -> _SharedModel:
    key = Path(path).resolve()
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = _SharedModel(key, n_ctx, n_threads, extra_buffers, prefix_cache_bytes)
        elif (model.n_ctx, model.n_threads) != (n_ctx, n_threads):
            logger.warning(
                "%s is already in use with n_ctx=%d, threads=%s; ignoring n_ctx=%d, threads=%s",
                key,
                model.n_ctx,
                model.n_threads,
                n_ctx,
                n_threads,
            )
        return model


def unload_models() -> None:
    """Free every loaded local model (they load again lazily on the next call).

    Example:
        ```python
        unload_models()  # e.g. at the end of a long-running service, or between tests
        ```
    """
    with _MODELS_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    for model in models:
        model.close()


# Close loaded models before the interpreter tears down llama_cpp's module globals: a Llama object first freed
# by garbage collection at exit finds its C bindings already gone and prints a traceback per model.
atexit.register(unload_models)


def _text_of(parts: Any) -> str:
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    texts = []
    for part in parts:
        if not isinstance(part, TextPart):
            raise UnsupportedFeatureError(f"the local model reads text only, got a {type(part).__name__}")
        texts.append(part.text)
    return "".join(texts)


def _chat_messages(request: Request) -> list[dict[str, str]]:
    if request.tools:
        raise UnsupportedFeatureError("the local model has no native tool calling; use a text-based adapter")
    messages = []
    system = _text_of(request.system)
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role == "tool":
            raise UnsupportedFeatureError("the local model has no native tool calling (got a tool message)")
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": _text_of(message.parts)})
    return messages


def json_schema_of(response_format: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
    """Read a ``response_format``: ``(wants_json, schema)``.

    Accepts DSPy's canonical ``{"type": "json_schema", "schema": ...}``, OpenAI's nested
    ``{"type": "json_schema", "json_schema": {"schema": ...}}`` and ``{"type": "json_object"[, "schema": ...]}``.

    Example:
        ```python
        json_schema_of({"type": "json_object"})  # (True, None): any JSON object
        ```
    """
    if not response_format:
        return False, None
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = response_format.get("schema")
        if schema is None and isinstance(response_format.get("json_schema"), dict):
            schema = response_format["json_schema"].get("schema")
        return True, schema
    if kind == "json_object":
        return True, response_format.get("schema")
    if kind in (None, "text"):
        return False, None
    raise UnsupportedFeatureError(f"the local model does not support response_format type {kind!r}")


class LlamaEngine:
    """A DSPy engine (``complete(Request) -> Response``) running a GGUF model in-process with llama.cpp.

    Engines over the same file share one loaded model (see :func:`unload_models`); calls are serialized by
    the model's lock. The model loads on the first call, not here.

    Args:
        model_path: The GGUF file.
        n_ctx: Context window in tokens (prompt plus output).
        n_threads: CPU threads (default: :func:`default_threads`, measured when the model loads).
        default_max_tokens: Output budget when the request names none.
        default_temperature: Temperature when the request names none.
        default_seed: Sampling seed when the request names none.
        extra_buffers: Let llama.cpp repack weights into extra buffer types (faster prompt processing);
            None: yes unless the CPU has AMX, whose kernels crash on some machines (see ``_default_model_params``).
        prefix_cache_bytes: Memory for saved prompt-prefix states (0 disables them); shared per model file.

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
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.default_max_tokens = default_max_tokens
        self.default_temperature = default_temperature
        self.default_seed = default_seed
        self.extra_buffers = extra_buffers
        self.prefix_cache_bytes = prefix_cache_bytes
        self._model = _shared_model(self.model_path, self.n_ctx, self.n_threads, extra_buffers, prefix_cache_bytes)

    @property
    def load_seconds(self) -> float | None:
        """How long loading the shared model took (None before the first call)."""
        return self._model.load_seconds

    def stats(self) -> dict[str, Any]:
        """Counters of the shared model: load time and prefix-state cache hits, misses, entries and bytes.

        Example:
            ```python
            engine.stats()  # {'load_seconds': 1.1, 'prefix_hits': 9, 'prefix_misses': 3, ...}
            ```
        """
        model = self._model  # read without the lock: a snapshot, never blocked behind a running generation
        return {
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
        messages = _chat_messages(request)
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
        with model.lock:
            llama = model.ensure_loaded()
            if wants_json:
                options["grammar"] = model.grammar(schema)
            tokens, prefix, template_stop = model.render(messages)
            if len(tokens) >= model.n_ctx:
                raise ContextLengthError(
                    f"the prompt has {len(tokens)} tokens, the context window {model.n_ctx} (raise lm.local_context)",
                    provider=PROVIDER,
                )
            options["stop"] = template_stop + options["stop"]
            try:
                model.start(tokens[:prefix])
                result = llama.create_completion(prompt=tokens, **options)
            except ValueError as error:
                raise InvalidRequestError(str(error), provider=PROVIDER) from error
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        return Response(
            id=result.get("id"),
            model=request.model,
            message=Message.assistant([TextPart(choice.get("text") or "")]),
            finish_reason=finish if finish in ("stop", "length") else "stop",
            usage=Usage(input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens")),
        )

    def stream(self, request: Request) -> Any:
        """Streaming is not implemented for the local model."""
        raise NotImplementedError("the local model does not stream")

    def close(self) -> None:
        """Nothing to release per engine: the loaded model is shared (see :func:`unload_models`)."""

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


def build_local_lm(settings: LMSettings, cache_dir: Path, **lm_kwargs: Any) -> dspy.LM:
    """A ``dspy.LM`` on the embedded model, with the weights resolved and checked.

    Args:
        settings: The role's settings (``model = "local"``): ``local_model_path`` or ``local_model_size``,
            ``local_context``, ``local_threads``, ``temperature``, ``max_tokens``, ``seed``.
        cache_dir: The cscprog cache directory; assembled weights go to ``<cache_dir>/models``.
        **lm_kwargs: Extra ``dspy.LM`` arguments (``cache=False``, ``callbacks=[...]``, generation kwargs).

    Returns:
        ``dspy.LM("local/<model name>", engine=..., async_engine=...)``; the model loads on the first call.

    Raises:
        ConfigError: llama-cpp-python is not installed, or the weights are missing, damaged or not GGUF.

    Example:
        ```python
        lm = build_local_lm(config.lm_for("customer"), config.cache.path)
        ```
    """
    if not llama_available():
        raise ConfigError(LLAMA_MISSING)
    path, name = resolve_model_file(settings.local_model_path, settings.local_model_size, Path(cache_dir))
    max_tokens = settings.max_tokens or DEFAULT_MAX_TOKENS
    engine = LlamaEngine(
        path,
        n_ctx=settings.local_context,
        n_threads=settings.local_threads,
        default_max_tokens=max_tokens,
        default_seed=DEFAULT_SEED if settings.seed is None else settings.seed,
    )
    kwargs: dict[str, Any] = {
        "temperature": DEFAULT_TEMPERATURE if settings.temperature is None else settings.temperature,
        "max_tokens": max_tokens,
    }
    if settings.seed is not None:
        kwargs["seed"] = settings.seed
    kwargs.update(lm_kwargs)
    return dspy.LM(f"{PROVIDER}/{name}", engine=engine, async_engine=AsyncLlamaEngine(engine), **kwargs)
