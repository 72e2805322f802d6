"""Named compile recipes: which DSPy optimizer, with which settings, for each budget.

* ``bootstrap``: light ``BootstrapFewShot`` with 2 bootstrapped + 2 labeled demos, 1 round; medium
  ``BootstrapFewShotWithRandomSearch`` with 6 candidate programs, 3 + 3 demos; heavy random search with 12
  candidates, 4 + 4 demos.
* ``copro``: ``COPRO`` with breadth 3 / depth 1 (light), 6 / 2 (medium), 10 / 3 (heavy), temperature 1.0.
* ``mipro``: ``MIPROv2`` with ``auto`` = the budget and 2 + 2 / 3 + 3 / 4 + 4 demos.
* ``gepa``: ``GEPA`` with ``auto`` = the budget, reflection minibatch 3, Pareto candidate selection, merge on.

Demos are whole conversation transcripts, so the demo counts stay small: a few demos already fill the 4k
context of the embedded local model. What each recipe changes: ``bootstrap`` the demos of every predictor,
``copro`` and ``gepa`` the instructions, ``mipro`` both.

Randomness is fixed: BootstrapFewShot shuffles with ``random.Random(0)`` and random search uses the seeds
-3..N (DSPy's own fixed seeds); MIPROv2 and GEPA get the ``seed`` given to :func:`build_optimizer` (default
0). With the LM cache warm, a compile replays with no new LM calls.

LMs: the program's calls use the task LM (the runtime's ``responder`` role, or ``dspy.settings.lm``). COPRO's
and MIPROv2's instruction proposals and GEPA's reflection use the *prompt* LM: the runtime's ``reflection``
role when a runtime is active, else the task LM.

Extra packages: ``mipro`` needs ``optuna`` (``pip install 'cscprog[optimize]'``); the others need nothing
beyond DSPy.

Example:
    ```python
    from cscprog.optimizers.recipes import recipe_settings

    recipe_settings("copro", "medium")
    # {'recipe': 'copro', 'budget': 'medium', 'optimizer': 'COPRO',
    #  'init': {'breadth': 6, 'depth': 2, 'init_temperature': 1.0}, 'compile': {}}
    ```
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dspy

from cscprog.errors import ConfigError

__all__ = ["BUDGETS", "RECIPES", "Recipe", "build_optimizer", "check_available", "recipe_settings"]

BUDGETS = ("light", "medium", "heavy")
"""The budget names every recipe accepts."""


@dataclass(frozen=True)
class Recipe:
    """One named optimizer set-up.

    Attributes:
        name: The recipe name (``bootstrap``, ``copro``, ``mipro``, ``gepa``).
        summary: What it optimizes, in one line.
        optimizers: The DSPy optimizer class name per budget.
        init: Constructor settings per budget (JSON-able; metric and LMs are added when built).
        compile: ``compile()`` settings per budget.
        needs: Python packages it needs beyond DSPy.
        feedback: Whether it takes a GEPA feedback metric.
    """

    name: str
    summary: str
    optimizers: Mapping[str, str]
    init: Mapping[str, Mapping[str, Any]]
    compile: Mapping[str, Mapping[str, Any]]
    needs: tuple[str, ...] = ()
    feedback: bool = False


RECIPES: dict[str, Recipe] = {
    "bootstrap": Recipe(
        name="bootstrap",
        summary="few-shot demos from successful runs of the program on the training set",
        optimizers={"light": "BootstrapFewShot", "medium": "BootstrapFewShotWithRandomSearch",
                    "heavy": "BootstrapFewShotWithRandomSearch"},
        init={
            "light": {"max_bootstrapped_demos": 2, "max_labeled_demos": 2, "max_rounds": 1},
            "medium": {"max_bootstrapped_demos": 3, "max_labeled_demos": 3, "num_candidate_programs": 6},
            "heavy": {"max_bootstrapped_demos": 4, "max_labeled_demos": 4, "num_candidate_programs": 12},
        },
        compile={"light": {}, "medium": {}, "heavy": {}},
    ),
    "copro": Recipe(
        name="copro",
        summary="instructions, by coordinate ascent over LM-proposed rewrites",
        optimizers={budget: "COPRO" for budget in BUDGETS},
        init={
            "light": {"breadth": 3, "depth": 1, "init_temperature": 1.0},
            "medium": {"breadth": 6, "depth": 2, "init_temperature": 1.0},
            "heavy": {"breadth": 10, "depth": 3, "init_temperature": 1.0},
        },
        compile={"light": {}, "medium": {}, "heavy": {}},
    ),
    "mipro": Recipe(
        name="mipro",
        summary="instructions and demos jointly, by Bayesian search (optuna)",
        optimizers={budget: "MIPROv2" for budget in BUDGETS},
        init={
            "light": {"auto": "light", "max_bootstrapped_demos": 2, "max_labeled_demos": 2, "verbose": False,
                      "track_stats": False},
            "medium": {"auto": "medium", "max_bootstrapped_demos": 3, "max_labeled_demos": 3, "verbose": False,
                       "track_stats": False},
            "heavy": {"auto": "heavy", "max_bootstrapped_demos": 4, "max_labeled_demos": 4, "verbose": False,
                      "track_stats": False},
        },
        compile={budget: {"requires_permission_to_run": False} for budget in BUDGETS},
        needs=("optuna",),
    ),
    "gepa": Recipe(
        name="gepa",
        summary="instructions, by reflective evolution on textual feedback (Pareto front of candidates)",
        optimizers={budget: "GEPA" for budget in BUDGETS},
        init={budget: {"auto": budget, "reflection_minibatch_size": 3, "candidate_selection_strategy": "pareto",
                       "use_merge": True, "track_stats": False} for budget in BUDGETS},
        compile={"light": {}, "medium": {}, "heavy": {}},
        feedback=True,
    ),
}
"""Every recipe by name."""

_BUDGET_KEYS = {"auto", "max_metric_calls", "max_full_evals"}  # GEPA: exactly one of these may be set


def _recipe(name: str) -> Recipe:
    found = RECIPES.get(name)
    if found is None:
        raise ConfigError(f"unknown optimizer recipe {name!r}; choose from {', '.join(RECIPES)}")
    return found


def _optimizer_class(name: str) -> type:
    return getattr(dspy, name)


def _parameters(function: Callable[..., Any]) -> set[str]:
    skip = ("self", "args", "kwargs", "_kwargs")
    return {name for name in inspect.signature(function).parameters if name not in skip}


def recipe_settings(name: str, budget: str = "light", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-able settings of recipe ``name`` at ``budget``, with ``overrides`` applied.

    Args:
        name: A recipe of :data:`RECIPES`.
        budget: ``light``, ``medium`` or ``heavy``.
        overrides: Settings to change, by optimizer parameter name; each goes to the constructor when it is
            one of its parameters, else to ``compile()``. For GEPA, setting one of ``auto``,
            ``max_metric_calls``, ``max_full_evals`` clears the other two.

    Returns:
        ``{"recipe", "budget", "optimizer", "init", "compile"}``.

    Raises:
        ConfigError: unknown recipe or budget, or an override that is no parameter of the optimizer.

    Example:
        ```python
        recipe_settings("gepa", "light", {"max_metric_calls": 40})["init"]["auto"]   # None
        ```
    """
    recipe = _recipe(name)
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; choose from {', '.join(BUDGETS)}")
    optimizer = recipe.optimizers[budget]
    init = copy.deepcopy(dict(recipe.init[budget]))
    compile_kwargs = copy.deepcopy(dict(recipe.compile[budget]))
    cls = _optimizer_class(optimizer)
    init_names, compile_names = _parameters(cls.__init__), _parameters(cls.compile)
    for key, value in (overrides or {}).items():
        if key in init_names:
            if recipe.feedback and key in _BUDGET_KEYS and value is not None:
                for other in _BUDGET_KEYS - {key}:
                    init[other] = None
            init[key] = value
        elif key in compile_names and key not in ("student", "trainset", "valset", "teacher"):
            compile_kwargs[key] = value
        else:
            raise ConfigError(f"recipe {name!r}: {optimizer} has no setting {key!r}")
    return {"recipe": name, "budget": budget, "optimizer": optimizer, "init": init, "compile": compile_kwargs}


