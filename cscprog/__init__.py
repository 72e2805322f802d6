"""cscprog: customer-support conversation (CSC) work with LLMs as declarative, optimizable DSPy programs.

The public API is importable from the package; names load lazily so ``import cscprog`` (and the CLI) stay fast.

Example:
    ```python
    import cscprog

    runtime = cscprog.Runtime.from_config()            # cscprog.toml, or the embedded local model
    with runtime.activate():
        generator = cscprog.ResponseGenerator()
        pred = generator(history="Customer: My card was declined at the shop.", language="en")
    print(pred.strategy, pred.reply)
    ```
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # framework and data
    "Stage": "cscprog.framework",
    "Strategy": "cscprog.framework",
    "Taxonomy": "cscprog.framework",
    "load_taxonomy": "cscprog.framework",
    "check_flow": "cscprog.framework",
    "Turn": "cscprog.data",
    "Dialogue": "cscprog.data",
    "Profile": "cscprog.data",
    "Scenario": "cscprog.data",
    "read_dialogues": "cscprog.data",
    "write_dialogues": "cscprog.data",
    "read_profiles": "cscprog.data",
    "next_turn_examples": "cscprog.data",
    "turn_examples": "cscprog.data",
    "split_dialogues": "cscprog.data",
    "dataset_stats": "cscprog.data",
    "load_sample": "cscprog.samples",
    "load_profiles": "cscprog.samples",
    # config, LM layer, cache
    "Config": "cscprog.config",
    "load_config": "cscprog.config",
    "Runtime": "cscprog.lm.runtime",
    "current_runtime": "cscprog.context",
    "invoke": "cscprog.lm.invoke",
    "GenerationFailure": "cscprog.lm.invoke",
    "ResponseCache": "cscprog.cache",
    # programs
    "Rewriter": "cscprog.csconv.rewriter",
    "StrategyClassifier": "cscprog.agents.classifier",
    "RolePlaySimulator": "cscprog.rolecs.roleplay",
    "synthesis_plan": "cscprog.rolecs.plan",
    "TOPICS": "cscprog.rolecs.plan",
    "QualityJudge": "cscprog.rolecs.judge",
    "ResponseGenerator": "cscprog.agents.responder",
    "respond_dialogue": "cscprog.agents.responder",
    # evaluation, compile, export, runs
    "score_predictions": "cscprog.evaluation.metrics",
    "evaluate": "cscprog.evaluation.evaluate",
    "compile_program": "cscprog.optimizers",
    "save_compiled": "cscprog.optimizers",
    "load_compiled": "cscprog.optimizers",
    "export_examples": "cscprog.finetune.export",
    "write_export": "cscprog.finetune.export",
    "run_items": "cscprog.runs",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cscprog' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
