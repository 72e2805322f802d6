"""Where log records go during a command, and how many: ``cscprog``, ``cscprog -v``, ``cscprog -vv``.

Default (quiet): cscprog's own warnings, and only errors from DSPy, litellm and the HTTP clients, so no
"LM response was truncated" lines between progress updates and no DSPy ``Average Metric`` lines beside cscprog's
own scores. ``-v``: cscprog's progress details and the libraries' warnings. ``-vv``: everything (debugging).

DSPy installs its own stderr handler when it is imported; :func:`configure_logging` takes it off so every record
goes through one handler, which writes to whatever ``sys.stderr`` is at that moment: a live progress line
(rich redirects stderr while it draws) then prints records above itself instead of being torn by them.

Example:
    ```python
    configure_logging(1)   # what ``cscprog -v`` does
    ```
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from cscprog.redaction import RedactingFilter, secret_values

__all__ = ["LIBRARY_LOGGERS", "LogStream", "configure_logging", "levels", "quiet_library_bars"]

LIBRARY_LOGGERS = ("dspy", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "httpcore", "openai",
                   "urllib3", "ray")
"""Loggers of the libraries under cscprog."""

_LEVELS = {0: (logging.WARNING, logging.ERROR), 1: (logging.INFO, logging.WARNING), 2: (logging.DEBUG, logging.DEBUG)}


def levels(verbosity: int) -> tuple[int, int]:
    """``(cscprog's level, the libraries' level)`` for ``verbosity`` (the number of ``-v``).

    Example:
        ```python
        levels(0)   # (logging.WARNING, logging.ERROR)
        ```
    """
    return _LEVELS[min(max(verbosity, 0), 2)]


class _StderrHandler(logging.StreamHandler):
    """A stream handler bound to the current ``sys.stderr`` at each record, not the one at creation."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(verbosity: int) -> None:
    """Send cscprog's and its libraries' records to stderr at the levels ``verbosity`` selects, keys redacted.

    When logging is already configured by someone else (an application embedding the CLI, pytest), its
    handlers are kept and only the levels and DSPy's private handler change.

    Example:
        ```python
        configure_logging(0)   # quiet: warnings from cscprog, errors from the libraries
        ```
    """
    ours, theirs = levels(verbosity)
    root = logging.getLogger()
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(min(ours, theirs))
    for handler in root.handlers:  # no key or URL credential reaches a log line
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter(secret_values()))
    logging.getLogger("cscprog").setLevel(ours)
    if verbosity or "LITELLM_LOG" not in os.environ:
        os.environ["LITELLM_LOG"] = logging.getLevelName(theirs)  # litellm reads it when it is (lazily) imported
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(theirs)
        for own in [h for h in logger.handlers if h.get_name() == "dspy_handler" or name.startswith("LiteLLM")]:
            logger.removeHandler(own)
        logger.propagate = True


class LogStream(io.TextIOBase):
    """A text stream whose lines become INFO records of a logger: for libraries that ``print()`` progress.

    Example:
        ```python
        with contextlib.redirect_stdout(LogStream("dspy")):
            compile_program(...)   # DSPy's "Bootstrapped 3 full traces" becomes a log record (shown with -vv)
        ```
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.logger = logging.getLogger(name)
        self._pending = ""

    def writable(self) -> bool:  # noqa: D102
        return True

    def write(self, text: str) -> int:  # noqa: D102
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            if line.strip():
                self.logger.info(line.rstrip())
        return len(text)

    def flush(self) -> None:  # noqa: D102
        if self._pending.strip():
            self.logger.info(self._pending.rstrip())
        self._pending = ""


def quiet_library_bars(argv: Sequence[str]) -> None:
    """Hide DSPy's own tqdm bars unless ``-vv`` comes before the command (tqdm reads TQDM_DISABLE on import).

    Call it before DSPy is imported; ``TQDM_DISABLE`` set by the user wins.

    Example:
        ```python
        quiet_library_bars(sys.argv[1:])
        ```
    """
    verbosity = 0
    for arg in argv:
        if not arg.startswith("-"):
            break
        if arg == "--verbose":
            verbosity += 1
        elif arg.startswith("-v") and set(arg[1:]) == {"v"}:
            verbosity += len(arg) - 1
    if verbosity < 2:
        os.environ.setdefault("TQDM_DISABLE", "1")
