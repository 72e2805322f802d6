"""The Ray engine (``--engine ray``): a run's items spread over Ray worker processes, results streamed back.

Design:

* **Actors, not stateless tasks or Ray Data.** Each worker is a Ray actor (:class:`cscprog.runs.ray.worker.ItemWorker`)
  that builds its runtime once (LM clients with their keep-alive pools, the cache, the work function shipped
  once) and runs up to ``ceil(concurrency / workers)`` items on its threads. Items are submitted one by one as
  actor tasks, never more than ``concurrency`` at once, so a stop request starts nothing new and a lost worker
  loses only the items it was running. Stateless tasks would rebuild the runtime per item (or need a process-wide
  singleton); Ray Data ``map_batches`` would need ``ray[data]`` (pyarrow, pandas), fail or retry whole batches,
  and hand results back in blocks rather than as each item finishes.
* **The driver writes everything.** Results come back to this process as :class:`cscprog.runs.engine.Outcome`
  values and go through the very same :class:`cscprog.runs.Runner` code as local runs: the one output JSONL
  (streamed, fsynced), the failures file, resume, the final input-order rewrite and the manifest. Outputs are
  byte-identical to a local run with the same seed and cache.
* **Global limits.** With rate limits or a budget, one :class:`cscprog.runs.ray.limits.SharedLimits` actor holds
  them for all workers.
* **Lost workers.** A worker that dies (killed, out of memory, node lost) fails the items it was running
  (``WorkerLostError`` in the failures file; ``--resume`` runs them again) and is replaced, up to
  ``max_worker_losses`` times (default: twice the worker count), after which the run stops cleanly.
* **Cache.** Every worker uses the configured cache directory. On one machine that is one shared diskcache
  (safe across processes) and the driver writes the merged counters to ``last_run.json``; on a multi-node
  cluster each node fills its own directory (SQLite must not be shared over NFS): merge them afterwards with
  ``cscprog cache export`` on each node and ``cscprog cache import`` where you replay (``docs/scaling.md``).

The number of workers is the cluster's CPU count (one CPU each; a local Ray uses this machine's), at most
``concurrency`` and the number of pending items.

Example:
    ```python
    from cscprog.runs import Runner
    from cscprog.runs.ray.engine import RayEngine

    with runtime.activate():
        Runner(work, output="out.jsonl", concurrency=32, runtime=runtime, engine=RayEngine()).run(items)
    ```
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from cscprog.cache import write_last_run
from cscprog.errors import CscprogError
from cscprog.lm.routing import LimiterPlan
from cscprog.runs.engine import ExecutionEngine, Outcome, RunJob
from cscprog.runs.items import RunInputError
from cscprog.runs.ray.cluster import connect, first_line, require_ray
from cscprog.runs.ray.limits import SharedLimits, budget_limits, needs_shared_limits
from cscprog.runs.ray.reports import WorkerReports
from cscprog.runs.ray.worker import ItemWorker, key_variables, portable_config
from cscprog.stamps import utc_iso

__all__ = ["RayEngine", "WorkerLostError"]

logger = logging.getLogger(__name__)

START_TIMEOUT = 180.0
"""Seconds the workers may take to start (process start, imports, runtime) before the run gives up."""
CLOSE_TIMEOUT = 30.0


class WorkerLostError(CscprogError):
    """The Ray worker running an item died before returning it; ``--resume`` runs the item again."""


@dataclass
class _Worker:
    index: int
    actor: Any
    capacity: int
    running: int = 0
    alive: bool = True
    started: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class RayEngine(ExecutionEngine):
    """Runs items on Ray worker actors and streams their outcomes back to the runner.

    Args:
        address: The Ray cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None starts a private Ray on this
            machine for the run (and shuts it down after). Ignored when Ray is already initialized.
        workers: Worker actors (default: the cluster's CPU count), at most ``concurrency`` and the pending items.
        max_worker_losses: Workers that may die before the run stops (default: twice the worker count).
        init_options: More ``ray.init`` keyword arguments when this engine starts Ray.
        report_every: Seconds between the usage reports workers send with their results.

    Example:
        ```python
        engine = RayEngine(address="auto")
        ```
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None,
                 max_worker_losses: int | None = None, init_options: dict[str, Any] | None = None,
                 report_every: float = 0.5) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if max_worker_losses is not None and max_worker_losses < 0:
            raise ValueError(f"max_worker_losses must be >= 0, got {max_worker_losses}")
        self.address = address
        self.workers = workers
        self.max_worker_losses = max_worker_losses
        self.init_options = dict(init_options or {})
        self.report_every = report_every
        self.reports = WorkerReports()
        self._reset(None)

    def _reset(self, job: RunJob | None) -> None:
        self._job = job
        self._cursor = 0
        self._pool: list[_Worker] = []
        self._inflight: dict[Any, tuple[str, _Worker]] = {}
        self._ready: collections.deque[Outcome] = collections.deque()
        self._limits: Any = None
        self._limits_summary: dict[str, Any] | None = None
        self._owns_ray = False
        self._started_at = time.time()
        self._actor_class: Any = None
        self._spawn_args: tuple[Any, ...] = ()
        self._losses = 0
        self._allowed_losses = 0
        self._nodes = 0
        self._threads = 0
        self._spawned = 0
        self._count = 0
        self.reports = WorkerReports()

    # --- start -----------------------------------------------------------------------------------------------------
    def start(self, job: RunJob) -> None:
        """Connect to (or start) Ray, start the workers and the shared limits, submit the first items.

        Raises:
            EngineUnavailableError: Ray is not installed.
            RunInputError: Ray cannot be reached, the work function cannot be sent to workers, workers do not
                start, or a worker's environment lacks an API key variable.
        """
        require_ray()
        self._reset(job)
        if not job.pending:
            return
        import ray

        self._owns_ray = connect(ray, self.address, self.init_options)
        runtime = job.runtime
        count = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        count = max(1, min(count, job.concurrency, len(job.pending)))
        self._count = count
        self._threads = math.ceil(job.concurrency / count)
        self._allowed_losses = self.max_worker_losses if self.max_worker_losses is not None else 2 * count
        self._nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        if self._nodes > 1:
            logger.warning("Ray cluster of %d nodes: each node's workers fill the cache directory on that node; "
                           "merge them with `cscprog cache export` / `cscprog cache import` (docs/scaling.md)",
                           self._nodes)
        config_data, source, key_names = None, None, []
        if runtime is not None:
            config_data, source = portable_config(runtime.config)
            key_names = key_variables(runtime.config)
            if needs_shared_limits(runtime.config):
                specs = LimiterPlan.from_config(runtime.config).specs
                self._limits = ray.remote(num_cpus=0)(SharedLimits).remote(specs, budget_limits(runtime.config))
        try:
            work_ref = ray.put(job.work)
        except Exception as error:
            raise RunInputError(f"the work function cannot be sent to Ray workers ({first_line(error)}); it must "
                                "be picklable (cloudpickle): keep locks, open files and runtimes out of it") from None
        options = {"id_field": job.id_field, "sinks": sorted(job.sinks), "many_records": job.many_records}
        self._actor_class = ray.remote(num_cpus=1, max_concurrency=self._threads)(ItemWorker)
        self._spawn_args = (config_data, source, work_ref, options, self._limits, self.report_every)
        self._pool = [self._spawn(index) for index in range(count)]
        self._check_ready(ray, key_names)
        self._fill()

    def _spawn(self, index: int) -> _Worker:
        self._spawned += 1
        return _Worker(index=index, actor=self._actor_class.remote(*self._spawn_args), capacity=self._threads)

    def _check_ready(self, ray: Any, key_names: list[str]) -> None:
        refs = [worker.actor.ready.remote(key_names) for worker in self._pool]
        try:
            infos = ray.get(refs, timeout=START_TIMEOUT)
        except Exception as error:
            self.close(abandon=True)
            if isinstance(error, ray.exceptions.GetTimeoutError):
                raise RunInputError(f"{len(refs)} Ray worker(s) did not start within {START_TIMEOUT:g}s (each needs "
                                    "one free CPU in the cluster)") from None
            raise RunInputError(f"a Ray worker could not start: {first_line(error)}") from None
        for worker, info in zip(self._pool, infos, strict=True):
            worker.info = info
            worker.started = True
            if info["missing_keys"]:
                self.close(abandon=True)
                raise RunInputError(
                    f"Ray worker on {info['host']}: environment variable(s) {', '.join(info['missing_keys'])} not set "
                    "there; API keys are read from each worker's environment (cscprog never sends them through "
                    "Ray): set them on every node"
                )
        hosts = sorted({info["host"] for info in infos})
        logger.info("Ray engine: %d worker(s) x %d thread(s) on %s", len(infos), self._threads, ", ".join(hosts))

    # --- items -----------------------------------------------------------------------------------------------------
    def _fill(self) -> None:
        job = self._job
        if job is None:
            return
        while self._cursor < len(job.pending) and not job.stop.requested.is_set():
            free = [worker for worker in self._pool if worker.alive and worker.running < worker.capacity]
            if not free:
                return
            worker = min(free, key=lambda candidate: candidate.running)
            item_id, payload = job.pending[self._cursor]
            self._cursor += 1
            try:
                ref = worker.actor.run.remote(item_id, payload, job.rounds.get(item_id, 0))
            except Exception as error:  # the payload cannot be sent: that item fails, the run goes on
                self._ready.append(Outcome(item_id, error=RunInputError(
                    f"item {item_id!r} cannot be sent to a Ray worker: {first_line(error)}")))
                continue
            self._inflight[ref] = (item_id, worker)
            worker.running += 1

    def next(self, timeout: float) -> Outcome | None:
        """The next finished item (results are collected as they arrive), or None after ``timeout`` seconds."""
        import ray

        self._fill()
        if not self._ready and self._inflight:
            refs = list(self._inflight)
            done, rest = ray.wait(refs, num_returns=1, timeout=timeout)
            if done and rest:
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                done.extend(more)
            for ref in done:
                self._ready.append(self._collect(ray, ref))
            self._fill()
        elif not self._ready:
            self._check_pool()
            time.sleep(min(timeout, 0.05))
        return self._ready.popleft() if self._ready else None

    def _collect(self, ray: Any, ref: Any) -> Outcome:
        item_id, worker = self._inflight.pop(ref)
        worker.running -= 1
        try:
            outcome, report = ray.get(ref)
        except ray.exceptions.RayActorError as error:
            self._lose(worker, error)
            return Outcome(item_id, error=WorkerLostError(
                f"the Ray worker running this item died ({first_line(error)}); --resume runs it again"))
        except ray.exceptions.RayError as error:  # something escaped the item's own error handling
            return Outcome(item_id, error=WorkerLostError(f"the Ray task of this item failed: {first_line(error)}"))
        worker.started = True
        self.reports.update(worker.index, report)
        if outcome.budget_stop is not None and self._job is not None:
            self._job.stop.request(outcome.budget_stop)
        return outcome

    def _lose(self, worker: _Worker, error: BaseException) -> None:
        if not worker.alive:
            return
        import ray

        worker.alive = False
        self._losses += 1
        with contextlib.suppress(Exception):
            ray.kill(worker.actor, no_restart=True)
        job = self._job
        work_left = job is not None and self._cursor < len(job.pending) and not job.stop.requested.is_set()
        if work_left and self._losses <= self._allowed_losses:
            logger.warning("Ray worker %d died (%s); its running items are recorded as failures (--resume runs them "
                           "again); starting a replacement", worker.index, first_line(error))
            self._pool.append(self._spawn(max(w.index for w in self._pool) + 1))
        else:
            logger.warning("Ray worker %d died (%s); its running items are recorded as failures", worker.index,
                           first_line(error))
        self._check_pool()

    def _check_pool(self) -> None:
        job = self._job
        if job is None or any(worker.alive for worker in self._pool) or self._cursor >= len(job.pending):
            return
        job.stop.request(f"{self._losses} Ray worker(s) died, more than the {self._allowed_losses} allowed; "
                         "finished items are kept")

    @property
    def started(self) -> int:
        """Items submitted to workers so far."""
        return self._cursor

    # --- end -------------------------------------------------------------------------------------------------------
    def close(self, *, abandon: bool) -> None:
        """Collect the workers' last reports (unless abandoning), stop the actors, write merged cache counters."""
        if not self._pool and self._limits is None:
            self._shutdown()
            return
        import ray

        alive = [worker for worker in self._pool if worker.alive and worker.started]  # a replacement still starting
        if not abandon and not self._inflight and alive:
            try:
                finals = ray.get([worker.actor.close.remote() for worker in alive], timeout=CLOSE_TIMEOUT)
                for worker, report in zip(alive, finals, strict=True):
                    self.reports.update(worker.index, report)
            except Exception as error:
                logger.warning("could not collect the Ray workers' last reports: %s", first_line(error))
        if self._limits is not None:
            try:
                self._limits_summary = ray.get(self._limits.summary.remote(), timeout=CLOSE_TIMEOUT)
            except Exception as error:
                logger.warning("could not read the shared rate limits and budget: %s", first_line(error))
        for actor in [worker.actor for worker in self._pool] + ([self._limits] if self._limits is not None else []):
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self._write_last_run()
        self._pool = []
        self._inflight.clear()
        self._limits = None
        self._shutdown()

    def _shutdown(self) -> None:
        if self._owns_ray:
            import ray

            with contextlib.suppress(Exception):
                ray.shutdown()
            self._owns_ray = False

    def _write_last_run(self) -> None:
        runtime = self._job.runtime if self._job is not None else None
        if runtime is None or runtime.cache.directory is None or self._nodes > 1:
            return
        cache = self.reports.cache()
        if any(cache[name] for name in ("hits", "misses", "stores", "errors")):
            counters = {"mode": runtime.cache.mode, "version": runtime.cache.version,
                        "started": utc_iso(self._started_at), **cache, "engine": "ray",
                        "workers": len(self.reports.reports())}
            write_last_run(runtime.cache.directory, counters)

    # --- reporting -------------------------------------------------------------------------------------------------
    def usage(self, runtime: Any) -> dict[str, Any] | None:
        """Usage of all workers together (as of their latest reports)."""
        return self.reports.usage()

    def manifest_sections(self) -> dict[str, Any]:
        """Roles, cache counters, usage, budget and rate-limit waits of all workers, for the manifest."""
        runtime = self._job.runtime if self._job is not None else None
        if runtime is None:
            return {}
        cache = self.reports.cache()
        shared = self._limits_summary or {}
        if runtime.budget.limited:  # one shared budget: the actor's summary, else the newest copy a worker saw
            seen = [report["budget"] for report in self.reports.reports() if report.get("budget")]
            budget = shared.get("budget") or max(seen, key=lambda b: b["spent"]["calls"], default=None)
        else:
            budget = self.reports.budgets()
        rate_limits: dict[str, Any] = {"waited_seconds": self.reports.waited_seconds()}
        if shared.get("limiters"):
            rate_limits["shared"] = shared["limiters"]
        return {
            "roles": self.reports.roles(),
            "cache": {"dir": runtime.cache.where, "mode": runtime.cache.mode, "version": runtime.cache.version,
                      "hits": cache["hits"], "misses": cache["misses"], "stores": cache["stores"],
                      "errors": cache["errors"], "by_endpoint": cache["by_call"],
                      "shared_directory": self._nodes <= 1},
            "usage": self.reports.usage(),
            "budget": budget if budget is not None else runtime.budget.summary(),
            "rate_limits": rate_limits,
        }

    def describe(self) -> dict[str, Any]:
        """Engine, address, workers (at the start, and started in all), threads per worker, nodes, workers lost."""
        return {"name": self.name, "address": self.address or "local", "workers": self._count,
                "workers_started": self._spawned, "threads_per_worker": self._threads, "nodes": self._nodes,
                "workers_lost": self._losses}
