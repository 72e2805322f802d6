"""The one way cscprog modules call a DSPy predictor: role routing, bounded retries, no silent defaults.

:func:`invoke` (and :func:`ainvoke`) runs ``predictor(**inputs)``:

* inside ``runtime.role(role)`` when a :class:`cscprog.lm.runtime.Runtime` is active, so the call uses the
  role's LM and the cache attributes it to the role; else with plain DSPy settings
  (``dspy.configure(lm=...)`` works);
* transient errors (:func:`cscprog.lm.provider_errors.is_transient`: 429, 5xx, timeouts, transport, and a
  success reply whose body is not JSON) are retried with exponential backoff and full jitter, honouring the
  provider's ``retry_after``, up to the role's ``num_retries`` (with no runtime: none, unless the LM itself has
  ``num_retries=0``, then 4); a provider error that ends the call names cscprog's settings
  (:func:`cscprog.lm.provider_errors.explain`: ``api_key_env`` for a rejected key, ``[lm] timeout``);
* output that does not parse (``AdapterParseError``) or that ``validate`` rejects (it returns a reason, e.g.
  a label outside the taxonomy) is retried with ``rollout_id = k`` for attempt ``k = 1, 2, ...`` at the
  role's configured temperature (see :func:`retry_kwargs`; each attempt its own cache entry, so a cached
  failure is not replayed forever) up to ``attempts`` attempts, then :class:`GenerationFailure` is raised with
  the raw LM text of the last attempt;
* a structured output cut off by its token budget (:class:`cscprog.cache.truncation.OutputTruncated`, raised by
  the cache router from the stored response, fresh or replayed, so the cut-off call is cached like any other) is
  never parsed: the next attempt gets twice the budget (up to :data:`MAX_GROWN_TOKENS`).

The rollout is applied as ``lm.copy(**retry_kwargs(lm, k))`` in the DSPy context, which gives exactly the
cache key of ``predictor(..., config=retry_kwargs(lm, k))`` and also works for modules that do not forward
``config``. Each attempt runs on its own copy of the LM, and the raw text is
captured by a callback on that copy (no mix-up between threads, and it works with DSPy's history disabled, as
runs disable it); the role LM's own ``history`` therefore stays empty: inspect calls with
``dspy.inspect_history()``.

Example:
    ```python
    classify = dspy.Predict("utterance -> strategy")
    labels = {"Empathy", "Apology"}
    pred = invoke(
        classify,
        role="classifier",
        validate=lambda p: None if p.strategy in labels else f"unknown strategy {p.strategy!r}",
        utterance="I am so sorry for the delay.",
    )
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.exceptions import AdapterParseError

from cscprog.cache.truncation import OutputTruncated
from cscprog.config import LMSettings
from cscprog.context import current_retry_round, current_runtime, current_trial
from cscprog.errors import CscprogError
from cscprog.lm.provider_errors import explain, is_transient

__all__ = ["GREEDY_RETRY_TEMPERATURE", "GenerationFailure", "ainvoke", "backoff_delay", "invoke", "retry_kwargs"]

logger = logging.getLogger(__name__)

RAW_TEXT_LIMIT = 2000
"""Characters of raw LM text kept in a :class:`GenerationFailure`."""

BASE_DELAY = 0.5
"""Seconds: the backoff ceiling of the first transient retry (doubling each retry)."""

MAX_DELAY = 30.0
"""Seconds: the largest backoff ceiling, and the longest ``retry_after`` honoured."""

MAX_GROWN_TOKENS = 8192
"""The largest completion budget a truncation retry grows to."""

GREEDY_RETRY_TEMPERATURE = 0.7
"""The temperature of the retries of a role configured for greedy decoding (temperature 0)."""

_DEFAULT_RETRIES = LMSettings.model_fields["num_retries"].default

TRIAL_STRIDE = 1_000_000
"""Rollout ids of trial ``t`` (:func:`cscprog.context.trial_context`) start at ``t * TRIAL_STRIDE``, so the
retries of one trial never meet the ids of another."""


class GenerationFailure(CscprogError):
    """A predictor's output did not parse or was rejected on every attempt.

    Attributes:
        role: The role of the call.
        reason: Why the last attempt was rejected (the parse error or the validator's reason).
        raw_text: The raw LM text of the last attempt (truncated to :data:`RAW_TEXT_LIMIT` characters).
        attempts: How many attempts were made.
    """

    def __init__(self, role: str, reason: str, raw_text: str | None, attempts: int = 0) -> None:
        self.role = role
        self.reason = reason
        self.raw_text = raw_text
        self.attempts = attempts
        excerpt = (raw_text or "").strip().replace("\n", " ")
        excerpt = excerpt if len(excerpt) <= 200 else excerpt[:200] + "..."
        tail = f"; last LM text: {excerpt!r}" if excerpt else ""
        super().__init__(f"{role}: no usable output after {attempts} attempt(s): {reason}{tail}")


def backoff_delay(retry: int, retry_after: float | None = None, *, rng: random.Random | None = None) -> float:
    """Seconds to wait before transient retry ``retry`` (0-based): ``retry_after`` if given, else full jitter.

    Full jitter: uniform in ``[0, min(MAX_DELAY, BASE_DELAY * 2**retry)]``.

    Example:
        ```python
        backoff_delay(0)                   # in [0, 0.5]
        backoff_delay(3, retry_after=2.0)  # 2.0
        ```
    """
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), MAX_DELAY)
    ceiling = min(MAX_DELAY, BASE_DELAY * (2 ** min(retry, 16)))
    return (rng or random).uniform(0.0, ceiling)


def retry_kwargs(lm: Any, rollout: int) -> dict[str, Any]:
    """LM kwargs of retry ``rollout`` (>= 1): a new ``rollout_id``, the configured temperature kept.

    A role's temperature is part of how it is meant to run (RoleCS runs its roles at 0.8), so retries keep it.
    Two exceptions keep a retry from repeating the rejected answer word for word: a greedy role (temperature 0)
    samples its retries at :data:`GREEDY_RETRY_TEMPERATURE`, and an LM with a ``seed`` (the embedded model
    always has one) gets ``seed + rollout``.

    Example:
        ```python
        retry_kwargs(dspy.LM("openai/x", temperature=0.8, seed=1234), 2)
        # {'rollout_id': 2, 'seed': 1236}
        ```
    """
    kwargs: dict[str, Any] = {"rollout_id": rollout}
    settings = getattr(lm, "kwargs", {}) or {}
    if settings.get("temperature") == 0:
        kwargs["temperature"] = GREEDY_RETRY_TEMPERATURE
    seed = settings.get("seed")
    if isinstance(seed, int):
        kwargs["seed"] = seed + rollout
    elif str(getattr(lm, "model", "")).startswith("local/"):
        kwargs["seed"] = rollout
    return kwargs


def _truncate(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + "...[truncated]"


def _output_text(outputs: Any) -> str | None:
    """The first completion's text of an LM call's outputs (a list of strings or dicts, or an lm15 response)."""
    if outputs is None:
        return None
    if isinstance(outputs, list):
        if not outputs:
            return None
        first = outputs[0]
        return str(first.get("text") or "") if isinstance(first, dict) else str(first)
    text = getattr(outputs, "text", None)
    return str(text) if text is not None else None


class _TextCapture(BaseCallback):
    """Keeps the raw text of the last LM call made by the one LM copy it is attached to.

    Replay-aware: the cache's result layer hands it the stored outputs of the calls a result hit stands for.
    """

    replays_lm_outputs = True

    def __init__(self) -> None:
        self.text: str | None = None

    def on_lm_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        if exception is None:
            self.text = _output_text(outputs)


class _Call:
    """The retry state of one invoke(): shared by the sync and async loops."""

    def __init__(self, predictor: Any, role: str, attempts: int, validate: Any, max_tokens: int | None) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.predictor = predictor
        self.role = role
        self.attempts = attempts
        self.validate = validate
        self.max_tokens = max_tokens
        self.runtime = current_runtime()
        # A run that re-runs an item which failed before (``--resume``) sets its retry round, so the attempts
        # of this round use rollout ids no earlier round used: a cached bad answer is not replayed again.
        self.first_rollout = current_retry_round() * attempts
        self.trial = current_trial()
        self.attempt = 0
        self.transient = 0
        self.reason = ""
        self.raw: str | None = None
        self.capture = _TextCapture()

    @contextlib.contextmanager
    def context(self) -> Iterator[Any]:
        """Enter the role (when a runtime is active) and this attempt's LM copy; yield the copy."""
        with self.runtime.role(self.role) if self.runtime is not None else contextlib.nullcontext():
            lm = dspy.settings.lm
            if lm is None:
                yield None
                return
            copy = lm.copy(**self._sampling(lm))
            self.capture.text = None
            copy.callbacks = [*(getattr(copy, "callbacks", None) or []), self.capture]
            with dspy.context(lm=copy):
                yield copy

    def _sampling(self, lm: Any) -> dict[str, Any]:
        """The LM overrides of this attempt: a retry's rollout (:func:`retry_kwargs`), a trial's own rollout ids and
        seed, the completion budget."""
        rollout = self.first_rollout + self.attempt
        overrides: dict[str, Any] = retry_kwargs(lm, rollout) if rollout else {}
        if self.trial:
            overrides["rollout_id"] = self.trial * TRIAL_STRIDE + rollout
            if self.runtime is not None and self.runtime.settings(self.role).is_local:
                # the embedded model gives the same text for the same request and seed: shift the seed too
                base = overrides.get("seed", (getattr(lm, "kwargs", None) or {}).get("seed"))
                overrides["seed"] = int(base or 0) + self.trial
        if self.max_tokens is not None:
            overrides["max_tokens"] = self.max_tokens
        return overrides

    def max_transient(self) -> int:
        if self.runtime is not None:
            return self.runtime.settings(self.role).num_retries
        lm = dspy.settings.lm
        return _DEFAULT_RETRIES if lm is not None and getattr(lm, "num_retries", 0) == 0 else 0

    def _record(self, kind: str, lm: Any) -> None:
        if self.runtime is not None:
            self.runtime.ledger.record_retry(self.role, kind, getattr(lm, "model", None))

    def on_error(self, error: BaseException, lm: Any) -> float | None:
        """Classify a failed attempt: seconds to wait before retrying, or None to stop. Raises when fatal."""
        if isinstance(error, AdapterParseError):
            self.raw = error.lm_response if isinstance(error.lm_response, str) else self.capture.text
            return self._next_attempt("parse", f"output did not parse ({error.adapter_name})", lm)
        if isinstance(error, OutputTruncated):
            self.max_tokens = min(MAX_GROWN_TOKENS, 2 * error.max_tokens)
            return self._next_attempt("truncated", f"output truncated at max_tokens={error.max_tokens}", lm)
        if is_transient(error) and self.transient < self.max_transient():
            delay = backoff_delay(self.transient, getattr(error, "retry_after", None))
            self.transient += 1
            self._record("transient", lm)
            logger.info(
                "%s: transient LM error (%s), retry %d in %.2fs", self.role, type(error).__name__, self.transient, delay
            )
            return delay
        settings = self.runtime.settings(self.role) if self.runtime is not None else None
        explained = explain(error, role=self.role, settings=settings)
        if explained is error:
            raise error
        raise explained from None

    def on_result(self, prediction: Any, lm: Any) -> bool:
        """True when ``prediction`` is accepted; else prepare the next attempt (raises after the last)."""
        if self.validate is None:
            return True
        reason = self.validate(prediction)
        if not reason:
            return True
        self.raw = self.capture.text
        self._next_attempt("invalid", str(reason), lm)
        return False

    def _next_attempt(self, kind: str, reason: str, lm: Any) -> float:
        self.reason = reason
        self.attempt += 1
        if self.attempt >= self.attempts:
            if self.runtime is not None:
                self.runtime.ledger.record_failure(self.role, getattr(lm, "model", None))
            raise GenerationFailure(self.role, reason, _truncate(self.raw), self.attempt)
        self._record(kind, lm)
        logger.info(
            "%s: attempt %d rejected (%s); retrying with rollout_id=%d",
            self.role, self.attempt, reason, self.first_rollout + self.attempt,
        )
        return 0.0


def invoke(
    predictor: dspy.Module,
    *,
    role: str,
    attempts: int = 3,
    validate: Callable[[dspy.Prediction], str | None] | None = None,
    max_tokens: int | None = None,
    **inputs: Any,
) -> dspy.Prediction:
    """Call ``predictor(**inputs)`` as ``role`` with bounded, logged retries (see the module docstring).

    Args:
        predictor: Any DSPy module (``dspy.Predict``, ``dspy.ChainOfThought``, a program).
        role: One of :data:`cscprog.roles.ROLES` (a :class:`cscprog.roles.Role`).
        attempts: Most attempts at a usable output (parse failures and ``validate`` rejections).
        validate: Returns None for an acceptable prediction, or the reason it is not.
        max_tokens: The completion budget of the first attempt (None: the role's); doubled after a truncation.
        **inputs: The predictor's inputs.

    Returns:
        The accepted prediction.

    Raises:
        GenerationFailure: no attempt produced a usable output (``raw_text`` holds the last LM text).
        BudgetExceeded: the run budget is spent.
        dspy.utils.exceptions.LMError: a non-transient LM error, or transient errors beyond ``num_retries``.

    Example:
        ```python
        pred = invoke(dspy.Predict("question -> answer"), role="responder", question="Where is my order?")
        ```
    """
    call = _Call(predictor, role, attempts, validate, max_tokens)
    while True:
        with call.context() as lm:
            try:
                prediction = predictor(**inputs)
            except Exception as error:
                delay = call.on_error(error, lm)
            else:
                if call.on_result(prediction, lm):
                    return prediction
                continue
        if delay:
            time.sleep(delay)


async def ainvoke(
    predictor: dspy.Module,
    *,
    role: str,
    attempts: int = 3,
    validate: Callable[[dspy.Prediction], str | None] | None = None,
    max_tokens: int | None = None,
    **inputs: Any,
) -> dspy.Prediction:
    """The async :func:`invoke`: awaits ``predictor.acall(**inputs)`` with the same retries.

    Example:
        ```python
        pred = await ainvoke(dspy.Predict("question -> answer"), role="responder", question="Hello?")
        ```
    """
    call = _Call(predictor, role, attempts, validate, max_tokens)
    while True:
        with call.context() as lm:
            try:
                prediction = await predictor.acall(**inputs)
            except Exception as error:
                delay = call.on_error(error, lm)
            else:
                if call.on_result(prediction, lm):
                    return prediction
                continue
        if delay:
            await asyncio.sleep(delay)
