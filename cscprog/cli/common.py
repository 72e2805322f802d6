"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
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
    """A rich console on stdout (or stderr); plain text when not a terminal."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def config_and_taxonomy(config_path: Path | None, taxonomy: str | None) -> tuple[Config, Taxonomy]:
    """Load the config and the taxonomy (the ``--taxonomy`` option wins over ``[framework]``)."""
    config = load_config(config_path)
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
