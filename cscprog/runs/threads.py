"""The local engine: a run's items on worker threads of this process (``--engine local``, the default).

``concurrency`` daemon threads take the pending items in input order; each item runs inside a copy of the
``contextvars`` context the run started in, which carries ``dspy.settings`` overrides (``dspy.context``, the
active :class:`cscprog.lm.runtime.Runtime` with its shared rate limiters, budget, cache and ledger) into the workers
the way ``dspy.Parallel`` does, while keeping what one item changes from leaking into another.

Example:
    ```python
    from cscprog.runs import Runner
    from cscprog.runs.threads import ThreadEngine

    Runner(work, output="out.jsonl", concurrency=8, engine=ThreadEngine()).run(items)
    ```
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading

from cscprog.runs.breaker import auth_stop_reason
from cscprog.runs.engine import ExecutionEngine, Outcome, RunJob, budget_stop_reason

__all__ = ["ThreadEngine"]

logger = logging.getLogger(__name__)


class ThreadEngine(ExecutionEngine):
    """Runs items on ``job.concurrency`` daemon threads of this process.

    A budget hit stops the run from the worker thread at once, before this worker or another takes the next
    item. Abandoned items (a second Ctrl-C) keep running on their daemon threads until the process exits; their
    results are not written.

    Example:
        ```python
        engine = ThreadEngine()
        ```
    """

    name = "local"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursor = 0
        self._results: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._job: RunJob | None = None

    def start(self, job: RunJob) -> None:
        """Start ``min(concurrency, pending)`` threads in the caller's context."""
        self._job = job
        self._cursor = 0
        self._results = queue.SimpleQueue()
        parent = contextvars.copy_context()

        def worker() -> None:
            while True:
                with self._lock:
                    if job.stop.requested.is_set() or self._cursor >= len(job.pending):
                        return
                    item_id, payload = job.pending[self._cursor]
                    self._cursor += 1
                self._results.put(parent.copy().run(self._attempt, job, item_id, payload))

        for index in range(min(job.concurrency, len(job.pending))):
            threading.Thread(target=worker, name=f"cscprog-run-{index}", daemon=True).start()

    @staticmethod
    def _attempt(job: RunJob, item_id: str, payload: object) -> Outcome:
        outcome = job.attempt(item_id, payload)
        if outcome.error is not None:
            logger.debug("item %r failed", item_id, exc_info=outcome.error)
            reason = budget_stop_reason(outcome.error) or auth_stop_reason(outcome.error)
            if reason is not None:  # stop here, before this worker or another takes the next item
                job.stop.request(reason)
        return outcome

    def next(self, timeout: float) -> Outcome | None:
        """The next finished item, or None after ``timeout`` seconds."""
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def started(self) -> int:
        """Items taken by the worker threads so far."""
        with self._lock:
            return self._cursor

    def close(self, *, abandon: bool) -> None:
        """Nothing to release: idle threads have returned, abandoned ones are daemons."""
        self._job = None
