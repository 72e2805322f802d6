"""Where a run's items execute: the engine interface, one item's attempt, and the outcome the runner writes.

The :class:`cscprog.runs.Runner` owns everything that makes a run trustworthy (the outputs and their lock, the
failures file, the final ordering, stopping, progress, the manifest). An :class:`ExecutionEngine` only decides
where the work function runs and hands each finished item back as an :class:`Outcome`:

* :class:`cscprog.runs.threads.ThreadEngine` (``--engine local``, the default): threads of this process;
* :class:`cscprog.runs.ray.engine.RayEngine` (``--engine ray``): Ray worker processes, on one machine or a cluster.

Both run an item with :func:`attempt_item`, so a record is encoded the same way (and gives the same bytes)
wherever it was made. :func:`cscprog.runs.engines.make_engine` builds an engine from its name (``[run] engine`` or
``--engine``).

Example:
    ```python
    from cscprog.runs import Runner
    from cscprog.runs.engines import make_engine

    engine = make_engine("ray", address=None)        # EngineUnavailableError without `pip install "cscprog[ray]"`
    Runner(work, output="out.jsonl", concurrency=32, engine=engine).run(items)
    ```
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dspy

from cscprog.context import RETRY_ROUND_KEY, current_runtime
from cscprog.errors import CscprogError
from cscprog.lm.budget import BudgetExceeded
from cscprog.runs.items import MAIN_SINK, encode_result

if TYPE_CHECKING:
    from cscprog.lm.runtime import Runtime
    from cscprog.runs.stop import StopControl

__all__ = [
    "EngineUnavailableError",
    "ExecutionEngine",
    "Outcome",
    "RunJob",
    "attempt_item",
    "budget_error",
    "budget_stop_reason",
]

WorkFn = Callable[[Any], Any]


class EngineUnavailableError(CscprogError):
    """An engine cannot be used here (unknown name, or Ray is not installed): the CLI's exit status 2."""


@dataclass(frozen=True)
class Outcome:
    """One finished item as it reaches the runner: its encoded records, or why it did not finish.

    Attributes:
        item_id: The item.
        sink: The output its records go to.
        data: Its JSONL bytes (empty when it failed).
        error: The exception of a failed item, when it happened in this process.
        failure: The failure record (:func:`cscprog.runs.describe_failure`) of an item that failed in another
            process, where the exception (and its cause chain) could not travel intact.
        budget_stop: Set when the item hit the run budget: the reason the run stops (the item stays unfinished).
        round: The retry round the item ran in last (0: its first run; see :func:`attempt_item`).
    """

    item_id: str
    sink: str = MAIN_SINK
    data: bytes = b""
    error: BaseException | None = None
    failure: dict[str, Any] | None = None
    budget_stop: str | None = None
    round: int = 0

    @property
    def ok(self) -> bool:
        """True when the item finished and ``data`` holds its records."""
        return self.error is None and self.failure is None and self.budget_stop is None


