"""The whole configuration and how it is read: one TOML file, validated, with environment overrides.

Where the file comes from, first match wins: the ``path`` argument (the CLI's ``--config``), then
``$CSCPROG_CONFIG``, then ``./cscprog.toml``, then the built-in defaults (the embedded local model).
Environment variables then override the common keys: ``CSCPROG_MODEL``, ``CSCPROG_API_BASE``,
``CSCPROG_CACHE_DIR``, ``CSCPROG_CACHE_MODE`` and ``CSCPROG_MODELS_DIR``.

Example:
    ```python
    from cscprog.config import load_config

    config = load_config("cscprog.toml")
    customer = config.lm_for("customer")  # [lm] merged with [roles.customer]
    ```
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from cscprog.config.sections import (
    LOCAL_MAX_TOKENS,
    ROLE_DEFAULTS,
    BudgetSettings,
    CacheSettings,
    FinetuneSettings,
    FrameworkSettings,
    LMSettings,
    MetricsSettings,
    RunSettings,
    Section,
)
from cscprog.errors import ConfigError, TaxonomyError
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.roles import ROLES

ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "CSCPROG_MODEL": ("lm", "model"),
    "CSCPROG_API_BASE": ("lm", "api_base"),
    "CSCPROG_CACHE_DIR": ("cache", "dir"),
    "CSCPROG_CACHE_MODE": ("cache", "mode"),
    "CSCPROG_MODELS_DIR": ("lm", "models_dir"),
}


class Config(Section):
    """The whole validated configuration."""

    lm: LMSettings = Field(default_factory=LMSettings)
    roles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    framework: FrameworkSettings = Field(default_factory=FrameworkSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    source: str | None = Field(default=None, exclude=True)

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, overrides in roles.items():
            if name not in ROLES:
                raise ValueError(f"unknown role {name!r}; roles are: {', '.join(ROLES)}")
            if not isinstance(overrides, dict):
                raise ValueError(f"roles.{name} must be a table")
            unknown = set(overrides) - set(LMSettings.model_fields)
            if unknown:
                raise ValueError(f"roles.{name}: unknown key(s) {', '.join(sorted(unknown))}")
            LMSettings(**{**overrides})  # validate the values early, with the role in the message
        return roles

    def lm_for(self, role: str) -> LMSettings:
        """The settings of one role: :data:`ROLE_DEFAULTS` for what ``[lm]`` leaves unset, with ``[lm]`` and then
        ``[roles.<role>]`` laid over them.

        On the embedded model a role with no ``max_tokens`` configured gets its :data:`LOCAL_MAX_TOKENS` limit.

        Raises:
            ConfigError: ``role`` is not one of :data:`ROLES`.
        """
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
        overrides = self.roles.get(role, {})
        defaults = {key: value for key, value in ROLE_DEFAULTS.get(role, {}).items()
                    if key not in self.lm.model_fields_set or getattr(self.lm, key) is None}
        settings = self.lm
        if overrides or defaults:
            merged = {**self.lm.model_dump(), **defaults, **overrides}
            settings = self.lm.model_copy(update=LMSettings(**merged).model_dump())
        if settings.is_local and settings.max_tokens is None and role in LOCAL_MAX_TOKENS:
            settings = settings.model_copy(update={"max_tokens": LOCAL_MAX_TOKENS[role]})
        return settings

    def taxonomy(self) -> Taxonomy:
        """The taxonomy named by ``[framework]``, with its stage overrides applied.

        Raises:
            ConfigError: the taxonomy cannot be loaded or an override names an unknown stage or strategy.
        """
        try:
            return load_taxonomy(self.framework.taxonomy, stages=self.framework.stages)
        except TaxonomyError as error:
            raise ConfigError(f"{self.source or '<config>'}: framework: {error}") from None

    def redacted(self) -> dict[str, Any]:
        """The configuration as plain data for manifests. Keys are never in the config, only env names."""
        data = self.model_dump(mode="json")
        data["source"] = self.source
        return data


def _with_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for variable, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(variable)
        if value:
            table = data.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"[{section}] must be a table")
            table[key] = value
    return data


def _describe(error: ValidationError, source: str) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{where}: {message}")
    return f"{source}: invalid configuration: " + "; ".join(problems)


def config_from_dict(data: dict[str, Any], *, source: str = "<dict>", environ: dict[str, str] | None = None) -> Config:
    """Validate a configuration given as a dict (the parsed TOML), applying environment overrides.

    Raises:
        ConfigError: a key is unknown or a value is invalid; the message names the key.
    """
    merged = _with_env(data, dict(os.environ) if environ is None else environ)
    try:
        config = Config(**merged)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None
    return config.model_copy(update={"source": source})


def find_config_file(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Path | None:
    """The config file to use: ``path``, else ``$CSCPROG_CONFIG``, else ``./cscprog.toml``, else None.

    Raises:
        ConfigError: an explicitly named file (argument or variable) does not exist.
    """
    environ = dict(os.environ) if environ is None else environ
    if path is not None:
        candidate = Path(path).expanduser()
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: config file not found")
        return candidate
    if environ.get("CSCPROG_CONFIG"):
        candidate = Path(environ["CSCPROG_CONFIG"]).expanduser()
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: config file not found (from CSCPROG_CONFIG)")
        return candidate
    local = Path("cscprog.toml")
    return local if local.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None, *, environ: dict[str, str] | None = None) -> Config:
    """Load, validate and return the configuration (see the module docstring for precedence).

    Args:
        path: An explicit TOML file; None searches ``$CSCPROG_CONFIG`` and ``./cscprog.toml``.
        environ: The environment to read overrides from (default: ``os.environ``).

    Raises:
        ConfigError: the file is missing, is not valid TOML, or has an invalid key or value.
    """
    environ = dict(os.environ) if environ is None else environ
    found = find_config_file(path, environ)
    if found is None:
        return config_from_dict({}, source="<defaults>", environ=environ)
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{found}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{found}: not UTF-8 text") from None
    return config_from_dict(data, source=str(found), environ=environ)
