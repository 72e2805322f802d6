"""Build the ``dspy.LM`` of a role from its :class:`cscprog.config.LMSettings`: any provider by config.

* ``model`` is any litellm model string (``openai/gpt-4o-mini``, ``anthropic/claude-3-5-haiku-latest``,
  ``ollama_chat/qwen2.5``), or ``"local"`` for the embedded llama.cpp model
  (:func:`cscprog.lm.local.engine.build_local_lm`, imported only then).
* OpenAI-compatible servers (llama.cpp server, vLLM, Ollama, LM Studio) are ``openai/<name>`` with
  ``api_base = "http://host:port/v1"``. Without ``api_key_env`` such a server gets a placeholder key, never
  an ambient ``OPENAI_API_KEY`` that was meant for another endpoint.
* The API key is read from the environment variable named by ``api_key_env`` when the LM is built; it is
  held only by the ``dspy.LM`` object (DSPy leaves it out of cache keys, history and saved state).
* ``engine``: ``auto`` uses DSPy 3.4's native HTTP client (lm15) where it serves the provider (OpenAI and
  OpenAI-compatible servers through ``api_base``, Anthropic, Gemini...) and litellm otherwise;
  ``native`` forces the native client (refused at build time when it cannot serve the model) and
  ``litellm`` forces litellm.

  Measured with ``benchmarks/overhead.py`` (2 cores, loopback server in its own process answering after
  100 ms, one ``dspy.Predict`` per call, cache off, two runs): native 8.1-9.4 calls/s at concurrency 1 and
  34.7-35.0 at concurrency 4; litellm 7.2-7.9 and 29.0-29.7 (about 15% slower, some 20 ms of client CPU per
  call, plus 5-10 s to import litellm once per process). Hence ``auto``.
* ``num_retries=0`` on the ``dspy.LM``: :func:`cscprog.lm.invoke.invoke` retries transient errors itself
  (full jitter, ``Retry-After``), so every attempt passes the cache's observer (rate limit, budget).
* ``cache=True`` always: :class:`cscprog.cache.ResponseCache` implements the modes (off, replay...).

Example:
    ```python
    from cscprog.config import LMSettings

    settings = LMSettings(model="openai/qwen2.5-7b", api_base="http://127.0.0.1:8080/v1", temperature=0.0)
    lm = build_lm(settings, cache_dir=Path("~/.cache/cscprog").expanduser())
    ```
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network

import dspy  # noqa: E402

from cscprog.config import LMSettings  # noqa: E402
from cscprog.errors import ConfigError  # noqa: E402
from cscprog.redaction import redact_url  # noqa: E402

__all__ = ["ENGINES", "NO_KEY_PLACEHOLDER", "build_lm", "engine_in_use"]

logger = logging.getLogger(__name__)

ENGINES: dict[str, str] = {"auto": "auto", "native": "lm15", "litellm": "litellm"}
"""cscprog's ``engine`` setting to DSPy's ``engine=`` selection."""

NO_KEY_PLACEHOLDER = "sk-no-key-required"
"""Sent as the key to an ``api_base`` server when no ``api_key_env`` is configured (local servers ignore it)."""


def _lm_kwargs(settings: LMSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"num_retries": 0, "cache": True}
    if settings.temperature is not None:
        kwargs["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        kwargs["max_tokens"] = settings.max_tokens
    if settings.seed is not None:
        kwargs["seed"] = settings.seed
    return kwargs


def build_lm(settings: LMSettings, *, cache_dir: Path, require_key: bool = True) -> dspy.LM:
    """The ``dspy.LM`` for one role's settings.

    Args:
        settings: The role's settings (``config.lm_for(role)``).
        cache_dir: The cscprog cache directory (the embedded model assembles its weights there).
        require_key: False when no request will be sent (the cache's ``replay`` mode): an unset ``api_key_env``
            variable is then no error, and the LM gets a placeholder key (keys are never part of cache keys).

    Returns:
        A ``dspy.LM`` with ``num_retries=0`` and ``cache=True``.

    Raises:
        ConfigError: ``api_key_env`` names an unset variable, ``engine = "native"`` cannot serve the model,
            or the embedded model is unavailable.

    Example:
        ```python
        lm = build_lm(config.lm_for("judge"), cache_dir=config.cache.path)
        ```
    """
    if settings.is_local:
        from cscprog.lm.local.engine import build_local_lm

        return build_local_lm(settings, Path(cache_dir), num_retries=0, cache=True)
    kwargs = _lm_kwargs(settings)
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
        lm = dspy.LM(settings.model, engine=ENGINES[settings.engine], **kwargs)
    except (ValueError, TypeError, dspy.utils.exceptions.LMError) as error:
        raise ConfigError(f"lm.model {settings.model!r}: {error}") from None
    engine = engine_in_use(lm)
    if settings.engine == "native" and engine != "native":
        raise ConfigError(
            f"lm.engine = 'native': DSPy's native client cannot serve {settings.model!r} with these settings; "
            "use engine = 'auto' or 'litellm'"
        )
    logger.debug(
        "built LM %s (engine %s -> %s, endpoint %s)", settings.model, settings.engine, engine,
        redact_url(settings.api_base),
    )
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
