"""Throughput of the Ray engine against the local engine, and the write paths that limit scaling out.

Parts (``--part``, default all):

* ``engines``: items/s of a :class:`cscprog.runs.Runner` on the local engine (threads of one process) and on a
  local Ray "cluster" of 2 worker processes (``ray.init(num_cpus=2)``, ``RayEngine(workers=2)``), against the
  loopback OpenAI-compatible server in its own process answering after ``--latency`` seconds. Each item makes
  ``--calls-per-item`` sequential ``dspy.Predict`` calls through cscprog's runtime with the cache off (every call
  reaches the server). Reported: steady-state items/s (first to last finished item, so Ray's start-up is left
  out and shown on its own) and the ratio Ray / local.
* ``cache``: puts/s into one :class:`cscprog.cache.ResponseCache` directory from 1, 2, 4 and 8 processes at once
  (the real write path: key, JSON encoding, checksum, diskcache on SQLite), 3 KB records.
* ``sink``: appends/s of the driver's output (:class:`cscprog.runs.JsonlSink`: one write and one fsync per item).
* ``driver``: items/s the driver takes in on the Ray engine when the work costs nothing (3 KB records, 2 workers):
  collecting results from Ray plus the fsynced append of each item.
* ``limits``: calls/s one :class:`cscprog.runs.ray.limits.SharedLimits` actor answers (the rate-limit reservation
  every live call makes on the Ray engine), from 16 threads, and the latency of one call.

Usage:
    python benchmarks/ray_throughput.py [--part engines] [--items 240] [--calls-per-item 3] [--latency 0.1]
        [--concurrency 8 32 64]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dspy  # noqa: E402
from loopback import server_process  # noqa: E402

from cscprog.cache import ResponseCache  # noqa: E402
from cscprog.config import config_from_dict  # noqa: E402
from cscprog.lm.invoke import invoke  # noqa: E402
from cscprog.lm.runtime import Runtime  # noqa: E402
from cscprog.runs import JsonlSink, ProgressState, Runner  # noqa: E402

RECORD_BYTES = 3000


class Recorder:
    """A progress reporter that remembers when each item finished."""

    def __init__(self) -> None:
        self.finished: list[float] = []
        self._done = 0

    def start(self, state: ProgressState) -> None:
        self._done = state.done

    def update(self, state: ProgressState) -> None:
        now = time.perf_counter()
        self.finished.extend([now] * (state.done + state.failed - self._done))
        self._done = state.done + state.failed

    def message(self, text: str) -> None:
        logging.info(text)

    def stop(self) -> None:
        pass

    def steady_rate(self) -> float:
        """Items/s from the first finished item to the last."""
        if len(self.finished) < 2:
            return 0.0
        return (len(self.finished) - 1) / (self.finished[-1] - self.finished[0])


def make_work(calls: int):
    predict = dspy.Predict("question -> answer")

    def work(number: int) -> dict:
        answers = [invoke(predict, role="responder", question=f"item {number} turn {turn}").answer
                   for turn in range(calls)]
        return {"id": f"item-{number:05d}", "answers": answers}

    return work


def _run_engine(url: str, out: Path, items: int, calls: int, concurrency: int,
                engine: Any) -> tuple[float, float, float]:
    """Steady-state items/s, wall seconds, and this process's CPU ms per call."""
    config = config_from_dict({"lm": {"model": "openai/test-model", "api_base": url, "temperature": 0.0},
                               "cache": {"dir": str(out.parent / "cache"), "mode": "off"}}, environ={})
    runtime = Runtime(config)
    recorder = Recorder()
    began, cpu = time.perf_counter(), time.process_time()
    try:
        with runtime.activate():
            result = Runner(make_work(calls), output=out, concurrency=concurrency, runtime=runtime,
                            progress=recorder, engine=engine, write_manifest=False).run(
                [(f"item-{n:05d}", n) for n in range(items)])
    finally:
        runtime.close()
    if result.done != items:
        raise SystemExit(f"{out}: only {result.done} of {items} items finished: {result.summary()}")
    cpu_ms = (time.process_time() - cpu) * 1000 / (items * calls)
    return recorder.steady_rate(), time.perf_counter() - began, cpu_ms


def engines(args: argparse.Namespace) -> None:
    import ray

    from cscprog.runs.ray.engine import RayEngine

    with server_process(args.latency, answer=None) as (url,):
        began = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        print(f"ray.init(num_cpus=2): {time.perf_counter() - began:.1f}s")
        try:
            with tempfile.TemporaryDirectory() as scratch:
                _run_engine(url, Path(scratch) / "warm" / "out.jsonl", 8, 1, 4, None)  # imports, connection pools
                print(f"server latency {args.latency * 1000:.0f} ms, {args.items} items x {args.calls_per_item} calls, "
                      "cache off; steady-state items/s (wall time incl. start-up)")
                print(f"{'concurrency':>11} {'local':>16} {'ray 2 workers':>18} {'ratio':>6} {'ideal':>7} "
                      f"{'local client CPU/call':>22}")
                for concurrency in args.concurrency:
                    rates = {}
                    for name, engine in (("local", None), ("ray", RayEngine(workers=2))):
                        out = Path(scratch) / f"{name}-{concurrency}" / "out.jsonl"
                        rates[name] = _run_engine(url, out, args.items, args.calls_per_item, concurrency, engine)
                    ideal = concurrency / (args.latency * args.calls_per_item)
                    (local, local_wall, cpu_ms), (remote, remote_wall, _) = rates["local"], rates["ray"]
                    print(f"{concurrency:>11} {local:>8.1f} ({local_wall:>4.1f}s) {remote:>9.1f} "
                          f"({remote_wall:>5.1f}s) {remote / local:>6.2f} {ideal:>7.1f} {cpu_ms:>19.1f} ms")
        finally:
            ray.shutdown()


