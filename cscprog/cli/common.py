"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cscprog.config import Config, load_config
from cscprog.errors import ConfigError
from cscprog.framework import Taxonomy, load_taxonomy

ConfigOption = typer.Option(None, "--config", "-c", help="Config file (else $CSCPROG_CONFIG, else ./cscprog.toml).")
TaxonomyOption = typer.Option(None, "--taxonomy", help="csc, esconv or a taxonomy file (default: from config).")
JsonOption = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")


def console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); plain text when not a terminal.

    Markup is off: what cscprog prints (config keys such as ``[metrics] bleurt_checkpoint``, install hints such as
    ``cscprog[neural]``, file names, model output) is shown as written, never read as a style tag.
    """
    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False)


CACHE_MODE_OPTION: ContextVar[str | None] = ContextVar("cscprog_cache_mode_option", default=None)
"""The global ``--cache-mode`` of the command being run (set by the CLI's callback, reset after each command)."""


def load_cli_config(config_path: Path | None) -> Config:
    """The configuration of a command: ``--config`` (or the usual search), then the global ``--cache-mode``.

    The option is applied to the loaded configuration, so it reaches every runtime and every Ray worker the
    command builds (they get the validated configuration), and nothing of the process environment changes.

    Example:
        ```python
        config = load_cli_config(Path("cscprog.toml"))  # after `cscprog --cache-mode replay ...`: mode "replay"
        ```
    """
    config = load_config(config_path)
    mode = CACHE_MODE_OPTION.get()
    if mode is None or mode == config.cache.mode:
        return config
    return config.model_copy(update={"cache": config.cache.model_copy(update={"mode": mode})})


def config_and_taxonomy(config_path: Path | None, taxonomy: str | None) -> tuple[Config, Taxonomy]:
    """Load the config (:func:`load_cli_config`) and the taxonomy (``--taxonomy`` wins over ``[framework]``)."""
    config = load_cli_config(config_path)
    if taxonomy is None:
        return config, config.taxonomy()
    return config, load_taxonomy(taxonomy, stages=config.framework.stages if taxonomy == config.framework.taxonomy
                                 else None)


def parse_shares(text: str, option: str, example: str) -> dict[str, float]:
    """``name=share`` pairs separated by commas (``train=0.8,dev=0.2``), in order.

    Raises:
        ConfigError: a part is not ``name=number``, or a name repeats; the message names ``option``.
    """
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            share = float(value)
        except ValueError:
            share = None
        if not sep or not name or share is None:
            raise ConfigError(f"{option}: expected name=share pairs like {example}, got {part!r}")
        if name in shares:
            raise ConfigError(f"{option}: split {name!r} is given twice")
        shares[name] = share
    return shares


def print_json(data: Any) -> None:
    """Write one JSON object and a newline to stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()
