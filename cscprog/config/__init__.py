"""The cscprog configuration: one TOML file, validated, with environment overrides.

Where the file comes from, first match wins: the ``path`` argument (the CLI's ``--config``), then
``$CSCPROG_CONFIG``, then ``./cscprog.toml``, then the built-in defaults (the embedded local model).
Environment variables then override the common keys: ``CSCPROG_MODEL``, ``CSCPROG_API_BASE``,
``CSCPROG_CACHE_DIR``, ``CSCPROG_CACHE_MODE`` and ``CSCPROG_MODELS_DIR``.

API keys never live in the file: ``api_key_env`` names the environment variable that holds the key,
and :meth:`LMSettings.api_key` reads it at call time.

Example:
    ```python
    from cscprog.config import load_config

    config = load_config("cscprog.toml")
    customer = config.lm_for("customer")  # [lm] merged with [roles.customer]
    print(customer.model, customer.temperature)
    ```
"""

from cscprog.config.loading import ENV_OVERRIDES, Config, config_from_dict, find_config_file, load_config
from cscprog.config.sections import (
    CACHE_MODES,
    LOCAL_MAX_TOKENS,
    LOCAL_MODEL,
    ROLE_DEFAULTS,
    ROLEPLAY_ROLES,
    BudgetSettings,
    CacheMode,
    CacheSettings,
    FinetuneSettings,
    FrameworkSettings,
    LMSettings,
    MetricsSettings,
    RunSettings,
    Section,
)
from cscprog.roles import ROLES

__all__ = [
    "CACHE_MODES",
    "ENV_OVERRIDES",
    "LOCAL_MAX_TOKENS",
    "LOCAL_MODEL",
    "ROLEPLAY_ROLES",
    "ROLES",
    "ROLE_DEFAULTS",
    "BudgetSettings",
    "CacheMode",
    "CacheSettings",
    "Config",
    "FinetuneSettings",
    "FrameworkSettings",
    "LMSettings",
    "MetricsSettings",
    "RunSettings",
    "Section",
    "config_from_dict",
    "find_config_file",
    "load_config",
]
