"""Multiple-choice scoring with the embedded model: the log-likelihood of each option as the assistant's answer.

Instead of letting a small model generate a label (and take the first plausible one every time), the prompt is
rendered once with the chat template, up to where the assistant's answer begins, and each option is scored as
that answer: the sum of the log-probabilities of its tokens, followed by the end-of-turn token (so an option that
is only the start of a likelier answer gets no credit for it). The prompt is evaluated once; each option costs
one single-token step per token, after which the KV cache is cut back to the prompt.

Scores are exact (no sampling), so the same prompt and options always give the same numbers.

Example:
    ```python
    from cscprog.lm.local.scoring import score_options

    scores = score_options(lm, [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
                           ["Question", "Self-disclosure", "Others"])
    scores[0].logprob, scores[0].tokens   # (-1.93, 2)
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cscprog.errors import ConfigError
from cscprog.lm.local.engine import LlamaEngine

__all__ = ["OptionScore", "local_engine_of", "score_options", "score_options_counted"]


@dataclass(frozen=True)
class OptionScore:
    """The log-likelihood of one option as the assistant's whole answer.

    Attributes:
        option: The option's text.
        logprob: Sum of the natural-log probabilities of its tokens and the end-of-turn token.
        tokens: How many tokens that sum covers.
    """

    option: str
    logprob: float
    tokens: int


def local_engine_of(lm: Any) -> Any | None:
    """The :class:`cscprog.lm.local.engine.LlamaEngine` behind a ``dspy.LM``, or None for any other LM.

    Example:
        ```python
        local_engine_of(runtime.lm_for("classifier")) is not None   # True on the embedded model
        ```
    """
    engine = getattr(lm, "engine", None)
    return engine if isinstance(engine, LlamaEngine) else None


def _log_softmax(llama: Any, llama_cpp: Any) -> np.ndarray:
    """Log-probabilities of every token at the last evaluated position."""
    pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    logits = np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),)).astype(np.float64)
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def score_options(lm: Any, messages: list[dict[str, str]], options: list[str]) -> list[OptionScore]:
    """Score each option as the assistant's answer to ``messages``: :func:`score_options_counted` without the count.

    Example:
        ```python
        best = max(score_options(lm, messages, labels), key=lambda s: s.logprob).option
        ```
    """
    return score_options_counted(lm, messages, options)[0]


def score_options_counted(
    lm: Any, messages: list[dict[str, str]], options: list[str]
) -> tuple[list[OptionScore], int]:
    """Score each option as the assistant's answer to ``messages`` (see the module docstring).

    Args:
        lm: A ``dspy.LM`` on the embedded model (:func:`local_engine_of` finds its engine).
        messages: The chat messages before the answer (system and user).
        options: The candidate answers.

    Returns:
        One :class:`OptionScore` per option, in the order given, and the prompt's length in tokens.

    Raises:
        ConfigError: ``lm`` is not the embedded model.
        ValueError: ``options`` is empty, or the prompt does not fit in the context window.

    Example:
        ```python
        scores, prompt_tokens = score_options_counted(lm, messages, labels)
        ```
    """
    engine = local_engine_of(lm)
    if engine is None:
        raise ConfigError("option scoring needs the embedded model (lm.model = \"local\")")
    if not options:
        raise ValueError("no options to score")
    import llama_cpp

    model = engine.shared_model()
    with model.lock:
        llama = model.ensure_loaded()
        prompt, prefix, _ = model.render(messages)
        end = llama.token_eos()
        answers = [llama.tokenize(option.encode("utf-8"), add_bos=False, special=False) + [end] for option in options]
        if len(prompt) + max(len(answer) for answer in answers) >= model.n_ctx:
            raise ValueError(f"the prompt has {len(prompt)} tokens, the context window {model.n_ctx}")
        model.start(prompt[:prefix])
        llama.eval(prompt[llama.n_tokens :])
        first = _log_softmax(llama, llama_cpp)
        memory = llama_cpp.llama_get_memory(llama.ctx)
        scores = []
        for option, answer in zip(options, answers, strict=True):
            total = float(first[answer[0]])
            for position in range(1, len(answer)):
                llama.eval([answer[position - 1]])
                total += float(_log_softmax(llama, llama_cpp)[answer[position]])
            scores.append(OptionScore(option, total, len(answer)))
            llama_cpp.llama_memory_seq_rm(memory, -1, len(prompt), -1)
            llama.n_tokens = len(prompt)
    return scores, len(prompt)