def _record(index: int, process: int) -> tuple[dict[str, Any], dict[str, Any]]:
    text = f"process {process} call {index} " + "x" * RECORD_BYTES
    request = {"model": "openai/bench", "messages": [{"role": "user", "content": text[:200]}],
               "api_base": "http://127.0.0.1:1/v1", "temperature": 0.0}
    value = {"choices": [{"message": {"role": "assistant", "content": text}}],
             "usage": {"prompt_tokens": 50, "completion_tokens": 750}}
    return request, value


def _put_many(directory: str, process: int, count: int, barrier: Any, results: Any) -> None:
    cache = ResponseCache(directory)
    records = [_record(index, process) for index in range(count)]
    barrier.wait()
    began = time.perf_counter()
    for request, value in records:
        cache.put(request, value)
    results.put((began, time.perf_counter()))
    cache.close()


def cache_puts(args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    print(f"ResponseCache.put, {RECORD_BYTES / 1000:.0f} KB records, one directory (8 diskcache shards)")
    print(f"{'processes':>9} {'puts/s':>8} {'per process':>12}")
    for processes in args.processes:
        with tempfile.TemporaryDirectory() as directory:
            ResponseCache(directory).close()  # create the shards once
            barrier, results = context.Barrier(processes), context.Queue()
            workers = [context.Process(target=_put_many, args=(directory, index, args.puts, barrier, results))
                       for index in range(processes)]
            for worker in workers:
                worker.start()
            spans = [results.get(timeout=600) for _ in workers]
            for worker in workers:
                worker.join()
            rate = processes * args.puts / (max(end for _, end in spans) - min(start for start, _ in spans))
            print(f"{processes:>9} {rate:>8.0f} {rate / processes:>12.0f}")


def sink_appends(args: argparse.Namespace) -> None:
    line = ('{"id": "item-%05d", "text": "' + "y" * RECORD_BYTES + '"}\n')
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "out.jsonl"
        with JsonlSink(path) as sink:
            began = time.perf_counter()
            for index in range(args.appends):
                sink.append((line % index).encode())
            elapsed = time.perf_counter() - began
    print(f"JsonlSink.append (write + fsync), {RECORD_BYTES / 1000:.0f} KB records in {directory}: "
          f"{args.appends / elapsed:.0f} appends/s")


def _echo_record(number: int) -> dict:
    return {"id": f"item-{number:05d}", "text": "z" * RECORD_BYTES}


def driver_intake(args: argparse.Namespace) -> None:
    import ray

    from cscprog.runs.ray.engine import RayEngine

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as directory:
            recorder = Recorder()
            result = Runner(_echo_record, output=Path(directory) / "out.jsonl", concurrency=64, progress=recorder,
                            engine=RayEngine(workers=2), write_manifest=False).run(
                [(f"item-{n:05d}", n) for n in range(args.driver_items)])
            if result.done != args.driver_items:
                raise SystemExit(f"driver: {result.summary()}")
        print(f"Ray engine driver, work that costs nothing, {RECORD_BYTES / 1000:.0f} KB records, 2 workers x 32 "
              f"threads: {recorder.steady_rate():.0f} items/s")
    finally:
        ray.shutdown()


def limits_actor(args: argparse.Namespace) -> None:
    import ray

    from cscprog.runs.ray.limits import SharedLimits

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        actor = ray.remote(num_cpus=0)(SharedLimits).remote({"bench": (6_000_000.0, None)}, None)
        ray.get(actor.reserve.remote("bench", 0, 1))
        latencies = []
        for _ in range(200):
            began = time.perf_counter()
            ray.get(actor.reserve.remote("bench", 0, 1))
            latencies.append(time.perf_counter() - began)
        calls, threads = args.limit_calls, 16
        lock = threading.Lock()
        count = [0]

        def caller(_: int) -> None:
            for _ in range(calls // threads):
                ray.get(actor.reserve.remote("bench", 100, 1))
                with lock:
                    count[0] += 1

        began = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(caller, range(threads)))
        rate = count[0] / (time.perf_counter() - began)
        print(f"SharedLimits actor: one reservation {statistics.median(latencies) * 1000:.2f} ms median "
              f"(p90 {sorted(latencies)[int(len(latencies) * 0.9)] * 1000:.2f} ms); {rate:.0f} reservations/s "
              f"from {threads} threads")
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "engines", "cache", "sink", "driver", "limits"), default="all")
    parser.add_argument("--items", type=int, default=240)
    parser.add_argument("--calls-per-item", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--puts", type=int, default=500, help="cache puts per process")
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--limit-calls", type=int, default=3200)
    parser.add_argument("--driver-items", type=int, default=3000)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    parts = {"engines": engines, "cache": cache_puts, "sink": sink_appends, "driver": driver_intake,
             "limits": limits_actor}
    for name, part in parts.items():
        if args.part in ("all", name):
            part(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
