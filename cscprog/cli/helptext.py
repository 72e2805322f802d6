"""Help text that says what its author wrote: markup escaped, paragraphs reflowed, no ``<bool>``/``<str>`` metavars.

typer renders help with rich markup, so bracketed words vanish (``cscprog[ray]`` printed as ``cscprog``, ``[run]``
as nothing); it keeps a docstring's hard line breaks; it labels every flag ``<bool>`` and every text option
``<str>``. :func:`tidy_help` fixes all of that once, on the click command tree built from the typer app, so every
command (and any command added later) is covered.

Example:
    ```python
    command = typer.main.get_command(app)
    tidy_help(command)
    ```
"""

from __future__ import annotations

import inspect
import re
from typing import Any

__all__ = ["reflow", "tidy_help"]

_ITEM = re.compile(r"^\s*([-*•]|\d+\.)\s")
_CODE = re.compile(r"`([^`]+)`")


def reflow(text: str) -> str:
    """``text`` with each paragraph's lines joined (list items kept apart), code quoted '...', and markup escaped.

    Example:
        ```python
        reflow("Install with\\n``pip install cscprog[ray]``.")   # "Install with 'pip install cscprog\\\\[ray]'."
        ```
    """
    from rich.markup import escape

    paragraphs = []
    for block in inspect.cleandoc(text).split("\n\n"):
        lines: list[str] = []
        for line in block.splitlines():
            if lines and not _ITEM.match(line):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.strip())
        paragraphs.append("\n".join(escape(_CODE.sub(r"'\1'", line.replace("``", "`"))) for line in lines))
    return "\n\n".join(paragraphs)


def _no_type(ctx: Any) -> None:
    return None


def tidy_help(command: Any, _seen: set[int] | None = None) -> Any:
    """Reflow and escape the help of ``command`` and of everything under it; give options honest metavars.

    Flags show no metavar (they take no value); text options show their own name (``--engine ENGINE``).
    Returns ``command``.

    Example:
        ```python
        tidy_help(typer.main.get_command(app)).main(["--help"])
        ```
    """
    seen = set() if _seen is None else _seen
    if id(command) in seen:
        return command
    seen.add(id(command))
    for attribute in ("help", "short_help", "epilog"):
        text = getattr(command, attribute, None)
        if text:
            setattr(command, attribute, reflow(text))
    ctx = command.context_class(command)
    params = list(command.params)
    helper = command.get_help_option(ctx)
    if helper is not None:
        params.append(helper)
    for param in params:
        if getattr(param, "help", None):
            param.help = reflow(param.help)
        if param.param_type_name == "argument" and param.display_type(ctx) in ("<str>", "<list[str]>"):
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = _no_type  # the name says it: TARGETS..., not targets... <list[str]>
            continue
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""  # a flag (or a counted one, -vv) takes no value: show none
        elif param.display_type(ctx) in ("<str>", "<list[str]>"):
            param.metavar = max(param.opts, key=len).lstrip("-").replace("-", "_").upper()
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub, seen)
    return command
