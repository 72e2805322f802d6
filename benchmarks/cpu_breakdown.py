"""Client CPU of a concurrency-16 synthesis, per function, in thread CPU time and without a profiler's inflation.

cProfile (``throughput.py``'s profile) charges a fixed cost to every Python call, so code made of many small calls
looks 4-5x dearer than it is and a few expensive calls (a SQLite connection being opened) hide among them. This
script instead times a chosen list of functions (:data:`TIMED`) with ``time.thread_time`` around each call, on
every thread (the cache writer's included), counting each function once per call stack (a recursive or nested
call is not counted twice), and counts the SQLite connections diskcache opens. It runs ``--runs`` syntheses of
the same dialogues as ``throughput.py`` (native engine, loopback server at 100 ms, a fresh cache each run) and
the bare ``dspy.Predict`` loop over the same calls, and prints, per LM call: the process CPU of both, then each
timed function's CPU (inclusive: a function's line includes the functions it calls) and how often it ran.

Usage:
    python benchmarks/cpu_breakdown.py              # 3 runs at concurrency 16 (about 1 minute)
    python benchmarks/cpu_breakdown.py --runs 5 --concurrency 8
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import KEY_ENV, bench_plan, load_text, server_process  # noqa: E402
from throughput import dialogues_for, record_calls, run_bare, run_cscprog  # noqa: E402

TIMED = [
    ("cscprog.rolecs.roleplay", "invoke", "invoke (role routing, validation, retries; everything below)"),
    ("dspy.adapters.chat_adapter", "ChatAdapter.__call__", "DSPy adapter call (format, LM, parse)"),
    ("dspy.clients.base_lm", "BaseLM.__call__", "DSPy LM call (cache lookup, HTTP, cache store)"),
    ("cscprog.cache.router", "CacheRouter.get", "LM entry: lookup (key, index, SQLite)"),
    ("cscprog.cache.router", "CacheRouter.put", "LM entry: record (key, encode, queue)"),
    ("cscprog.cache.store", "request_key", "LM entry: key (JSON + sha256)"),
    ("cscprog.cache.predict_results", "_key", "result layer: key"),
    ("cscprog.cache.results", "ResultStore.get", "result layer: lookup"),
    ("cscprog.cache.results", "ResultStore.put", "result layer: record (encode, queue)"),
    ("cscprog.cache.key_index", "KeyIndex.may_hold", "key index: may the shard hold the key"),
    ("cscprog.cache.writer", "BatchWriter._store", "cache writer thread: SQLite batches"),
    ("cscprog.rolecs.checks", "check_degenerate", "role-play turn check (degenerate text)"),
    ("cscprog.runs.runner", "Runner._handle", "runner: an item's outcome (output line, failures)"),
    ("cscprog.runs.runner", "Runner._state", "runner: progress state"),
]


class Timers:
    """Thread CPU seconds and calls per timed function, over every thread."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._active = threading.local()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] += seconds
            self.calls[name] += 1

    def clear(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()

    def snapshot(self) -> tuple[collections.Counter[str], collections.Counter[str]]:
        with self._lock:
            return collections.Counter(self.seconds), collections.Counter(self.calls)

    def restore(self, snapshot: tuple[collections.Counter[str], collections.Counter[str]]) -> None:
        """Go back to ``snapshot`` (what the bare loop added is dropped: the table is cscprog's alone)."""
        with self._lock:
            self.seconds, self.calls = collections.Counter(snapshot[0]), collections.Counter(snapshot[1])

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            active = self._active.__dict__.setdefault("names", set())
            if name in active:
                return function(*args, **kwargs)
            active.add(name)
            began = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                active.discard(name)
                self.add(name, time.thread_time() - began)

        return timed


def install(timers: Timers) -> None:
    """Put a timer around every function of :data:`TIMED` and around diskcache's opening of a connection."""
    for module_name, qualified, label in TIMED:
        owner: Any = importlib.import_module(module_name)
        *path, attribute = qualified.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, attribute, timers.wrap(label, getattr(owner, attribute)))
    from diskcache import core

    opened = core.Cache._con

    def connection(cache: Any) -> Any:
        fresh = getattr(cache._local, "con", None) is None
        began = time.thread_time()
        try:
            return opened.fget(cache)
        finally:
            if fresh:
                timers.add("diskcache: a new SQLite connection (one per thread and shard)", time.thread_time() - began)

    core.Cache._con = property(connection)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-utterances", type=int, default=8)
    args = parser.parse_args(argv)
    os.environ[KEY_ENV] = "sk-bench"
    plan = bench_plan(dialogues_for(args.concurrency, 2))
    print(f"cpu breakdown: start {load_text()} on {os.cpu_count()} CPUs; {len(plan)} dialogues of "
          f"{args.max_utterances} utterances at concurrency {args.concurrency}, {args.runs} runs, native engine")
    timers = Timers()
    with server_process(0.1, 0.0) as (url, fast_url), tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        calls = record_calls(fast_url, plan, work, args.max_utterances)
        run_cscprog(url, "native", plan[:1], 1, work, "warm", args.max_utterances)
        install(timers)
        timers.clear()
        ours, bare, live = [], [], 0
        for run in range(args.runs):
            measure = run_cscprog(url, "native", plan, args.concurrency, work, f"run{run}", args.max_utterances)
            ours.append(measure.cpu_ms)
            live += measure.calls
            kept = timers.snapshot()
            bare.append(run_bare(url, "native", calls, args.concurrency, shipped_pricing=False).cpu_ms)
            timers.restore(kept)
    ours_ms, bare_ms = statistics.median(ours), statistics.median(bare)
    print(f"process CPU per LM call (median of runs): cscprog {ours_ms:.2f} ms, bare loop {bare_ms:.2f} ms "
          f"({ours_ms / bare_ms:.2f}x; the timers add a little to both)")
    print(f"cscprog's runs, per LM call over {live} calls (thread CPU, inclusive of what each calls):")
    for name, seconds in sorted(timers.seconds.items(), key=lambda item: -item[1]):
        print(f"  {1000 * seconds / live:7.3f} ms  {timers.calls[name]:7d} calls  {name}")
    print(f"end {load_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
