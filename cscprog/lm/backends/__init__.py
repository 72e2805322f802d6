"""Build the ``dspy.LM`` of a role from its :class:`cscprog.config.LMSettings`: a small registry of backends.

One module per backend kind: :mod:`~cscprog.lm.backends.local` (``model = "local"``, the embedded llama.cpp
model), :mod:`~cscprog.lm.backends.native` (``engine = "native"``, and ``"auto"``: native where it serves the
provider, litellm otherwise) and :mod:`~cscprog.lm.backends.litellm` (``engine = "litellm"``); what the remote
ones share is in :mod:`~cscprog.lm.backends.remote`. ``model`` is any litellm model string
(``openai/gpt-4o-mini``, ``anthropic/claude-3-5-haiku-latest``, ``ollama_chat/qwen2.5``) or ``"local"``.

Example:
    ```python
    from cscprog.config import LMSettings

    settings = LMSettings(model="openai/qwen2.5-7b", api_base="http://127.0.0.1:8080/v1", temperature=0.0)
    lm = build_lm(settings, cache_dir=Path("~/.cache/cscprog").expanduser())
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import dspy

from cscprog.config import LMSettings
from cscprog.lm.backends.litellm import build_litellm
from cscprog.lm.backends.local import build_local
from cscprog.lm.backends.native import build_auto, build_native
from cscprog.lm.backends.remote import ENGINES, NO_KEY_PLACEHOLDER, engine_in_use

__all__ = ["BACKENDS", "Backend", "ENGINES", "NO_KEY_PLACEHOLDER", "backend_kind", "build_lm", "engine_in_use"]



class Backend(Protocol):
    """``build(settings, cache_dir, *, require_key) -> dspy.LM``: one backend kind's builder."""

    def __call__(self, settings: LMSettings, cache_dir: Path, *, require_key: bool = True) -> dspy.LM: ...


BACKENDS: dict[str, Backend] = {
    "local": build_local,
    "auto": build_auto,
    "native": build_native,
    "litellm": build_litellm,
}
"""Backend kind -> its builder."""


def backend_kind(settings: LMSettings) -> str:
    """The registry key of a role's settings: ``local`` for the embedded model, else its ``engine`` setting.

    Example:
        ```python
        backend_kind(LMSettings())  # 'local'
        ```
    """
    return "local" if settings.is_local else settings.engine


def build_lm(settings: LMSettings, *, cache_dir: Path, require_key: bool = True) -> dspy.LM:
    """The ``dspy.LM`` for one role's settings (``num_retries=0``, ``cache=True``).

    Args:
        settings: The role's settings (``config.lm_for(role)``).
        cache_dir: The cscprog cache directory (the embedded model assembles its weights there).
        require_key: False when no request will be sent (the cache's ``replay`` mode): an unset ``api_key_env``
            variable is then no error, and the LM gets a placeholder key (keys are never part of cache keys).

    Raises:
        ConfigError: ``api_key_env`` names an unset variable (with ``require_key``), ``engine = "native"``
            cannot serve the model, or the embedded model is unavailable.

    Example:
        ```python
        lm = build_lm(config.lm_for("judge"), cache_dir=config.cache.path)
        ```
    """
    return BACKENDS[backend_kind(settings)](settings, Path(cache_dir), require_key=require_key)