def budget_error(error: BaseException) -> BudgetExceeded | None:
    """The :class:`BudgetExceeded` behind ``error`` (itself, or in its cause/context chain), or None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, BudgetExceeded):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def budget_stop_reason(error: BaseException) -> str | None:
    """``"budget exceeded (max_calls): ..."`` when ``error`` comes from the run budget, else None."""
    budget = budget_error(error)
    return None if budget is None else f"budget exceeded ({budget.limit}): {budget}"


REPLAY_ROUNDS = 8
"""In replay mode, how many later retry rounds a failed item is tried in (cache lookups only, no calls)."""

ITEM_DSPY_SETTINGS: dict[str, Any] = {"disable_history": True, "trace": None}
"""DSPy settings every item of a run works under. DSPy keeps each call (prompt, messages, full response) in a
global history, in every calling module's history and in ``settings.trace``, up to 10,000 entries each: over a
long run that is hundreds of MB held for nothing (``benchmarks/memory.py``; figures in the README's Benchmarks table).
Runs record what they need themselves (outputs, failures with the raw text, the usage ledger, the cache), so
items run with history and trace off; a DSPy optimizer run inside an item still sets up its own trace."""


def attempt_item(work: WorkFn, item_id: str, payload: Any, failed_rounds: int, *, id_field: str,
                 sinks: frozenset[str], many_records: bool) -> Outcome:
    """Run ``work(payload)`` once and encode its records; any exception becomes a failed :class:`Outcome`.

    Args:
        work: The work function.
        item_id: The item's id (every record must carry it).
        payload: The item's payload.
        failed_rounds: How many runs in a row this item failed in before (0: never); when positive the work runs
            inside ``dspy.context(cscprog_retry_round=N)`` so the LM layer asks for fresh samples.
            The work always runs with :data:`ITEM_DSPY_SETTINGS`. When the active runtime's cache is in ``replay``
            mode, a failed item is tried again in the next rounds (up to :data:`REPLAY_ROUNDS` more), as the run
            being replayed did with ``--resume``: one replay command reproduces a run that needed resumes.
            The cache stores the item's calls in the background: whoever reports the item done flushes it first
            (the runner before it writes the item's line, a Ray worker before it returns the outcome).
        id_field: The record field holding the item id.
        sinks: The names of the run's outputs.
        many_records: Whether an item may write several records.

    Example:
        ```python
        outcome = attempt_item(lambda n: {"id": "a", "n": n}, "a", 1, 0, id_field="id", sinks=frozenset({"output"}),
                               many_records=False)
        assert outcome.ok and outcome.data == b'{"id": "a", "n": 1}\\n'
        ```
    """
    runtime = current_runtime()
    last = failed_rounds + (REPLAY_ROUNDS if runtime is not None and runtime.cache.mode == "replay" else 0)
    round_ = failed_rounds
    while True:
        settings = {**ITEM_DSPY_SETTINGS, RETRY_ROUND_KEY: round_} if round_ else ITEM_DSPY_SETTINGS
        try:
            with dspy.context(**settings):
                value = work(payload)
            sink, data = encode_result(value, item_id, id_field=id_field, sinks=sinks, many_records=many_records)
        except Exception as error:  # every failure of the work is recorded, never lost
            if round_ < last and budget_error(error) is None:
                round_ += 1  # replay: the run being verified may have finished this item in a later round
                continue
            return Outcome(item_id, error=error, round=round_)
        return Outcome(item_id, sink=sink, data=data, round=round_)


@dataclass
class RunJob:
    """What an engine needs to run the pending items of one run.

    Attributes:
        pending: The items still to run, in input order.
        work: The work function.
        rounds: Failed runs in a row, by item id (from the failures file).
        id_field: The record field holding the item id.
        sinks: The names of the run's outputs.
        many_records: Whether an item may write several records.
        concurrency: Items running at once, over all workers.
        stop: The run's stop flags: an engine starts no item once ``stop.requested`` is set, and may request a
            stop itself (a budget hit, every worker lost).
        runtime: The run's runtime (its configuration travels to remote workers), or None.
    """

    pending: list[tuple[str, Any]]
    work: WorkFn
    rounds: dict[str, int]
    id_field: str
    sinks: frozenset[str]
    many_records: bool
    concurrency: int
    stop: StopControl
    runtime: Runtime | None = None

    def attempt(self, item_id: str, payload: Any) -> Outcome:
        """:func:`attempt_item` with this job's settings."""
        return attempt_item(self.work, item_id, payload, self.rounds.get(item_id, 0), id_field=self.id_field,
                            sinks=self.sinks, many_records=self.many_records)


class ExecutionEngine(abc.ABC):
    """Runs a job's items somewhere and hands back their outcomes, one :meth:`next` call at a time.

    The runner calls :meth:`start` once per run, then :meth:`next` until every started item came back (or the
    run stops), then :meth:`close`. :attr:`started` counts the items handed to workers so far.
    """

    name: str = ""

    @abc.abstractmethod
    def start(self, job: RunJob) -> None:
        """Begin running ``job.pending`` (never more than ``job.concurrency`` at once)."""

    @abc.abstractmethod
    def next(self, timeout: float) -> Outcome | None:
        """The next finished item, or None when none finished within ``timeout`` seconds."""

    @property
    @abc.abstractmethod
    def started(self) -> int:
        """Items handed to workers so far in this run."""

    @abc.abstractmethod
    def close(self, *, abandon: bool) -> None:
        """Release the workers; ``abandon``: items are still running and will not be waited for."""

    def usage(self, runtime: Runtime | None) -> dict[str, Any] | None:
        """The run's usage summary so far (the shape of :meth:`cscprog.lm.runtime.Runtime.usage`), or None."""
        return runtime.usage() if runtime is not None else None

    def manifest_sections(self) -> dict[str, Any]:
        """Manifest sections that replace the driver runtime's own (workers elsewhere did the calls)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the engine."""
        return {"name": self.name}
