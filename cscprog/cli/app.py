"""The typer application, its global options and the error boundary shared by every command."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from cscprog.cli.common import CACHE_MODE_OPTION
from cscprog.cli.helptext import tidy_help
from cscprog.cli.logs import configure_logging
from cscprog.config import CACHE_MODES
from cscprog.errors import CscprogError
from cscprog.redaction import redact_text, secret_values

app = typer.Typer(
    name="cscprog",
    help="Customer-support conversations with LLMs: datasets, synthesis, evaluation and compiled programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, each registering its commands on `app` when imported.
COMMAND_MODULES = ("framework", "data", "cache", "csconv", "classifier", "rolecs", "respond", "evaluate", "compare",
                   "export", "finetune", "view", "demo", "arena")


@app.callback()
def _global(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                help="More log lines on stderr: -v adds cscprog's details and the warnings of DSPy "
                                     "and litellm (e.g. truncated LM responses); -vv adds everything (debugging)."),
    cache_mode: str | None = typer.Option(
        None, "--cache-mode",
        help="readwrite, replay (a cache miss is an error: verify a published run offline), off or refresh, for "
             "this command; the same as CSCPROG_CACHE_MODE.",
    ),
) -> None:
    """Customer-support conversations with LLMs: datasets, synthesis, evaluation and compiled programs."""
    configure_logging(verbose)
    if cache_mode is not None:
        if cache_mode not in CACHE_MODES:
            raise typer.BadParameter(f"must be one of {', '.join(CACHE_MODES)}, got {cache_mode!r}",
                                     param_hint="--cache-mode")
        CACHE_MODE_OPTION.set(cache_mode)  # applied by load_cli_config to this command's configuration


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"cscprog.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"cscprog.cli.{name}":
                raise


def cli_command() -> Any:
    """The click command behind :data:`app`: every command module loaded, every help text tidied.

    Example:
        ```python
        cli_command().main(["demo", "--help"], prog_name="cscprog", standalone_mode=False)
        ```
    """
    _load_commands()
    return tidy_help(typer.main.get_command(app))


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv`` and return the exit status (2 for bad input, with one line on stderr).

    typer (0.29+) parses with its own copy of click, so its usage errors, ``Exit`` and ``Abort`` are handled by
    its standalone mode; errors cscprog raises on bad input become status 2 and one line, never a traceback.
    """
    command = cli_command()
    option = CACHE_MODE_OPTION.set(None)
    try:
        command.main(args=argv, prog_name="cscprog", standalone_mode=True)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except CscprogError as error:
        typer.echo(f"error: {redact_text(str(error), secret_values())}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    finally:
        CACHE_MODE_OPTION.reset(option)
    return 0
