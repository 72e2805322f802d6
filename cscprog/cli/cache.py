"""``cscprog cache``: inspect, export, import and clear the LLM response cache.

The cache directory comes from the configuration (``[cache] dir``, or ``$CSCPROG_CACHE_DIR``).

Example:
    ```
    cscprog cache stats
    cscprog cache export run.cache.jsonl.gz --model openai/gpt-4o-mini
    CSCPROG_CACHE_DIR=/tmp/check cscprog cache import run.cache.jsonl.gz
    cscprog cache clear --endpoint http://localhost:8080/v1 --yes
    ```
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cscprog.cache import CacheError, ResponseCache, normalize_endpoint, read_last_run
from cscprog.cli.app import app
from cscprog.cli.common import ConfigOption, load_cli_config
from cscprog.config import CacheSettings
from cscprog.errors import CscprogError

cache_app = typer.Typer(
    help="Inspect, export, import and clear the LLM response cache.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")

CONFIG_OPTION = ConfigOption
DIR_OPTION = typer.Option(None, "--dir", help="The cache directory (default: [cache] dir of the config, or "
                                                "CSCPROG_CACHE_DIR); e.g. the demo's cscprog-demo/cache.")


class CacheCommandError(CscprogError):
    """Bad input to a ``cscprog cache`` command."""


class CacheNotFoundError(CacheCommandError):
    """The configured cache directory does not exist."""


def _settings(config: Path | None, directory: Path | None = None) -> CacheSettings:
    settings = load_cli_config(config).cache
    return settings if directory is None else settings.model_copy(update={"dir": str(directory)})


RECOVERY_HINT = (
    "the cache commands move a damaged SQLite shard aside into quarantine/ and rebuild it; if this keeps "
    "happening, move the cache directory away (or `cscprog cache clear -y`) and re-import a bundle "
    "(`cscprog cache import BUNDLE`) or let the next run recompute the entries"
)


@contextlib.contextmanager
def _open(settings: CacheSettings) -> Iterator[ResponseCache]:
    """The cache, opened for maintenance (damaged shards are quarantined); SQLite errors become a clear CacheError."""
    try:
        with ResponseCache.from_settings(settings, mode="readwrite") as cache:
            yield cache
            for path in cache.quarantined:
                typer.echo(f"note: a damaged cache shard was moved to {path} and rebuilt empty; the entries it "
                           "held are recomputed when next needed (or re-import a bundle)", err=True)
    except sqlite3.Error as error:
        raise CacheError(f"{settings.path}: the cache cannot be read ({error}); {RECOVERY_HINT}") from None


def _existing(settings: CacheSettings) -> contextlib.AbstractContextManager[ResponseCache]:
    if not settings.path.is_dir():
        raise CacheNotFoundError(f"no cache at {settings.path} (set [cache] dir or CSCPROG_CACHE_DIR)")
    return _open(settings)


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def _empty_stats(settings: CacheSettings) -> dict[str, Any]:
    return {
        "directory": str(settings.path),
        "version": settings.version,
        "entries": 0,
        "corrupt": 0,
        "bytes": 0,
        "entry_bytes": 0,
        "oldest": None,
        "newest": None,
        "by_model": {},
        "by_endpoint": {},
        "by_role": {},
        "last_run": read_last_run(settings.path),
        "quarantined": [],
    }


def _group_table(title: str, rows: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split()[-1].capitalize(), overflow="fold")
    for name in ("entries", "size", "prompt tok", "completion tok", "cost USD"):
        table.add_column(name, justify="right")
    for name, row in rows.items():
        table.add_row(
            name,
            str(row["entries"]),
            _size(row["bytes"]),
            str(row["prompt_tokens"]),
            str(row["completion_tokens"]),
            f"{row['cost']:.4f}",
        )
    return table


@cache_app.command("stats")
def stats_command(
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
    config: Path | None = CONFIG_OPTION,
    directory: Path | None = DIR_OPTION,
) -> None:
    """Entries, size, tokens and cost per model, endpoint and role; hits and misses of the last run."""
    settings = _settings(config, directory)
    if settings.path.is_dir():
        with _open(settings) as cache:
            stats = cache.stats()
        stats.pop("process", None)  # this command's own (empty) counters
    else:
        stats = _empty_stats(settings)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    # pipes and logs: wide enough for URLs; markup off: paths and model names are shown as written
    console = Console(width=None if sys.stdout.isatty() else 120, markup=False, highlight=False)
    summary = f"{stats['entries']} entries, {_size(stats['bytes'])} on disk in {stats['directory']}"
    if stats["corrupt"]:
        summary += f", {stats['corrupt']} corrupt"
    if stats["oldest"]:
        summary += f" (stored {stats['oldest']} .. {stats['newest']})"
    console.print(summary)
    for group, title in (("by_model", "by model"), ("by_endpoint", "by endpoint"), ("by_role", "by role")):
        if stats[group]:
            console.print(_group_table(title, stats[group]))
    last = stats.get("last_run")
    if last:
        saved = last.get("saved", {})
        console.print(
            f"last run ({last.get('mode')}, finished {last.get('finished')}): {last.get('hits', 0)} hits, "
            f"{last.get('misses', 0)} misses, {last.get('stores', 0)} stored, {last.get('errors', 0)} corrupt; "
            f"saved {saved.get('total_tokens', 0)} tokens, {saved.get('cost', 0.0):.4f} USD"
        )
    else:
        console.print("last run: none recorded")


@cache_app.command("export")
def export_command(
    file: Path = typer.Argument(..., help="The bundle to write (gzip-compressed JSON lines)."),
    model: str | None = typer.Option(None, "--model", help="Only the entries of this model string."),
    config: Path | None = CONFIG_OPTION,
    directory: Path | None = DIR_OPTION,
) -> None:
    """Write the cache (or one model's entries) to a portable bundle that replays a run elsewhere."""
    with _existing(_settings(config, directory)) as cache:
        count = cache.export(file, model=model)
    typer.echo(f"exported {count} entries to {file}")


@cache_app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="A bundle written by `cscprog cache export`."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace entries that exist already."),
    config: Path | None = CONFIG_OPTION,
    directory: Path | None = DIR_OPTION,
) -> None:
    """Add the entries of a bundle to the cache, after checking every line."""
    with _open(_settings(config, directory)) as cache:
        count = cache.import_bundle(file, overwrite=overwrite)
    typer.echo(f"imported {count} entries from {file}")


@cache_app.command("clear")
def clear_command(
    model: str | None = typer.Option(None, "--model", help="Only the entries of this model string."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only this api_base ('default' for none)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    config: Path | None = CONFIG_OPTION,
    directory: Path | None = DIR_OPTION,
) -> None:
    """Delete every cache entry, or those of one model and/or endpoint."""
    settings = _settings(config, directory)
    if not settings.path.is_dir():
        typer.echo(f"removed 0 entries (no cache at {settings.path})")
        return
    if endpoint is not None and endpoint != "default" and normalize_endpoint(endpoint) is None:
        raise CacheCommandError(f"--endpoint {endpoint!r} is not a URL")
    what = " and ".join(
        part for part in (f"model {model}" if model else "", f"endpoint {endpoint}" if endpoint else "") if part
    )
    if not yes and not typer.confirm(f"Delete the cache entries of {what or 'every model'} in {settings.path}?"):
        typer.echo("aborted: nothing removed", err=True)
        raise typer.Exit(1)
    with _open(settings) as cache:
        count = cache.clear(model=model, endpoint=endpoint)
    typer.echo(f"removed {count} entries")
