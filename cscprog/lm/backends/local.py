"""The local backend (``model = "local"``): the embedded llama.cpp model of :mod:`cscprog.lm.local`.

Example:
    ```python
    lm = build_local(LMSettings(local_model_size="0.5b"), Path("~/.cache/cscprog").expanduser())
    ```
"""

from __future__ import annotations

from pathlib import Path

import dspy

from cscprog.config import LMSettings
from cscprog.lm.local.engine import build_local_lm, recommended_adapter

__all__ = ["build_local", "recommended_adapter"]


def build_local(settings: LMSettings, cache_dir: Path, *, require_key: bool = True) -> dspy.LM:
    """A ``dspy.LM`` on the embedded model; its weights are assembled once into ``settings.models_dir``.

    ``cache_dir`` and ``require_key`` are accepted for the registry's sake: the response cache is installed by the
    runtime, not the LM, and the embedded model needs no key.

    Raises:
        ConfigError: llama-cpp-python is not installed, or the weights are missing or damaged.

    Example:
        ```python
        lm = build_local(config.lm_for("judge"), config.cache.path)
        ```
    """
    return build_local_lm(settings, num_retries=0, cache=True)
