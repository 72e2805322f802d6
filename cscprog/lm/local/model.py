"""The loaded model shared by every engine over one GGUF file: its batch decoder, grammar cache and prefix states.

:class:`SharedModel` holds one ``llama_cpp.Llama`` whose context holds ``sequences`` parallel sequences, the
:class:`~cscprog.lm.local.batch.BatchDecoder` that generates in them, and the :class:`~.batch.ModelLock` other
users (option scoring) take for exclusive use; :func:`shared_model` keeps one per resolved file path in a small
process-wide pool, emptied by :func:`unload_models` (also at exit, before llama_cpp's module globals are torn
down).

Example:
    ```python
    from cscprog.lm.local.model import DEFAULT_PREFIX_CACHE_BYTES, shared_model, unload_models

    model = shared_model(Path("model.gguf"), 4096, None, None, DEFAULT_PREFIX_CACHE_BYTES, sequences=4)
    with model.lock:
        llama = model.ensure_loaded()
    unload_models()
    ```
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from cscprog.errors import ConfigError
from cscprog.lm.local.batch import BatchDecoder, ModelLock
from cscprog.lm.local.llama import cpu_has_amx, default_context_params, default_model_params, import_llama
from cscprog.lm.local.threads import default_threads

__all__ = [
    "DEFAULT_PREFIX_CACHE_BYTES",
    "DEFAULT_SEED",
    "DEFAULT_SEQUENCES",
    "SharedModel",
    "shared_model",
    "unload_models",
]

logger = logging.getLogger(__name__)

DEFAULT_SEED = 0
"""The sampling seed of a call whose request carries none (never a process-wide RNG state)."""
DEFAULT_PREFIX_CACHE_BYTES = 256 * 1024 * 1024
"""Saved prompt-prefix KV states per model (about 12 KB a token for 0.5B, 28 KB for 1.5B)."""
DEFAULT_SEQUENCES = 1
"""Requests decoded side by side in one context (``[lm] local_parallel``); each has ``n_ctx`` tokens of KV cache."""
_GRAMMAR_CACHE_SIZE = 32


class SharedModel:
    """One loaded ``llama_cpp.Llama``, its batch decoder, the lock for exclusive use, and its caches: compiled
    grammars, and KV states of prompt prefixes.

    Prefix states make repeated calls of one DSPy signature cheap without making outputs depend on call order.
    A prompt is always evaluated in two fixed parts: the prefix (every message but the last: the signature's
    system message and demos, identical from call to call) and the rest. The KV state after the prefix is
    saved; a later prompt with the same prefix restores it instead of recomputing it. Restored or recomputed,
    the state is bit-for-bit the same and the rest is evaluated the same way, so the output is too.
    """

    def __init__(
        self,
        path: Path,
        n_ctx: int,
        n_threads: int | None,
        extra_buffers: bool | None,
        prefix_cache_bytes: int,
        sequences: int = DEFAULT_SEQUENCES,
    ) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.sequences = sequences
        self.n_threads = n_threads
        self.threads: int | None = None  # resolved at load (None requested: default_threads() then)
        self.extra_buffers = extra_buffers
        self.prefix_cache_bytes = prefix_cache_bytes
        self.lock = ModelLock()
        self.decoder = BatchDecoder(self, sequences)
        self.llama: Any = None
        self._load_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self.load_seconds: float | None = None
        self.prefix_hits = 0
        self.prefix_misses = 0
        self._full_prompt: Any = None
        self._head_prompt: Any = None
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._prefix_bytes = 0

    def ensure_loaded(self) -> Any:
        """Load the model on first use (thread safe)."""
        if self.llama is not None:
            return self.llama
        with self._load_lock:
            if self.llama is None:
                self._load()
        return self.llama

    def _load(self) -> None:
        llama_cpp = import_llama()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = self.n_threads or default_threads()
        started = time.perf_counter()
        extra_buffers = self.extra_buffers
        if extra_buffers is None:
            extra_buffers = not cpu_has_amx(llama_cpp)
        with default_model_params(llama_cpp, use_extra_bufts=extra_buffers), default_context_params(
            llama_cpp, sequences=self.sequences
        ):
            llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx * self.sequences,
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
        self.threads = threads
        self.load_seconds = time.perf_counter() - started
        self.llama = llama
        logger.info(
            "loaded %s in %.1f s (n_ctx=%d, %d sequences, threads=%d, extra buffers %s)",
            self.path,
            self.load_seconds,
            self.n_ctx,
            self.sequences,
            threads,
            "on" if extra_buffers else "off",
        )

    def grammar(self, schema: dict[str, Any] | None) -> Any:
        """A llama.cpp grammar for a JSON schema (None: any JSON value); a small LRU (thread safe)."""
        key = json.dumps(schema, sort_keys=True) if schema is not None else ""
        with self._cache_lock:
            grammar = self._grammars.get(key)
            if grammar is not None:
                self._grammars.move_to_end(key)
                return grammar
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        if schema is None:
            grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        else:
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        with self._cache_lock:
            self._grammars[key] = grammar
            while len(self._grammars) > _GRAMMAR_CACHE_SIZE:
                self._grammars.popitem(last=False)
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
        """Put exactly ``prefix`` in sequence 0, the high-level ``Llama``'s own; the caller holds ``self.lock``."""
        import llama_cpp

        llama = self.llama
        llama.reset()
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llama.ctx), -1, 0, -1)
        if not prefix:
            return
        if not self.restore_prefix(0, prefix):
            llama.eval(prefix)
            self.save_prefix(0, prefix)
        llama.input_ids[: len(prefix)] = prefix
        llama.n_tokens = len(prefix)

    def restore_prefix(self, seq: int, prefix: list[int]) -> bool:
        """Restore the saved KV state of ``prefix`` into the empty sequence ``seq``; False when none is saved."""
        import llama_cpp

        key = tuple(prefix)
        with self._cache_lock:
            state = self._prefixes.get(key)
            if state is not None:
                self._prefixes.move_to_end(key)
        if state is None or not llama_cpp.llama_state_seq_set_data(self.llama.ctx, state, len(state), seq):
            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self.llama.ctx), seq, -1, -1)
            self.prefix_misses += 1
            return False
        self.prefix_hits += 1
        return True

    def save_prefix(self, seq: int, prefix: list[int]) -> None:
        """Save the KV state of sequence ``seq``, which holds exactly ``prefix``, within the cache's bytes."""
        import llama_cpp

        ctx = self.llama.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, seq)
        if size > self.prefix_cache_bytes:
            return
        state = (ctypes.c_uint8 * size)()
        llama_cpp.llama_state_seq_get_data(ctx, state, size, seq)
        with self._cache_lock:
            self._prefixes[tuple(prefix)] = state
            self._prefix_bytes += size
            while self._prefix_bytes > self.prefix_cache_bytes:
                _, dropped = self._prefixes.popitem(last=False)
                self._prefix_bytes -= len(dropped)

    def close(self) -> None:
        """Stop the decoder (running requests finish, waiting ones fail) and free the model (it loads again
        on the next use, with a new decoder)."""
        self.decoder.close()
        with self.lock:
            self.decoder.free_batch()
            self.decoder = BatchDecoder(self, self.sequences)
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
_MODELS: dict[Path, SharedModel] = {}
_MODELS_LOCK = threading.Lock()


def shared_model(
    path: Path,
    n_ctx: int,
    n_threads: int | None,
    extra_buffers: bool | None,
    prefix_cache_bytes: int,
    sequences: int = DEFAULT_SEQUENCES,
) -> SharedModel:
    """The pool's model for ``path``, created (not loaded) on first request; later settings are ignored."""
    key = Path(path).resolve()
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = SharedModel(key, n_ctx, n_threads, extra_buffers, prefix_cache_bytes, sequences)
        elif (model.n_ctx, model.n_threads, model.sequences) != (n_ctx, n_threads, sequences):
            logger.warning(
                "%s is already in use with n_ctx=%d, threads=%s, %d sequences; ignoring n_ctx=%d, threads=%s, %d",
                key,
                model.n_ctx,
                model.n_threads,
                model.sequences,
                n_ctx,
                n_threads,
                sequences,
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
