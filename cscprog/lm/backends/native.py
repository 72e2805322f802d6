"""The native backend (``engine = "native"`` or ``"auto"``): DSPy 3.4's own HTTP client (lm15).

``native`` serves OpenAI and OpenAI-compatible servers (``api_base``), Anthropic, Gemini and other providers lm15
knows, with less client CPU per call than litellm; it is refused at build time for a model it cannot serve.
``auto`` lets DSPy pick: native where it serves the provider, litellm otherwise.

Example:
    ```python
    lm = build_native(LMSettings(model="openai/m", api_base="http://127.0.0.1:8080/v1", engine="native"))
    ```
"""

from __future__ import annotations

from pathlib import Path

import dspy

from cscprog.config import LMSettings
from cscprog.errors import ConfigError
from cscprog.lm.backends.remote import engine_in_use, remote_lm

__all__ = ["build_auto", "build_native"]


def build_native(settings: LMSettings, cache_dir: Path | None = None, *, require_key: bool = True) -> dspy.LM:
    """A ``dspy.LM`` on DSPy's native client.

    Raises:
        ConfigError: the native client cannot serve the model with these settings.

    Example:
        ```python
        lm = build_native(config.lm_for("judge"))
        ```
    """
    lm = remote_lm(settings, engine="native", require_key=require_key)
    if engine_in_use(lm) != "native":
        raise ConfigError(
            f"lm.engine = 'native': DSPy's native client cannot serve {settings.model!r} with these settings; "
            "use engine = 'auto' or 'litellm'"
        )
    return lm


def build_auto(settings: LMSettings, cache_dir: Path | None = None, *, require_key: bool = True) -> dspy.LM:
    """A ``dspy.LM`` on the native client where it serves the provider, litellm otherwise.

    Example:
        ```python
        lm = build_auto(LMSettings(model="anthropic/claude-3-5-haiku-latest", api_key_env="ANTHROPIC_API_KEY"))
        ```
    """
    return remote_lm(settings, engine="auto", require_key=require_key)
