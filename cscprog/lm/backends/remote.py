"""What every remote (HTTP) backend shares: the ``dspy.LM`` keyword arguments, the API key, and which client serves.

* OpenAI-compatible servers (llama.cpp server, vLLM, Ollama, LM Studio) are ``openai/<name>`` with
  ``api_base = "http://host:port/v1"``. Without ``api_key_env`` such a server gets a placeholder key, never
  an ambient ``OPENAI_API_KEY`` that was meant for another endpoint.
* The API key is read from the environment variable named by ``api_key_env`` when the LM is built; it is
  held only by the ``dspy.LM`` object (DSPy leaves it out of cache keys, history and saved state).
* ``num_retries=0`` on the ``dspy.LM``: :func:`cscprog.lm.invoke.invoke` retries transient errors itself
  (full jitter, ``Retry-After``), so every attempt passes the cache's observer (rate limit, budget).
* ``cache=True`` always: :class:`cscprog.cache.ResponseCache` implements the modes (off, replay...).

Example:
    ```python
    lm = remote_lm(LMSettings(model="openai/m", api_base="http://127.0.0.1:8080/v1"), engine="auto")
    engine_in_use(lm)  # "native"
    ```
"""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network

import dspy  # noqa: E402

from cscprog.config import LMSettings  # noqa: E402
from cscprog.errors import ConfigError  # noqa: E402
from cscprog.redaction import redact_url  # noqa: E402

__all__ = ["ENGINES", "NO_KEY_PLACEHOLDER", "engine_in_use", "lm_kwargs", "remote_lm"]

logger = logging.getLogger(__name__)

ENGINES: dict[str, str] = {"auto": "auto", "native": "lm15", "litellm": "litellm"}
"""cscprog's ``engine`` setting to DSPy's ``engine=`` selection."""

NO_KEY_PLACEHOLDER = "sk-no-key-required"
"""Sent as the key to an ``api_base`` server when no ``api_key_env`` is configured (local servers ignore it)."""


def lm_kwargs(settings: LMSettings) -> dict[str, Any]:
    """The ``dspy.LM`` arguments every backend passes: no DSPy retries, DSPy's cache interface on, generation
    settings (temperature, max_tokens, seed) where the role sets them.

    Example:
        ```python
        lm_kwargs(LMSettings(temperature=0.0))  # {'num_retries': 0, 'cache': True, 'temperature': 0.0}
        ```
    """
    kwargs: dict[str, Any] = {"num_retries": 0, "cache": True}
    if settings.temperature is not None:
        kwargs["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        kwargs["max_tokens"] = settings.max_tokens
    if settings.seed is not None:
        kwargs["seed"] = settings.seed
    return kwargs


def remote_lm(settings: LMSettings, *, engine: str, require_key: bool = True) -> dspy.LM:
    """A ``dspy.LM`` for a remote model with cscprog's ``engine`` setting (``auto``, ``native``, ``litellm``).

    Args:
        settings: The role's settings (``config.lm_for(role)``).
        engine: cscprog's engine setting, a key of :data:`ENGINES`.
        require_key: False when no request will be sent (the cache's ``replay`` mode): an unset ``api_key_env``
            variable is then no error, and the LM gets a placeholder key (keys are never part of cache keys).

    Raises:
        ConfigError: ``api_key_env`` names an unset variable, or DSPy refuses the model string.

    Example:
        ```python
        lm = remote_lm(config.lm_for("judge"), engine="litellm")
        ```
    """
    kwargs = lm_kwargs(settings)
    kwargs["timeout"] = settings.timeout
    if settings.api_base:
        kwargs["api_base"] = settings.api_base
    try:
        key = settings.api_key()
    except ConfigError:
        if require_key:
            raise
        key = NO_KEY_PLACEHOLDER
    if key:
        kwargs["api_key"] = key
    elif settings.api_base:
        kwargs["api_key"] = NO_KEY_PLACEHOLDER
    try:
        lm = dspy.LM(settings.model, engine=ENGINES[engine], **kwargs)
    except (ValueError, TypeError, dspy.utils.exceptions.LMError) as error:
        raise ConfigError(f"lm.model {settings.model!r}: {error}") from None
    logger.debug("built LM %s (engine %s -> %s, endpoint %s)", settings.model, engine, engine_in_use(lm),
                 redact_url(settings.api_base))
    return lm


def engine_in_use(lm: Any) -> str:
    """Which client serves ``lm``'s ordinary calls: ``"native"``, ``"litellm"`` or ``"custom"``.

    Decided offline from the LM's configuration, as DSPy decides it before any I/O. A request the native
    client cannot represent (rare: exotic message parts) may still fall back to litellm at call time.

    Example:
        ```python
        engine_in_use(dspy.LM("openai/x", api_base="http://127.0.0.1:1/v1", api_key="k"))  # "native"
        ```
    """
    spec = getattr(lm, "engine", None)
    if not isinstance(spec, str):
        return "custom"
    if spec == "litellm":
        return "litellm"
    try:
        from dspy.clients.backend_selection import select_backend

        return "native" if select_backend(lm).native else "litellm"
    except Exception:  # an unknown selection or a DSPy refactor: report, never fail
        return "litellm" if spec == "auto" else "unknown"
