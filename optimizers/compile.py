"""Compile a program with a named recipe and measure it on the dev set before and after.

:func:`compile_program` scores the program on ``devset``, runs the recipe's optimizer on ``trainset`` (with
``devset`` as the validation set of the optimizers that take one: random-search bootstrap, MIPROv2, GEPA),
and scores the result on ``devset`` again. The dev scores therefore measure the selection set; the unbiased
number comes from ``cscprog evaluate`` on held-out data.

The taxonomy's strategy definitions survive instruction rewrites (COPRO, MIPROv2, GEPA): the response program's
predictors are :class:`~cscprog.signatures.GuidedPredict`, which run every candidate instruction with the
definitions attached, and the compiled program gets them written back into its instructions before it is scored
and saved.

Every LM call of the compile (program runs, proposals, reflection) is an ordinary ``dspy.LM`` call, so it is
served by the active cache (DSPy's, or the runtime's :class:`cscprog.cache.ResponseCache`): nothing here
disables caching, seeds are fixed (see :mod:`cscprog.optimizers.recipes`), and a second compile with a warm
cache replays without new LM calls.

Example:
    ```python
    from cscprog.data import read_dialogues
    from cscprog.optimizers import compile_program, save_compiled, training_examples
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.lm.runtime import Runtime

    runtime = Runtime.from_config()
    train = training_examples(read_dialogues("rolecs.jsonl").dialogues)
    dev = training_examples(read_dialogues("csconv_dev.jsonl").dialogues)
    with runtime.activate():
        result = compile_program(ResponseGenerator(), train, dev, recipe="bootstrap", budget="light")
    print(result.before["metric"], "->", result.after["metric"])
    save_compiled("program.json", result, runtime)
    ```
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy
from cscprog.optimizers.recipes import build_optimizer, recipe_settings
from cscprog.signatures import GuidedPredict

from cscprog.context import current_runtime
from cscprog.data import Dialogue, next_turn_examples
from cscprog.errors import ConfigError, DataError
from cscprog.evaluation.metrics.dspy_metrics import (
    DEFAULT_WEIGHTS,
    combined_feedback,
    combined_metric,
    reply_similarity,
    strategy_accuracy,
)
from cscprog.roles import Role

__all__ = ["CompileResult", "compile_program", "evaluate_program", "training_examples"]

logger = logging.getLogger(__name__)


@dataclass
class CompileResult:
    """A compiled program and what the compile did.

    Attributes:
        program: The compiled program.
        before: Dev scores of the program given to the compile (see :func:`evaluate_program`).
        after: Dev scores of the compiled program.
        recipe: The recipe name.
        settings: The recipe settings (from :func:`cscprog.optimizers.recipes.recipe_settings`) plus the
            metric, seed, thread count and data sizes.
        duration_s: Wall time of the compile (both evaluations included).
    """

    program: dspy.Module
    before: dict[str, Any]
    after: dict[str, Any]
    recipe: str
    settings: dict[str, Any]
    duration_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def improvement(self) -> float:
        """``after["metric"] - before["metric"]`` (percentage points)."""
        return round(self.after["metric"] - self.before["metric"], 4)


def training_examples(dialogues: Iterable[Dialogue]) -> list[dspy.Example]:
    """Next-turn examples for compiling: :func:`cscprog.data.next_turn_examples` without the Turn objects.

    Demos of a compiled program are stored as plain data, so the ``history_turns`` objects (only needed for
    generated-context evaluation) are left out.

    Example:
        ```python
        train = training_examples(load_sample("annotated_en"))
        ```
    """
    examples = []
    for example in next_turn_examples(dialogues):
        data = {key: value for key, value in example.items() if key != "history_turns"}
        examples.append(dspy.Example(**data).with_inputs(*example.inputs().keys()))
    return examples


def evaluate_program(
    program: dspy.Module, devset: Sequence[dspy.Example], metric: Callable[..., float], *, num_threads: int = 1
) -> dict[str, Any]:
    """Score ``program`` on ``devset``: the metric, strategy accuracy and reply ROUGE-L (x100), and failures.

    A program error on an example (e.g. a ``GenerationFailure``) scores 0 on every part and is counted in
    ``failures``; it never stops the evaluation.

    Returns:
        ``{"metric", "strategy_accuracy", "reply_rouge_l", "n", "failures"}``.

    Example:
        ```python
        evaluate_program(ResponseGenerator(), dev, combined_metric())["strategy_accuracy"]
        ```
    """
    evaluate = dspy.Evaluate(devset=list(devset), metric=metric, num_threads=num_threads, display_progress=False,
                             max_errors=len(devset) + 1, failure_score=0.0)
    result = evaluate(program)
    rows = result.results
    failures = sum(1 for _, prediction, _ in rows if getattr(prediction, "reply", None) is None)
    n = len(rows)
    return {
        "metric": round(sum(float(score) for _, _, score in rows) * 100.0 / n, 4) if n else None,
        "strategy_accuracy": round(sum(strategy_accuracy(ex, p) for ex, p, _ in rows) * 100.0 / n, 4) if n else None,
        "reply_rouge_l": round(sum(reply_similarity(ex, p) for ex, p, _ in rows) * 100.0 / n, 4) if n else None,
        "n": n,
        "failures": failures,
    }


def _as_feedback(metric: Callable[..., float]) -> Callable[..., Any]:
    def feedback(gold: Any, pred: Any, trace: Any = None, pred_name: str | None = None, pred_trace: Any = None) -> Any:
        return metric(gold, pred, trace)

    feedback.__name__ = f"{getattr(metric, '__name__', 'metric')}_as_feedback"
    return feedback


def _prompt_lm(prompt_lm: dspy.LM | None) -> dspy.LM | None:
    if prompt_lm is not None:
        return prompt_lm
    runtime = current_runtime()
    return runtime.lm(Role.REFLECTION) if runtime is not None else dspy.settings.lm


def _threads(num_threads: int | None) -> int:
    if num_threads is not None:
        if num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
        return num_threads
    runtime = current_runtime()
    return runtime.config.run.concurrency if runtime is not None else 1


def compile_program(
    program: dspy.Module,
    trainset: Sequence[dspy.Example],
    devset: Sequence[dspy.Example],
    recipe: str = "bootstrap",
    budget: str = "light",
    metric: Callable[..., float] | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    feedback_metric: Callable[..., Any] | None = None,
    prompt_lm: dspy.LM | None = None,
    num_threads: int | None = None,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> CompileResult:
    """Compile ``program`` with the recipe ``recipe`` at ``budget`` and score it on ``devset`` before and after.

    Args:
        program: The program (e.g. ``ResponseGenerator()``); it is not modified.
        trainset: Examples the optimizer learns from (``training_examples(...)``).
        devset: Examples for the before/after scores and the optimizers' validation.
        recipe: ``bootstrap``, ``copro``, ``mipro`` or ``gepa``.
        budget: ``light``, ``medium`` or ``heavy``.
        metric: ``metric(example, pred, trace=None) -> float`` in [0, 1]; default :func:`combined_metric`
            with ``weights``. Any metric of a profile or a weighted mix:
            :func:`cscprog.evaluation.metrics.objective.parse_objective` (``cscprog compile --metric``).
        weights: Weights of the default metric (``{"strategy": .5, "reply": .5}``).
        feedback_metric: GEPA's 5-argument metric; default :func:`combined_feedback` with ``weights`` when
            ``metric`` is the default, else ``metric`` itself (GEPA then gets scores without feedback text).
        prompt_lm: LM for instruction proposals and reflection (default: the runtime's ``reflection`` role,
            else the current LM).
        num_threads: Parallel program runs (default: the runtime's ``[run] concurrency``, else 1).
        seed: Seed of MIPROv2 and GEPA.
        overrides: Optimizer settings to change (see :func:`cscprog.optimizers.recipes.recipe_settings`).

    Returns:
        The :class:`CompileResult`.

    Raises:
        ConfigError: unknown recipe or budget, a missing package (``optuna`` for ``mipro``), no LM.
        DataError: an empty train or dev set.

    Example:
        ```python
        result = compile_program(ResponseGenerator(), train, dev, recipe="copro", budget="light")
        ```
    """
    if not trainset:
        raise DataError("<trainset>", "no training examples")
    if not devset:
        raise DataError("<devset>", "no dev examples")
    settings = recipe_settings(recipe, budget, overrides)
    if dspy.settings.lm is None:
        raise ConfigError("no LM: activate a cscprog Runtime or configure DSPy with an LM before compiling")
    started = time.monotonic()
    threads = _threads(num_threads)
    tolerated = len(trainset) + len(devset) + 1
    score_metric = metric if metric is not None else combined_metric(weights)
    if feedback_metric is None:
        if metric is None:
            feedback_metric = combined_feedback(weights, taxonomy=getattr(program, "taxonomy", None))
        else:
            feedback_metric = _as_feedback(metric)
    optimizer, compile_kwargs = build_optimizer(
        settings, metric=score_metric, feedback_metric=feedback_metric, prompt_lm=_prompt_lm(prompt_lm),
        num_threads=threads, seed=seed, max_errors=tolerated,
    )
    logger.info("compile: scoring the program on %d dev examples before %s", len(devset), settings["optimizer"])
    before = evaluate_program(program, devset, score_metric, num_threads=threads)
    if "valset" in inspect.signature(optimizer.compile).parameters:
        compile_kwargs["valset"] = list(devset)
    logger.info("compile: %s (%s budget) on %d training examples", settings["optimizer"], budget, len(trainset))
    with dspy.context(max_errors=tolerated):  # failed program runs score 0; they must not abort the compile
        compiled = optimizer.compile(program.deepcopy(), trainset=list(trainset), **compile_kwargs)
    for predictor in compiled.predictors():  # definitions an instruction rewrite dropped go back in
        if isinstance(predictor, GuidedPredict):
            predictor.ensure_guide()
    after = evaluate_program(compiled, devset, score_metric, num_threads=threads)
    chosen_weights = dict(weights or DEFAULT_WEIGHTS) if metric is None else None
    settings.update(metric=getattr(score_metric, "__name__", repr(score_metric)), weights=chosen_weights,
                    seed=seed, num_threads=threads, train_examples=len(trainset), dev_examples=len(devset))
    return CompileResult(program=compiled, before=before, after=after, recipe=recipe, settings=settings,
                         duration_s=round(time.monotonic() - started, 3))
