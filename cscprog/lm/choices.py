"""Multiple-choice scoring through the LM layer: cached, recorded in usage, replayable like every other LM call.

:func:`score_choices` asks the embedded model how likely each option is as the assistant's answer
(:func:`cscprog.lm.local.scoring.score_options`), but first looks the call up in the active response cache
(``dspy.cache``: the run's :class:`cscprog.cache.ResponseCache` when a runtime is active). The call has its own
request, so its own key: the model string (``local/<model file>``), the scoring kind and its version, the chat
messages and the options in order. A hit returns the stored scores without touching (or loading) the model; a
miss scores, stores the result with its usage (prompt tokens as input, option tokens as output) and tells the
cache's observer, so the run's usage ledger, budget and ``last_run.json`` count it. In ``replay`` mode a miss
raises :class:`cscprog.cache.CacheMissError` (naming role, model, key and the last user message) before the
model is touched.

A calibrated label choice (:class:`cscprog.agents.label_scoring.LabelScorer`) is made of such calls: the turn's
own and one per content-free turn, each keyed by exactly what it scored.

Example:
    ```python
    from cscprog.lm.choices import score_choices

    with runtime.activate():
        scores = score_choices(runtime.lm("classifier"), messages, ["Question", "Others"], role="classifier")
    scores[0].option, scores[0].logprob    # ('Question', -1.93), from the cache the second time
    ```
"""

from __future__ import annotations

import contextlib
from typing import Any

import dspy

from cscprog.context import current_runtime
from cscprog.errors import CscprogError
from cscprog.lm.local.scoring import OptionScore, score_options_counted

__all__ = ["SCORING_KIND", "score_choices", "scoring_request"]

SCORING_KIND = "option_logprobs/1"
"""What the cached request asks for; the suffix is bumped when the scoring itself changes."""


def scoring_request(lm: Any, messages: list[dict[str, str]], options: list[str]) -> dict[str, Any]:
    """The cache request of one scoring call: model, scoring kind, messages and options (order counts).

    Example:
        ```python
        scoring_request(lm, [{"role": "user", "content": "Label:"}], ["A", "B"])["options"]   # ['A', 'B']
        ```
    """
    return {
        "model": str(getattr(lm, "model", "")),
        "scoring": SCORING_KIND,
        "messages": [dict(message) for message in messages],
        "options": list(options),
    }


def _record(scores: list[OptionScore], prompt_tokens: int) -> dict[str, Any]:
    completion = sum(score.tokens for score in scores)
    return {
        "scores": [[score.option, score.logprob, score.tokens] for score in scores],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                  "total_tokens": prompt_tokens + completion},
        "cost": 0.0,
    }


def _scores_of(record: Any, options: list[str]) -> list[OptionScore]:
    """The scores of a stored record, checked against the options asked for."""
    rows = record.get("scores") if isinstance(record, dict) else None
    if not isinstance(rows, list) or [row[0] for row in rows if isinstance(row, list) and row] != options:
        raise CscprogError(f"a cached scoring record does not hold the options asked for ({', '.join(options)})")
    return [OptionScore(str(option), float(logprob), int(tokens)) for option, logprob, tokens in rows]


def score_choices(
    lm: Any, messages: list[dict[str, str]], options: list[str], *, role: str | None = None
) -> list[OptionScore]:
    """Score each option as the answer to ``messages``, through the response cache (see the module docstring).

    Args:
        lm: A ``dspy.LM`` on the embedded model.
        messages: The chat messages before the answer.
        options: The candidate answers.
        role: The role the call is attributed to in the cache and the usage ledger (with an active runtime).

    Returns:
        One :class:`cscprog.lm.local.scoring.OptionScore` per option, in the order given.

    Raises:
        CacheMissError: replay mode and the call is not cached.
        ConfigError: a miss, and ``lm`` is not the embedded model.
        ValueError: ``options`` is empty, or the prompt does not fit the context window.

    Example:
        ```python
        best = max(score_choices(lm, messages, labels, role="classifier"), key=lambda s: s.logprob).option
        ```
    """
    if not options:
        raise ValueError("no options to score")
    options = list(options)
    runtime = current_runtime()
    scope = runtime.role(role) if runtime is not None and role else contextlib.nullcontext()
    with scope:
        cache = dspy.cache if getattr(lm, "cache", True) else None
        request = scoring_request(lm, messages, options)
        if cache is not None:
            found = cache.get(request)
            if found is not None:
                return _scores_of(found, options)
        scores, prompt_tokens = score_options_counted(lm, messages, options)
        if cache is not None:
            cache.put(request, _record(scores, prompt_tokens))
        return scores
