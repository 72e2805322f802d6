"""Runs a user can trust at scale: resumable, concurrent, observable processing of items into JSONL.

Every long cscprog command (``synthesize``, ``rewrite``, ``annotate``, ``judge``, ``respond``, ``evaluate``) is a
:class:`Runner` over items ``(item_id, payload)`` and a work function ``work(payload)`` returning the output
record(s) of one item (JSON-able dicts, e.g. ``Dialogue.to_json()``) that carry the item id in the run's id field.

Guarantees:

* **Streaming and crash-safe.** Each finished item's lines are appended to the output with one ``write`` call,
  then ``fsync``\\ ed. A torn last line left by a crash (kill -9, power loss) is detected and dropped on resume.
* **Resumable.** With ``resume=True`` the items whose id is already in the output are skipped (only the id field
  of each line is read: 10,000 lines take a fraction of a second); failed and unfinished items run again.
  After any number of interruptions the output holds exactly the records of a clean run: no duplicates, none
  lost. Without ``resume`` an existing non-empty output is an error (finished work is never overwritten).
* **Deterministic.** When a run completes, its outputs are rewritten atomically in input order, so the same
  inputs, seed and cache give byte-identical files at any concurrency (the work function must not depend on
  the order items run in).
* **Concurrent.** ``concurrency`` worker threads; each item runs in a copy of the caller's ``contextvars`` context,
  so ``dspy.context`` settings and the active :class:`cscprog.lm.runtime.Runtime` (its shared rate limiters, budget,
  cache and usage ledger) reach the workers.
* **Local or distributed, same files.** Where the work runs is an :class:`ExecutionEngine`: threads of this process
  (:class:`ThreadEngine`, the default) or Ray worker processes on one machine or a cluster
  (:class:`cscprog.runs.ray.engine.RayEngine`, ``pip install "cscprog[ray]"``), each worker with a runtime built
  from the same configuration and one shared limiter for the run's rate limits and budget. Results stream back
  to this process, which writes the outputs, failures and manifest with the same code and guarantees; outputs
  are byte-identical across engines.
* **Failures are data.** Any exception of the work function fails that item only: it goes to
  ``<output>.failures.jsonl`` (item id, error type, reason, raw LM text when there is one, secrets redacted), is
  counted, and is retried by the next ``resume`` (inside ``dspy.context(cscprog_retry_round=N)``, N the runs it
  failed in, so the LM layer can ask for fresh samples instead of replaying cached unusable ones).
  ``BudgetExceeded`` stops the run cleanly instead: finished items are kept, the rest are not started, and the
  manifest says why.
* **Interruptible.** Ctrl-C or SIGTERM stops starting items, lets running ones finish for ``grace_seconds`` (a
  second Ctrl-C abandons them), writes the manifest and reports how to resume.
* **Observable.** A progress reporter on stderr (:func:`make_progress`: a rich bar with rate, ETA, failures, calls
  and cost on a terminal; plain lines otherwise); ``<output>.manifest.json`` records the command, inputs, counts,
  interruption, seed, cache hits and misses, and usage and cost per role (:mod:`cscprog.runs.manifest`).
* **Exit statuses.** :attr:`RunResult.exit_status`: 0 all finished, 1 some failed or not run (budget), 130
  interrupted; a run that cannot start raises :class:`RunInputError` (the CLI's status 2).

Example:
    ```python
    from cscprog.data import read_dialogues
    from cscprog.runs import Routed, Runner, make_progress
    from cscprog.lm.runtime import Runtime

    classifier = StrategyClassifier()
    runtime = Runtime.from_config("cscprog.toml")

    def annotate(dialogue):                       # runs on a worker thread, one item at a time
        return classifier(dialogue=dialogue).dialogue.to_json()   # a record whose "id" is the item id

    dialogues = read_dialogues("raw.jsonl").dialogues
    runner = Runner(annotate, output="annotated.jsonl", concurrency=8, resume=True, runtime=runtime,
                    progress=make_progress("annotate"), command="my-annotation-script")
    result = runner.run((d.id, d) for d in dialogues)
    print(result.summary(), result.resume_hint() or "")
    runtime.close()
    raise SystemExit(result.exit_status)
    ```

    Items that write one record per supporter turn use ``id_field="dialogue_id", many_records=True``; a work
    function sends an item to a side output with ``Routed("rejected", record)`` and
    ``side_outputs={"rejected": "rejected.jsonl"}``.
"""

from __future__ import annotations

from cscprog.runs.engine import EngineUnavailableError, ExecutionEngine, Outcome
from cscprog.runs.engines import make_engine
from cscprog.runs.failures import FailureLog, describe_failure, failures_path
from cscprog.runs.items import MAIN_SINK, ItemError, RecordError, Routed, RunInputError, check_items, encode_result
from cscprog.runs.output import JsonlSink, OutputScan, rewrite_in_order, scan_output
from cscprog.runs.progress import (
    NoProgress,
    PlainProgress,
    ProgressReporter,
    ProgressState,
    RichProgress,
    make_progress,
)
from cscprog.runs.result import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, RunResult, manifest_path
from cscprog.runs.runner import RETRY_ROUND_KEY, Runner, run_items
from cscprog.runs.stop import StopControl
from cscprog.runs.threads import ThreadEngine

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EngineUnavailableError",
    "ExecutionEngine",
    "MAIN_SINK",
    "RETRY_ROUND_KEY",
    "FailureLog",
    "ItemError",
    "JsonlSink",
    "NoProgress",
    "Outcome",
    "OutputScan",
    "PlainProgress",
    "ProgressReporter",
    "ProgressState",
    "RecordError",
    "RichProgress",
    "Routed",
    "RunInputError",
    "RunResult",
    "Runner",
    "StopControl",
    "ThreadEngine",
    "check_items",
    "describe_failure",
    "encode_result",
    "failures_path",
    "make_engine",
    "make_progress",
    "manifest_path",
    "rewrite_in_order",
    "run_items",
    "scan_output",
]
