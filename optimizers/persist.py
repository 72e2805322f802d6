"""Save a compiled program with its manifest, and load it back only into the class and version it was made for.

The file is one JSON object::

    {"format": "cscprog-compiled-program/1",
     "program_class": "cscprog.agents.responder.ResponseGenerator",
     "cscprog_version": "0.1.0",
     "manifest": {"recipe", "optimizer", "budget", "settings", "before", "after", "improvement",
                  "versions", "taxonomy", "program_init", "config", "run", ...},
     "state": <program.dump_state(): per predictor its demos and instructions>}

Loading builds ``program_cls`` (with the taxonomy and constructor settings it was compiled with) and loads the
state. A file compiled for another program class, or by another cscprog version (prompts and state layout
may differ between versions), is refused with a :class:`CompiledProgramError` saying what to do.

Example:
    ```python
    from cscprog.optimizers import load_compiled, save_compiled

    save_compiled("program.json", result, runtime)
    generator = load_compiled("program.json")          # a ResponseGenerator with the compiled demos
    ```
"""

from __future__ import annotations

import inspect
import json
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy

import cscprog
from cscprog.agents.responder import ResponseGenerator
from cscprog.errors import CscprogError
from cscprog.framework.loading import taxonomy_from_dict
from cscprog.runs.manifest import build_manifest, write_manifest
from cscprog.stamps import package_version

if TYPE_CHECKING:
    from cscprog.optimizers.compile import CompileResult

    from cscprog.lm.runtime import Runtime

__all__ = ["COMPILED_FORMAT", "CompiledProgramError", "load_compiled", "read_compiled", "save_compiled"]

COMPILED_FORMAT = "cscprog-compiled-program/1"
"""The ``format`` tag of a compiled-program file."""

_SIMPLE = (str, int, float, bool, type(None))


class CompiledProgramError(CscprogError):
    """A compiled-program file cannot be used: unreadable, or made for another program class or version."""


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _program_init(program: dspy.Module) -> dict[str, Any]:
    """Constructor arguments that can be read back from the program's attributes (simple values only)."""
    found = {}
    for name in inspect.signature(type(program).__init__).parameters:
        if name in ("self", "taxonomy"):
            continue
        value = getattr(program, name, inspect.Parameter.empty)
        if isinstance(value, _SIMPLE):
            found[name] = value
    return found


def save_compiled(
    path: str | os.PathLike[str], result: CompileResult, runtime: Runtime | None = None,
    *, inputs: dict[str, Any] | None = None,
) -> Path:
    """Write the compiled program of ``result`` and its manifest to ``path`` (atomically).

    Args:
        path: The JSON file to write.
        result: From :func:`cscprog.optimizers.compile_program`.
        runtime: The runtime of the compile: its configuration (redacted), models, cache and usage go into the
            manifest.
        inputs: What the compile read (e.g. train and dev file paths), for the manifest.

    Returns:
        The path written.

    Example:
        ```python
        save_compiled("program.json", result, runtime, inputs={"train": "rolecs.jsonl"})
        ```
    """
    program = result.program
    taxonomy = getattr(program, "taxonomy", None)
    manifest: dict[str, Any] = {
        "recipe": result.recipe,
        "optimizer": result.settings.get("optimizer"),
        "budget": result.settings.get("budget"),
        "settings": result.settings,
        "before": result.before,
        "after": result.after,
        "improvement": result.improvement,
        "duration_s": result.duration_s,
        "inputs": inputs or {},
        "versions": {
            "cscprog": cscprog.__version__,
            "dspy": getattr(dspy, "__version__", None) or package_version("dspy"),
            "python": platform.python_version(),
            "optuna": package_version("optuna"),
            "gepa": package_version("gepa"),
        },
        "taxonomy": taxonomy.to_dict() if taxonomy is not None and hasattr(taxonomy, "to_dict") else None,
        "program_init": _program_init(program),
    }
    if runtime is not None:
        run = build_manifest(runtime, command="compile", inputs=inputs or {}, outputs={"program": str(path)})
        manifest["config"] = run.pop("config", None)
        manifest["run"] = run
    document = {
        "format": COMPILED_FORMAT,
        "program_class": _class_path(type(program)),
        "cscprog_version": cscprog.__version__,
        "manifest": manifest,
        "state": program.dump_state(),
    }
    return write_manifest(path, json.loads(json.dumps(document, default=str)))


def read_compiled(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed compiled-program file (format checked; class and version not yet).

    Raises:
        CompiledProgramError: the file is missing, not JSON, or not a cscprog compiled program.

    Example:
        ```python
        read_compiled("program.json")["manifest"]["after"]
        ```
    """
    source = Path(path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompiledProgramError(f"{source}: no such compiled program file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompiledProgramError(f"{source}: not a readable JSON file ({error})") from None
    if not isinstance(document, dict) or document.get("format") != COMPILED_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise CompiledProgramError(
            f"{source}: not a cscprog compiled program (format {found!r}, expected {COMPILED_FORMAT!r}); "
            "write one with `cscprog compile`"
        )
    for key in ("program_class", "cscprog_version", "state"):
        if key not in document:
            raise CompiledProgramError(f"{source}: compiled program file lacks {key!r}")
    return document


def load_compiled(
    path: str | os.PathLike[str], program_cls: type[dspy.Module] | None = None, *, check_version: bool = True,
    **init_kwargs: Any,
) -> dspy.Module:
    """Build ``program_cls`` as it was compiled and load the compiled state from ``path``.

    Args:
        path: A file written by :func:`save_compiled`.
        program_cls: The expected program class (default :class:`cscprog.agents.responder.ResponseGenerator`).
        check_version: Refuse a file written by another cscprog version (True).
        **init_kwargs: Constructor arguments that replace the recorded ones (e.g. ``taxonomy=``).

    Returns:
        The program, ready to call.

    Raises:
        CompiledProgramError: unreadable file, another program class, another cscprog version, or a state
            that does not fit the program.

    Example:
        ```python
        generator = load_compiled("program.json")
        pred = generator(history="(the conversation has not started)", language="en")
        ```
    """
    if program_cls is None:
        program_cls = ResponseGenerator
    document = read_compiled(path)
    wanted = _class_path(program_cls)
    if document["program_class"] != wanted:
        raise CompiledProgramError(
            f"{path}: compiled for {document['program_class']}, not {wanted}; load it with that class or "
            f"compile a {program_cls.__name__}"
        )
    if check_version and document["cscprog_version"] != cscprog.__version__:
        raise CompiledProgramError(
            f"{path}: compiled with cscprog {document['cscprog_version']}, but this is cscprog "
            f"{cscprog.__version__}; recompile it with `cscprog compile` (prompts and state differ between versions)"
        )
    manifest = document.get("manifest") or {}
    parameters = inspect.signature(program_cls.__init__).parameters
    kwargs = {name: value for name, value in (manifest.get("program_init") or {}).items() if name in parameters}
    if "taxonomy" in parameters and "taxonomy" not in init_kwargs and manifest.get("taxonomy"):
        kwargs["taxonomy"] = taxonomy_from_dict(manifest["taxonomy"], source=f"{path} (manifest)")
    kwargs.update(init_kwargs)
    program = program_cls(**kwargs)
    try:
        program.load_state(document["state"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CompiledProgramError(f"{path}: the saved state does not fit {wanted}: {error}") from None
    return program
