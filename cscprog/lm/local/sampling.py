"""Token sampling for the embedded model: grammar checked on the likeliest tokens only, repetition penalties.

llama-cpp-python's own sampler chain runs a grammar over the whole vocabulary (about 152,000 tokens for Qwen2.5)
at every step; with the nested JSON schemas of the rewrite that costs far more than the model itself on a
small CPU. :class:`SequenceSampler` does what llama.cpp's own command-line sampler does instead: penalise
repeats, take the ``top_k`` likeliest tokens, let the grammar reject the invalid ones among those, and only
when it rejects all of them run it over the full vocabulary. The grammar therefore allows exactly what it
allowed before; only the work differs.

Penalties (applied to the logits before the choice, over the last ``penalty_last_n`` generated tokens):
``repeat_penalty`` divides a positive logit (multiplies a negative one) of a token seen there;
``frequency_penalty`` subtracts ``count x value``; ``presence_penalty`` subtracts the value once.

Sampling is greedy at temperature 0; otherwise it draws from the softmax of the valid candidates at the given
temperature, cut to ``top_p``, with a private ``numpy`` generator seeded by ``seed``: the same request gives
the same text. Each request has its own :class:`SequenceSampler` (grammar state, penalties, generator, stop
strings, budget), so requests decoded side by side in one batch do not affect each other's choices.

Example:
    ```python
    from cscprog.lm.local.sampling import SamplingOptions, SequenceSampler

    chooser = SequenceSampler(llama, grammar, SamplingOptions(max_tokens=256))
    token = chooser.step(logits_pointer)   # None once finished; chooser.finish says why
    ```
"""

from __future__ import annotations

import ctypes
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SamplingOptions", "SequenceSampler", "apply_penalties"]


@dataclass(frozen=True)
class SamplingOptions:
    """How :func:`sample_completion` chooses tokens.

    Attributes:
        max_tokens: Most tokens to generate (the finish reason is ``length`` when reached).
        temperature: 0 for greedy decoding.
        seed: Seed of the sampling generator.
        top_k: Candidates the grammar checks first (and that sampling chooses among).
        top_p: Nucleus cut of the sampling distribution.
        repeat_penalty: 1.0 for none.
        frequency_penalty: 0.0 for none.
        presence_penalty: 0.0 for none.
        penalty_last_n: How many recent generated tokens the penalties look at.
        stop: Strings that end the completion (not included in the text).

    Example:
        ```python
        SamplingOptions(max_tokens=512, temperature=0.8, seed=1234, repeat_penalty=1.1)
        ```
    """

    max_tokens: int = 512
    temperature: float = 0.0
    seed: int = 0
    top_k: int = 40
    top_p: float = 0.95
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    penalty_last_n: int = 64
    stop: tuple[str, ...] = ()


def apply_penalties(logits: np.ndarray, recent: list[int], options: SamplingOptions) -> None:
    """Penalise, in place, the logits of tokens among ``recent`` (see the module docstring).

    Example:
        ```python
        logits = np.array([2.0, -1.0, 0.5]); apply_penalties(logits, [0, 1], SamplingOptions(repeat_penalty=2.0))
        logits   # array([ 1. , -2. ,  0.5])
        ```
    """
    if not recent:
        return
    if options.repeat_penalty == 1.0 and not options.frequency_penalty and not options.presence_penalty:
        return
    for token, count in Counter(recent).items():
        value = float(logits[token])
        if options.repeat_penalty != 1.0:
            value = value / options.repeat_penalty if value > 0 else value * options.repeat_penalty
        value -= count * options.frequency_penalty + options.presence_penalty
        logits[token] = value


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
"""The layout of llama.cpp's ``llama_token_data``."""


