"""A role-play synthesis set up as ``cscprog synthesize`` sets one up, on the loopback model, and the bare LM.

:func:`runtime_for` and :func:`synthesis_runner` give the runtime (cache, call gate, budget, usage ledger) and the
runner (streamed fsynced JSONL, manifest, progress) of a real synthesis; :func:`bare_lm` the plain ``dspy.LM`` that
makes the same requests without any of it; :func:`check_result` stops a benchmark whose run did not finish cleanly.

Example:
    ```python
    from synthesis import check_result, runtime_for, synthesis_runner

    runtime = runtime_for(url, "native", work / "cache", 4)
    runner = synthesis_runner(runtime, work / "out.jsonl", 4, max_utterances=8)
    check_result(runner.run([(d, (d, p, t)) for d, p, t in plan]), len(plan))
    runtime.close()
    ```
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dspy  # noqa: E402
from loopback import KEY_ENV, MODEL  # noqa: E402

from cscprog.config import config_from_dict  # noqa: E402
from cscprog.data import Profile  # noqa: E402
from cscprog.lm import pricing  # noqa: E402
from cscprog.lm.backends import ENGINES  # noqa: E402
from cscprog.lm.runtime import Runtime  # noqa: E402
from cscprog.rolecs.roleplay import RolePlaySimulator  # noqa: E402
from cscprog.runs import Runner, RunResult  # noqa: E402
from cscprog.runs.progress import NoProgress, ProgressReporter, RichProgress  # noqa: E402


def runtime_for(url: str, engine: str, cache_dir: Path, concurrency: int) -> Runtime:
    """A runtime like ``cscprog synthesize`` builds: every role on the loopback model, cache read-write."""
    config = config_from_dict(
        {
            "lm": {"model": MODEL, "api_base": url, "api_key_env": KEY_ENV, "temperature": 0.0, "engine": engine},
            "cache": {"dir": str(cache_dir), "mode": "readwrite"},
            "run": {"concurrency": concurrency},
        },
        environ={},
    )
    return Runtime(config)


def bare_lm(url: str, engine: str) -> dspy.LM:
    """The plain ``dspy.LM`` of the bare loop: the same request as cscprog's, DSPy's cache off."""
    return dspy.LM(MODEL, api_base=url, api_key="sk-bench", engine=ENGINES[engine], cache=False, num_retries=0,
                   temperature=0.0, timeout=120.0)


def synthesis_runner(
    runtime: Runtime,
    output: Path,
    concurrency: int,
    *,
    max_utterances: int,
    progress: ProgressReporter | None = None,
    simulator: RolePlaySimulator | None = None,
    item_context: Callable[[], AbstractContextManager[Any]] | None = None,
) -> Runner:
    """A runner of ``RolePlaySimulator`` dialogues into ``output``, as ``cscprog synthesize`` sets one up.

    With ``item_context``, every item's work runs on its worker thread inside a new ``item_context()`` (a profiler's,
    for one).
    """
    simulator = simulator if simulator is not None else RolePlaySimulator(max_utterances=max_utterances)

    def work(payload: tuple[str, Profile, str]) -> dict[str, Any]:
        dialogue_id, profile, topic = payload
        if item_context is None:
            return simulator(profile=profile, topic=topic, dialogue_id=dialogue_id).dialogue.to_json()
        with item_context():
            return simulator(profile=profile, topic=topic, dialogue_id=dialogue_id).dialogue.to_json()

    return Runner(work, output=output, concurrency=concurrency, runtime=runtime,
                  progress=progress if progress is not None else NoProgress(),
                  command="benchmarks/throughput.py", inputs={"benchmark": "throughput"})


def rich_progress() -> tuple[RichProgress, Any]:
    """The rich progress bar a terminal user sees, drawn to a terminal console on /dev/null (and that file)."""
    from rich.console import Console

    sink = open(os.devnull, "w")  # noqa: SIM115 - closed by the caller
    return RichProgress("synthesize", console=Console(file=sink, force_terminal=True, width=120)), sink


def check_result(result: RunResult, expected: int) -> None:
    """Stop the benchmark unless the run finished all ``expected`` items and none failed."""
    if result.done != expected or result.failed:
        raise SystemExit(f"benchmark run did not finish cleanly: {result.summary()} (see {result.failures})")


@contextlib.contextmanager
def bare_pricing(shipped: bool) -> Iterator[None]:
    """The price lookup a bare loop runs with: DSPy's as shipped (``shipped``) or cscprog's memoized one.

    A :class:`cscprog.lm.runtime.Runtime` memoizes DSPy's model-metadata lookup process-wide
    (:mod:`cscprog.lm.pricing`); with ``shipped`` the bare loop gets DSPy's own lookup back while it runs.
    """
    was = pricing.installed()
    if shipped:
        pricing.uninstall()
    else:
        pricing.install()
    try:
        yield
    finally:
        if was:
            pricing.install()
        else:
            pricing.uninstall()
