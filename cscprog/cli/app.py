"""The typer application, its global options and the error boundary shared by every command."""

from __future__ import annotations

import importlib
import logging

import click
import typer

from cscprog.errors import CscprogError

app = typer.Typer(
    name="cscprog",
    help="Customer-support conversations with LLMs: datasets, synthesis, evaluation and compiled programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each registering its commands on `app` when imported.
COMMAND_MODULES = ("framework", "data", "cache")


@app.callback()
def _global(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr.")) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"cscprog.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"cscprog.cli.{name}":
                raise


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return the exit status (2 for bad input, with one line on stderr)."""
    _load_commands()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="cscprog", standalone_mode=False)
    except CscprogError as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as error:
        return error.exit_code
    return result if isinstance(result, int) else 0
