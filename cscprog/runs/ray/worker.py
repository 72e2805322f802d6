"""One Ray worker of a run: its own runtime built from the run's configuration, items on its threads.

:class:`ItemWorker` is the body of a Ray actor (the Ray engine wraps it with ``ray.remote``; this module does not
need Ray). Each worker process builds a :class:`cscprog.lm.runtime.Runtime` from the run's validated configuration,
sent as plain data (:func:`portable_config`): model names, endpoints, cache settings and the *names* of the
environment variables holding API keys, never a key. Keys are read from the worker's own environment when its
LMs are built, and :meth:`ItemWorker.ready` reports the variables missing there before any item runs.

Every worker opens the configured cache directory: on one machine all workers share it (diskcache keeps one
SQLite database per shard, safe across processes); on a cluster each node has its own (see ``docs/scaling.md``).
Items run through :func:`cscprog.runs.engine.attempt_item`, exactly as on the local engine, so records are the
same bytes; a failure is described here (:func:`cscprog.runs.describe_failure`, secrets redacted) because an
exception's cause chain does not survive pickling.

Example:
    ```python
    data, source = portable_config(config)
    worker = ItemWorker(data, source, work, {"id_field": "id", "sinks": ["output"], "many_records": False})
    outcome, report = worker.run("d-1", dialogue, 0)
    ```
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from cscprog.config import Config
from cscprog.lm.runtime import Runtime
from cscprog.roles import ROLES
from cscprog.runs.engine import Outcome, WorkFn, attempt_item, budget_stop_reason
from cscprog.runs.failures import describe_failure
from cscprog.runs.manifest import secret_values
from cscprog.runs.ray.limits import remote_limits
from cscprog.runs.ray.reports import worker_report

__all__ = ["ItemWorker", "key_variables", "portable_config"]

logger = logging.getLogger(__name__)


def _absolute(path: str) -> str:
    """``path`` made absolute against this directory, unless it starts with ``~`` or ``$`` (expanded per node)."""
    if path.startswith(("~", "$")) or Path(path).is_absolute():
        return path
    return str(Path(path).resolve())


def portable_config(config: Config) -> tuple[dict[str, Any], str | None]:
    """The validated configuration as plain data for the workers, and its source.

    Environment overrides were applied when the driver loaded it, so workers use exactly the driver's values;
    relative paths (cache directory, local model file) are made absolute, since workers may start elsewhere.

    Example:
        ```python
        data, source = portable_config(load_config("cscprog.toml"))
        ```
    """
    data = config.model_dump(mode="json")
    data["cache"]["dir"] = _absolute(config.cache.dir)
    tables = [data["lm"], *data["roles"].values()]
    for table in tables:
        if table.get("local_model_path"):
            table["local_model_path"] = _absolute(table["local_model_path"])
    return data, config.source


def key_variables(config: Config) -> list[str]:
    """The ``api_key_env`` variables of the configuration that are set here (the workers need them too)."""
    names = {config.lm_for(role).api_key_env for role in ROLES}
    return sorted(name for name in names if name and os.environ.get(name))


class ItemWorker:
    """The body of one Ray worker actor: a runtime, the work function, and the run's encoding settings.

    Args:
        config_data: :func:`portable_config` data, or None to run without a runtime (as a local run outside any).
        source: Where the configuration came from (for manifests).
        work: The work function (Ray ships it once per worker).
        options: ``id_field``, ``sinks`` (output names) and ``many_records``.
        limits: The :class:`cscprog.runs.ray.limits.SharedLimits` actor, or None.
        report_every: Seconds between the reports sent along with results.

    Example:
        ```python
        actor = ray.remote(num_cpus=1, max_concurrency=8)(ItemWorker).remote(data, source, work_ref, options)
        ```
    """

    def __init__(self, config_data: dict[str, Any] | None, source: str | None, work: WorkFn,
                 options: dict[str, Any], limits: Any = None, report_every: float = 0.5) -> None:
        self.runtime: Any = None
        if config_data is not None:
            config = Config.model_validate(config_data).model_copy(update={"source": source})
            limiters, budget = remote_limits(limits, config) if limits is not None else (None, None)
            self.runtime = Runtime(config, limiters=limiters, budget=budget)
        self.secrets = secret_values(self.runtime)
        self.work = work
        self.id_field = str(options["id_field"])
        self.sinks = frozenset(options["sinks"])
        self.many_records = bool(options["many_records"])
        self.report_every = report_every
        self._lock = threading.Lock()
        self._seq = 0
        self._reported = 0.0

    def ready(self, key_names: list[str]) -> dict[str, Any]:
        """Where this worker runs, and which of ``key_names`` its environment lacks."""
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "missing_keys": [name for name in key_names if not os.environ.get(name)]}

    def _report(self, force: bool) -> dict[str, Any] | None:
        if self.runtime is None:
            return None
        with self._lock:
            now = time.monotonic()
            if not force and now - self._reported < self.report_every:
                return None
            self._reported = now
            self._seq += 1
            seq = self._seq
        return worker_report(self.runtime, seq)

    def run(self, item_id: str, payload: Any, failed_rounds: int) -> tuple[Outcome, dict[str, Any] | None]:
        """Run one item; its outcome (a failure already described) and, now and then, this worker's report."""
        if self.runtime is not None:
            with self.runtime.activate():
                outcome = attempt_item(self.work, item_id, payload, failed_rounds, id_field=self.id_field,
                                       sinks=self.sinks, many_records=self.many_records)
        else:
            outcome = attempt_item(self.work, item_id, payload, failed_rounds, id_field=self.id_field,
                                   sinks=self.sinks, many_records=self.many_records)
        if outcome.ok and self.runtime is not None:
            self.runtime.cache.flush()  # the driver writes the item's line on this outcome: its calls are on disk
        if outcome.error is not None:
            error = outcome.error
            logger.debug("item %r failed", item_id, exc_info=error)
            reason = budget_stop_reason(error)
            if reason is not None:
                outcome = Outcome(item_id, budget_stop=reason)
            else:
                outcome = Outcome(item_id, failure=describe_failure(item_id, error, self.secrets, failed_rounds + 1))
        return outcome, self._report(force=False)

    def close(self) -> dict[str, Any] | None:
        """Close the runtime (cache counters, HTTP pools); this worker's last report."""
        report = self._report(force=True)
        if self.runtime is not None:
            self.runtime.close()
        return report