def _grammar_filter(sampler: Any, ids: np.ndarray, logits: np.ndarray, llama_cpp: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, ids)`` of the candidates after the grammar sampler set the invalid ones to -inf."""
    data = np.empty(len(ids), dtype=_TOKEN_DATA)
    data["id"] = ids
    data["logit"] = logits
    data["p"] = 0.0
    pointer = ctypes.cast(data.ctypes.data, ctypes.POINTER(llama_cpp.llama_token_data))
    array = llama_cpp.llama_token_data_array(data=pointer, size=len(ids), selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
    size = int(array.size)
    return data["logit"][:size].copy(), data["id"][:size].astype(np.int64)


def _choose(ids: np.ndarray, logits: np.ndarray, options: SamplingOptions, rng: np.random.Generator) -> int:
    if options.temperature <= 0:
        return int(ids[int(np.argmax(logits))])
    order = np.argsort(-logits)
    ids, logits = ids[order], logits[order]
    scaled = (logits - logits[0]) / options.temperature
    probs = np.exp(scaled)
    probs /= probs.sum()
    keep = int(np.searchsorted(np.cumsum(probs), options.top_p) + 1)
    probs = probs[:keep] / probs[:keep].sum()
    return int(ids[int(rng.choice(keep, p=probs))])


class SequenceSampler:
    """Chooses the tokens of one completion, one step at a time, from the logits llama.cpp computed for it.

    The batched decoder (:mod:`cscprog.lm.local.batch`) keeps one per running sequence, so each request has its
    own grammar state, penalty window, random generator, stop strings and budget, whatever else is decoded
    beside it. :meth:`step` takes the logits after the last evaluated token and returns the next token to
    evaluate, or None once the completion is finished (:attr:`finish` says why).

    Args:
        llama: The loaded ``llama_cpp.Llama`` (its vocabulary and detokenizer; its context is not used).
        grammar: A ``llama_cpp.LlamaGrammar`` constraining the output, or None.
        options: How to choose tokens.

    Example:
        ```python
        chooser = SequenceSampler(llama, grammar, SamplingOptions(max_tokens=64))
        token = chooser.step(llama_cpp.llama_get_logits_ith(ctx, -1))
        chooser.close()
        ```
    """

    def __init__(self, llama: Any, grammar: Any | None, options: SamplingOptions) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self._llama = llama
        self._vocab = llama._model.vocab
        self._n_vocab = llama.n_vocab()
        self.options = options
        self.generated: list[int] = []
        self.finish: str | None = "length" if options.max_tokens <= 0 else None
        self._rng = np.random.default_rng(options.seed)
        self._grammar: Any = None
        if grammar is not None:
            self._grammar = llama_cpp.llama_sampler_init_grammar(
                self._vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
            )

    def step(self, logits_pointer: Any) -> int | None:
        """Choose the next token from llama.cpp's logits; None when the completion ends here.

        Raises:
            ValueError: The grammar allows no token (the completion cannot go on).
        """
        llama_cpp, options, n_vocab = self._llama_cpp, self.options, self._n_vocab
        logits = np.ctypeslib.as_array(logits_pointer, shape=(n_vocab,))
        recent = self.generated[-options.penalty_last_n :]
        if recent and (options.repeat_penalty != 1.0 or options.frequency_penalty or options.presence_penalty):
            logits = logits.astype(np.float32, copy=True)
            apply_penalties(logits, recent, options)
        k = min(max(1, options.top_k), n_vocab)
        ids = np.argpartition(-logits, k - 1)[:k]
        candidates = logits[ids].astype(np.float32)
        if self._grammar is not None:
            candidates, ids = _grammar_filter(self._grammar, ids, candidates, llama_cpp)
            if not np.isfinite(candidates).any():
                every = np.arange(n_vocab, dtype=np.int64)
                candidates, ids = _grammar_filter(self._grammar, every, np.asarray(logits, np.float32), llama_cpp)
                if not np.isfinite(candidates).any():
                    raise ValueError("the grammar allows no token here")
            valid = np.isfinite(candidates)
            ids, candidates = ids[valid], candidates[valid]
        token = _choose(ids, candidates, options, self._rng)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self.finish = "stop"
            return None
        if self._grammar is not None:
            llama_cpp.llama_sampler_accept(self._grammar, token)
        self.generated.append(token)
        if options.stop and any(stop in self._text("ignore") for stop in options.stop):
            self.finish = "stop"
            return None
        if len(self.generated) >= options.max_tokens:
            self.finish = "length"
            return None
        return token

    def _text(self, errors: str) -> str:
        return self._llama.detokenize(self.generated).decode("utf-8", errors)

    def text(self) -> str:
        """The completion so far, cut at the first stop string (which is not included)."""
        text = self._text("replace")
        for stop in self.options.stop:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        return text

    def close(self) -> None:
        """Free the grammar sampler (safe to call twice)."""
        if self._grammar is not None:
            self._llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None
