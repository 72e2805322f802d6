"""The litellm backend (``engine = "litellm"``): any provider litellm knows, through DSPy's litellm client.

Use it for providers the native client does not serve; it costs more client CPU per call and a few seconds to
import litellm once per process.

Example:
    ```python
    lm = build_litellm(LMSettings(model="groq/llama3", api_key_env="GROQ_API_KEY", engine="litellm"))
    ```
"""

from __future__ import annotations

from pathlib import Path

import dspy

from cscprog.config import LMSettings
from cscprog.lm.backends.remote import remote_lm

__all__ = ["build_litellm"]


def build_litellm(settings: LMSettings, cache_dir: Path | None = None, *, require_key: bool = True) -> dspy.LM:
    """A ``dspy.LM`` on DSPy's litellm client.

    Raises:
        ConfigError: ``api_key_env`` names an unset variable, or litellm refuses the model string.

    Example:
        ```python
        lm = build_litellm(config.lm_for("customer"))
        ```
    """
    return remote_lm(settings, engine="litellm", require_key=require_key)