def check_available(name: str) -> None:
    """Raise :class:`ConfigError` naming the missing package when recipe ``name`` cannot run here.

    Example:
        ```python
        check_available("mipro")   # ConfigError when optuna is not installed
        ```
    """
    recipe = _recipe(name)
    for package in recipe.needs:
        if importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"recipe {name!r} ({recipe.optimizers['light']}) needs the package {package!r}, which is not "
                f"installed: pip install 'cscprog[optimize]' (or pip install {package})"
            )


def build_optimizer(
    settings: Mapping[str, Any],
    *,
    metric: Callable[..., Any],
    feedback_metric: Callable[..., Any] | None = None,
    prompt_lm: dspy.LM | None = None,
    num_threads: int = 1,
    seed: int = 0,
    max_errors: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The DSPy optimizer of ``settings`` (from :func:`recipe_settings`) and its ``compile()`` keyword arguments.

    Args:
        settings: From :func:`recipe_settings`.
        metric: ``metric(example, pred, trace=None) -> float`` (every recipe but ``gepa``).
        feedback_metric: The 5-argument feedback metric (``gepa``).
        prompt_lm: The LM proposing instructions (COPRO, MIPROv2) and reflecting (GEPA).
        num_threads: Parallel evaluations inside the optimizer.
        seed: Seed of MIPROv2 and GEPA.
        max_errors: Program errors tolerated before the optimizer gives up (default: DSPy's); optimizers without
            such a setting (COPRO, GEPA) read ``dspy.settings.max_errors``, which :func:`compile_program` sets.

    Raises:
        ConfigError: the recipe needs a missing package, or GEPA has no feedback metric or prompt LM.

    Example:
        ```python
        optimizer, kwargs = build_optimizer(recipe_settings("bootstrap"), metric=combined_metric())
        compiled = optimizer.compile(program, trainset=train, **kwargs)
        ```
    """
    name = settings["recipe"]
    check_available(name)
    optimizer = settings["optimizer"]
    init = dict(settings["init"])
    compile_kwargs = dict(settings["compile"])
    if optimizer in ("BootstrapFewShot", "BootstrapFewShotWithRandomSearch"):
        init.update(metric=metric, max_errors=max_errors)
        if optimizer == "BootstrapFewShotWithRandomSearch":
            init["num_threads"] = num_threads
    elif optimizer == "COPRO":
        init.update(metric=metric, prompt_model=prompt_lm)
        compile_kwargs.setdefault("eval_kwargs", {"num_threads": num_threads, "display_progress": False})
    elif optimizer == "MIPROv2":
        init.update(metric=metric, prompt_model=prompt_lm, num_threads=num_threads, seed=seed, max_errors=max_errors)
    elif optimizer == "GEPA":
        if feedback_metric is None:
            raise ConfigError("recipe 'gepa' needs a feedback metric: metric(gold, pred, trace, pred_name, pred_trace)")
        if prompt_lm is None:
            raise ConfigError("recipe 'gepa' needs a reflection LM: configure the 'reflection' role or an LM")
        init.update(metric=feedback_metric, reflection_lm=prompt_lm, num_threads=num_threads, seed=seed)
    else:  # a recipe table naming an optimizer this function does not wire is a programming error
        raise ConfigError(f"recipe {name!r}: optimizer {optimizer!r} is not supported")
    return _optimizer_class(optimizer)(**init), compile_kwargs
