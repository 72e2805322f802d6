"""The ``cscprog`` command line: a thin layer over the library.

Each command group lives in its own module of this package and registers itself on :data:`app`.
Errors cscprog raises on bad input end the process with status 2 and one line on stderr.

Every command module is imported to build the command (``cscprog --help`` included), so a command imports the
pipeline it runs (the arena, the demo, evaluation, compiling...) inside its function: one command does not pay
for importing all the others' (``python -X importtime -c "from cscprog.cli import main; main(['--help'])"``
shows what is loaded). These are the only function-level imports of cscprog modules; they reach down the
layers, never up (``tests/test_layers.py``).
"""

from __future__ import annotations

import sys

from cscprog.cli.app import app, run
from cscprog.cli.logs import quiet_library_bars

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cscprog`` console script."""
    args = sys.argv[1:] if argv is None else argv
    quiet_library_bars(args)
    return run(args)
