"""Compile recipes: named DSPy optimizer set-ups over cscprog programs and CSConv metrics.

Installed as ``cscprog.optimizers``. :func:`compile_program` runs a recipe (``bootstrap``, ``copro``,
``mipro``, ``gepa``) at a budget (``light``, ``medium``, ``heavy``) and scores the program on a dev set
before and after; :func:`save_compiled` / :func:`load_compiled` store the compiled program with its manifest.

Example:
    ```python
    from cscprog.optimizers import compile_program, load_compiled, save_compiled, training_examples

    result = compile_program(ResponseGenerator(), train, dev, recipe="bootstrap", budget="light")
    save_compiled("program.json", result, runtime)
    generator = load_compiled("program.json")
    ```
"""

from cscprog.optimizers.compile import CompileResult, compile_program, evaluate_program, training_examples
from cscprog.optimizers.persist import (
    COMPILED_FORMAT,
    CompiledProgramError,
    load_compiled,
    read_compiled,
    save_compiled,
)
from cscprog.optimizers.recipes import BUDGETS, RECIPES, Recipe, build_optimizer, check_available, recipe_settings

__all__ = [
    "BUDGETS",
    "COMPILED_FORMAT",
    "RECIPES",
    "CompileResult",
    "CompiledProgramError",
    "Recipe",
    "build_optimizer",
    "check_available",
    "compile_program",
    "evaluate_program",
    "load_compiled",
    "read_compiled",
    "recipe_settings",
    "save_compiled",
    "training_examples",
]
