"""The runner: items through a work function, on an execution engine, into a resumable JSONL output.

See :mod:`cscprog.runs` for the guarantees and an example. One :class:`Runner` is one run over one output: the
main thread owns the files (appends, failures, the final ordering, the manifest) and the progress display; an
:class:`cscprog.runs.engine.ExecutionEngine` runs the work function and hands each finished item back:
:class:`cscprog.runs.threads.ThreadEngine` on ``concurrency`` threads of this process (the default), or
:class:`cscprog.runs.ray.engine.RayEngine` in Ray worker processes. Whatever the engine, the same code below
writes the outputs, records failures, orders the files and writes the manifest.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cscprog.context import RETRY_ROUND_KEY, current_runtime
from cscprog.redaction import redact
from cscprog.runs.breaker import DEFAULT_BREAKER_LIMIT, CircuitBreaker
from cscprog.runs.engine import ExecutionEngine, Outcome, RunJob, budget_stop_reason
from cscprog.runs.failures import FailureLog, failures_path
from cscprog.runs.items import MAIN_SINK, RunInputError, check_items
from cscprog.runs.manifest import MANIFEST_FORMAT, build_manifest, secret_values, write_manifest
from cscprog.runs.output import JsonlSink, remove_stale_temporaries, rewrite_in_order, scan_output
from cscprog.runs.progress import NoProgress, ProgressReporter, ProgressState
from cscprog.runs.result import RunResult, finished_rounds, manifest_path
from cscprog.runs.stop import StopControl
from cscprog.runs.threads import ThreadEngine

if TYPE_CHECKING:
    from cscprog.lm.runtime import Runtime

__all__ = ["RETRY_ROUND_KEY", "Runner", "run_items"]

logger = logging.getLogger(__name__)

_POLL = 0.2
_COST_EVERY = 0.25

WorkFn = Callable[[Any], Any]


class Runner:
    """One resumable, concurrent, observable run of a work function over items.

    Args:
        work: ``work(payload) -> dict | list[dict] | Routed``: the output record(s) of one item, each carrying
            the item id in ``id_field``. Any exception is a failure of that item; ``BudgetExceeded`` (also as the
            cause of another error) stops the run.
        output: The main JSONL output.
        id_field: The record field holding the item id (``id``, ``dialogue_id``...).
        concurrency: Worker threads.
        resume: Continue an existing output: finished items are skipped, failed and unfinished ones run.
            Without it an existing non-empty output is an error.
        many_records: Items may write several records (e.g. one per supporter turn).
        side_outputs: Named extra outputs a work function can route an item to with :class:`Routed`.
        runtime: The run's :class:`cscprog.lm.runtime.Runtime` (default: the active one); activated for the run
            when it is not already, used for the cost display and the manifest.
        progress: A progress reporter (default: none).
        write_manifest: Write ``<output>.manifest.json`` at the end.
        command: The command line for the manifest.
        inputs: The run's inputs for the manifest.
        seed: The run's seed for the manifest (default: the runtime's ``run.seed``).
        resume_command: The exact command that resumes the run (shown when it stops early).
        grace_seconds: After a stop request, how long running items may take to finish before they are abandoned.
        manifest_extra: More JSON-able data for the manifest (under ``extra``).
        engine: Where the work runs (default: a :class:`cscprog.runs.threads.ThreadEngine`, threads of this
            process); e.g. a :class:`cscprog.runs.ray.engine.RayEngine`. Outputs, failures, ordering and the
            manifest are the same whatever the engine.
        max_consecutive_failures: The circuit breaker (:mod:`cscprog.runs.breaker`): stop after this many items
            in a row failed with the same kind of provider error (default: the runtime's
            ``[run] max_consecutive_failures``, else 10; 0: never). A rejected API key stops the run at once.

    Attributes:
        stop: The run's :class:`cscprog.runs.stop.StopControl` (fresh for each :meth:`run`); another thread may
            call ``runner.stop.request("reason")`` to stop the run cleanly.

    Example:
        ```python
        runner = Runner(annotate_one, output="out.jsonl", concurrency=8, resume=True)
        result = runner.run((d.id, d) for d in dialogues)
        ```
    """

    def __init__(
        self,
        work: WorkFn,
        *,
        output: str | Path,
        id_field: str = "id",
        concurrency: int = 1,
        resume: bool = False,
        many_records: bool = False,
        side_outputs: dict[str, str | Path] | None = None,
        runtime: Runtime | None = None,
        progress: ProgressReporter | None = None,
        write_manifest: bool = True,
        command: str = "",
        inputs: dict[str, Any] | None = None,
        seed: int | None = None,
        resume_command: str | None = None,
        grace_seconds: float = 5.0,
        manifest_extra: dict[str, Any] | None = None,
        engine: ExecutionEngine | None = None,
        max_consecutive_failures: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if grace_seconds < 0:
            raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds}")
        self.work = work
        self.output = Path(output)
        self.id_field = id_field
        self.concurrency = concurrency
        self.resume = resume
        self.many_records = many_records
        self.side_outputs = {name: Path(path) for name, path in (side_outputs or {}).items()}
        if MAIN_SINK in self.side_outputs:
            raise ValueError(f"{MAIN_SINK!r} names the main output; pick another side output name")
        paths = [self.output, *self.side_outputs.values()]
        if len({path.resolve() for path in paths}) != len(paths):
            raise RunInputError(f"outputs must be different files: {', '.join(str(p) for p in paths)}")
        self.runtime = runtime
        self.progress = progress if progress is not None else NoProgress()
        self.write_manifest = write_manifest
        self.command = command
        self.inputs = dict(inputs or {})
        self.seed = seed
        self.resume_command = resume_command
        self.grace_seconds = grace_seconds
        self.manifest_extra = dict(manifest_extra or {})
        self.engine = engine if engine is not None else ThreadEngine()
        self.max_consecutive_failures = max_consecutive_failures
        self.stop = StopControl()
        self._breaker = CircuitBreaker(0)
        self._rounds: dict[str, int] = {}
        self._cost_at = 0.0
        self._cost: tuple[int | None, int | None, float | None, int] = (None, None, None, 0)

    # --- paths ---------------------------------------------------------------------------------------------------
    @property
    def sinks(self) -> dict[str, Path]:
        """Every output by name: :data:`MAIN_SINK` and the side outputs."""
        return {MAIN_SINK: self.output, **self.side_outputs}

    @property
    def failures_path(self) -> Path:
        """``<output>.failures.jsonl``."""
        return failures_path(self.output)

    @property
    def manifest_path(self) -> Path:
        """``<output>.manifest.json``."""
        return manifest_path(self.output)

    # --- the run -------------------------------------------------------------------------------------------------
    def run(self, items: Iterable[tuple[str, Any]]) -> RunResult:
        """Run every unfinished item; return what happened (see :attr:`RunResult.exit_status`).

        Raises:
            RunInputError: duplicate or empty item ids, an existing output without ``resume``, a corrupt
                output, or another run writing the same output.
            OSError: an output cannot be written (the items finished before are kept).
        """
        checked = check_items(items)
        self.stop = StopControl()
        runtime = self.runtime if self.runtime is not None else current_runtime()
        self.runtime = runtime
        limit = self.max_consecutive_failures
        if limit is None:
            limit = runtime.config.run.max_consecutive_failures if runtime is not None else DEFAULT_BREAKER_LIMIT
        self._breaker = CircuitBreaker(limit)
        self._rounds = finished_rounds(self.manifest_path) if self.resume else {}
        activation = contextlib.nullcontext()
        if runtime is not None and current_runtime() is not runtime:
            activation = runtime.activate()
        with activation:
            return self._run(checked, runtime)

    def _prepare(self, order: list[str]) -> tuple[dict[str, set[str]], int]:
        """Check or scan the outputs; the finished ids per output and the torn bytes dropped."""
        finished: dict[str, set[str]] = {}
        dropped = 0
        for name, path in self.sinks.items():
            if not self.resume:
                if path.exists() and path.stat().st_size > 0:
                    raise RunInputError(
                        f"{path} already exists and is not empty; pass --resume to continue that run (finished "
                        "items are skipped) or remove the file. Finished work is never overwritten."
                    )
                finished[name] = set()
                continue
            scan = scan_output(path, self.id_field, many_records=self.many_records, repair=True)
            dropped += scan.dropped_bytes
            if scan.duplicates:
                logger.warning("%s: %d id(s) appear in more than one place, e.g. %r", path, len(scan.duplicates),
                               scan.duplicates[0])
            finished[name] = set(scan.spans)
        if not self.resume:
            self.failures_path.unlink(missing_ok=True)
        known = set(order)
        extra = set().union(*finished.values()) - known
        if extra:
            logger.warning("%d finished item(s) in the outputs are not items of this run; they are kept", len(extra))
        return finished, dropped

    def _run(self, items: list[tuple[str, Any]], runtime: Runtime | None) -> RunResult:
        started = time.time()
        clock = time.monotonic()
        order = [item_id for item_id, _ in items]
        secrets = secret_values(runtime)
        result = RunResult(output=self.output, side_outputs=dict(self.side_outputs), failures=self.failures_path,
                           manifest=None, total=len(items), resume_command=self.resume_command)
        sinks: dict[str, JsonlSink] = {}
        failures: FailureLog | None = None
        finished: dict[str, set[str]] = {name: set() for name in self.sinks}
        try:
            for name, path in self.sinks.items():  # lock every output before reading or repairing it
                sinks[name] = JsonlSink(path)
            for path in [*self.sinks.values(), self.failures_path]:
                remove_stale_temporaries(path)
            finished, result.dropped_bytes = self._prepare(order)
            all_done = set().union(*finished.values())
            pending = [(item_id, payload) for item_id, payload in items if item_id not in all_done]
            result.skipped = len(items) - len(pending)
            result.extra = len(all_done - set(order))
            previous = FailureLog.load(self.failures_path) if self.resume else {}
            failures = FailureLog(self.failures_path, secrets=secrets, previous=previous)
            self.progress.start(self._state(result, runtime))
            with self.stop.signals():
                self._loop(pending, sinks, failures, result, finished, runtime)
            if not self.stop.requested.is_set():
                for path in self.sinks.values():
                    if rewrite_in_order(path, order, self.id_field):
                        logger.info("%s: rewritten in input order", path)
        finally:
            for sink in sinks.values():
                sink.close()
            if failures is not None:
                failures.finalize(order, set().union(*finished.values()))
                with contextlib.suppress(Exception):
                    self.progress.stop()
        result.unfinished = result.total - result.skipped - result.done - result.failed
        result.interrupted = self.stop.interrupted
        result.stop_reason = self.stop.reason
        known = set(order)
        result.by_output = {name: len(ids & known) for name, ids in finished.items()}
        result.duration_s = round(time.monotonic() - clock, 3)
        if self.write_manifest:
            result.manifest = self._write_manifest(result, runtime, started, secrets)
        return result

    def _loop(self, pending: list[tuple[str, Any]], sinks: dict[str, JsonlSink], failures: FailureLog,
              result: RunResult, finished: dict[str, set[str]], runtime: Runtime | None) -> None:
        rounds = failures.rounds()
        job = RunJob(pending=pending, work=self.work, rounds=rounds, id_field=self.id_field,
                     sinks=frozenset(self.sinks), many_records=self.many_records, concurrency=self.concurrency,
                     stop=self.stop, runtime=runtime)
        engine = self.engine
        handled = 0
        deadline: float | None = None
        try:
            engine.start(job)
            while handled < len(pending):
                if self.stop.requested.is_set():
                    started = engine.started
                    if handled >= started or self.stop.abandon.is_set():
                        break
                    if deadline is None:
                        deadline = time.monotonic() + self.grace_seconds
                        self.progress.message(
                            f"Stopping ({self.stop.reason}): no new item starts; waiting up to "
                            f"{self.grace_seconds:g}s for {started - handled} running item(s) "
                            "(press Ctrl-C again to abandon them)."
                        )
                    elif time.monotonic() >= deadline:
                        break
                outcome = engine.next(_POLL)
                if outcome is None:
                    self.progress.update(self._state(result, runtime))
                    continue
                handled += 1
                self._handle(outcome, sinks, failures, result, finished, rounds.get(outcome.item_id, 0) + 1)
                self.progress.update(self._state(result, runtime))
        except KeyboardInterrupt:  # only when the signal handlers could not be installed
            self.stop.request("interrupted by Ctrl-C", interrupted=True)
            self.stop.abandon.set()
        except BaseException as error:
            self.stop.request(f"stopped by an error: {type(error).__name__}: {error}")
            raise
        finally:
            engine.close(abandon=handled < engine.started)

    def _handle(self, outcome: Outcome, sinks: dict[str, JsonlSink], failures: FailureLog, result: RunResult,
                finished: dict[str, set[str]], round_: int) -> None:
        if outcome.ok:
            if self.runtime is not None:
                self.runtime.cache.flush()  # the item's line is written only once its calls are on disk
            sinks[outcome.sink].append(outcome.data)
            finished[outcome.sink].add(outcome.item_id)
            result.done += 1
            self._breaker.succeeded()
            if outcome.round:
                self._rounds[outcome.item_id] = outcome.round
            return
        reason = outcome.budget_stop
        if reason is None and outcome.error is not None:
            reason = budget_stop_reason(outcome.error)
        if reason is not None:
            self.stop.request(reason)
            return
        round_ = max(round_, outcome.round + 1)
        entry: dict[str, Any] = {}
        if outcome.failure is not None:
            entry = failures.add(outcome.failure, round_)
        elif outcome.error is not None:
            entry = failures.record(outcome.item_id, outcome.error, round_)
        result.failed += 1
        breaker_stop = self._breaker.failed(entry)
        if breaker_stop is not None and not self.stop.requested.is_set():
            logger.warning("%s; no new item starts", breaker_stop)
            self.stop.request(breaker_stop)

    # --- reporting -----------------------------------------------------------------------------------------------
    def _state(self, result: RunResult, runtime: Runtime | None) -> ProgressState:
        now = time.monotonic()
        if runtime is not None and now - self._cost_at >= _COST_EVERY:
            self._cost_at = now
            usage = self.engine.usage(runtime)
            total = usage["total"] if usage else {}
            self._cost = (total.get("live_calls"), total.get("cache_hits"), total.get("cost_usd"),
                          total.get("unknown_cost_calls", 0))
        live, hits, cost, unknown = self._cost
        return ProgressState(total=result.total, skipped=result.skipped, done=result.done,
                             failed=result.failed, live_calls=live, cache_hits=hits,
                             cost_usd=cost, unknown_cost_calls=unknown)

    def _write_manifest(self, result: RunResult, runtime: Runtime | None, started: float,
                        secrets: set[str]) -> Path:
        outputs: dict[str, Any] = {name: str(path) for name, path in self.sinks.items()}
        outputs["failures"] = str(self.failures_path) if self.failures_path.exists() else None
        run = {**result.as_dict(), "concurrency": self.concurrency, "id_field": self.id_field,
               "resumed": self.resume, "engine": self.engine.describe(),
               "rounds": dict(sorted(self._rounds.items()))}
        seed = self.seed
        if seed is None and runtime is not None:
            seed = runtime.config.run.seed
        if runtime is not None:
            manifest = build_manifest(runtime, command=self.command, inputs=self.inputs, outputs=outputs,
                                      seed=seed, started=started, extra=self.manifest_extra or None)
            manifest.update(self.engine.manifest_sections())
        else:
            finished = time.time()
            manifest = {"format": MANIFEST_FORMAT, "command": self.command, "inputs": self.inputs,
                        "outputs": outputs, "seed": seed, "started": started, "finished": finished,
                        "duration_s": round(finished - started, 3)}
            if self.manifest_extra:
                manifest["extra"] = self.manifest_extra
        manifest["run"] = run
        return write_manifest(self.manifest_path, redact(manifest, secrets))


def run_items(items: Iterable[tuple[str, Any]], work: WorkFn, *, output: str | Path, **options: Any) -> RunResult:
    """Run ``work`` over ``items`` into ``output``: ``Runner(work, output=output, **options).run(items)``.

    Example:
        ```python
        result = run_items([(d.id, d) for d in dialogues], annotate_one, output="out.jsonl", concurrency=4)
        raise SystemExit(result.exit_status)
        ```
    """
    return Runner(work, output=output, **options).run(items)
