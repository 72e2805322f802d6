"""Peak memory of a long synthesis: does cscprog's resident memory stay flat as the dialogue count grows?

What it measures: one run of ``--n`` (2,000) short role-play dialogues (``RolePlaySimulator``, utterance cap 6, so
13 LM calls each) through :class:`cscprog.runs.Runner` at concurrency 4, with the response cache on in a temp
directory, against the loopback OpenAI-compatible server in a child process answering at once (``latency=0``).
It reads ``/proc/self/status`` (no psutil) when the run has finished 200 dialogues and at the end, and at every
tenth of the run for the curve: peak RSS (``VmHWM``), current RSS split into anonymous memory (the Python heap)
and file-backed pages (the SQLite files diskcache maps), plus what the likely holders contain: DSPy's global
history (``dspy.clients.base_lm.GLOBAL_HISTORY``, capped at 10,000 calls), the cache's in-memory layer (an LRU of
4,096 entries), the per-module histories, DSPy's ``settings.trace`` (the last 10,000 predictor calls with their
inputs and predictions) and SQLite's own heap (``sqlite3_memory_used()`` through ctypes: diskcache's
per-thread, per-shard page caches, which tracemalloc cannot see). At the two measuring points it estimates the bytes
each Python holder keeps (a walk over the objects it references) and, with ``--trace``, lists the allocation sites
that grew the most between them (tracemalloc; slower).

Goal: flat, no growth with the count: peak RSS at 2,000 dialogues within a few MB of the peak at 200 (the ratio is
printed; so is the growth of the run's own memory over the RSS before the run). Any growth is attributed to its
holder. The machine may be shared and loaded; that changes the speed, not the memory, but the load average at the
start and the end is printed.

Usage:
    python benchmarks/memory.py               # 2,000 dialogues (26,000 calls), about 5 minutes on 2 loaded cores
    python benchmarks/memory.py --quick       # 600 dialogues
    python benchmarks/memory.py --trace       # also tracemalloc: the allocation sites that grew
    python benchmarks/memory.py --history last-only   # the same run with dspy.context(max_history_size=1)
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dspy  # noqa: E402
import loopback  # noqa: E402  (the shared server, answers and profiles)
import synthesis  # noqa: E402  (the runtime and runner set-up)
from dspy.clients import base_lm  # noqa: E402

from cscprog.lm.runtime import Runtime  # noqa: E402
from cscprog.rolecs.roleplay import RolePlaySimulator  # noqa: E402
from cscprog.runs.progress import ProgressState  # noqa: E402

HISTORY: dict[str, dict[str, Any]] = {
    "dspy-default": {},
    "last-only": {"max_history_size": 1},
    "off": {"disable_history": True, "trace": None},
}
"""``dspy.context`` overrides to try against the history growth (``--history``)."""

CAP = 6
CONCURRENCY = 4
FIRST = 200
_MB = 1024 * 1024


def proc_status() -> dict[str, int]:
    """Memory fields of ``/proc/self/status`` in bytes: VmRSS, VmHWM (peak RSS), RssAnon, RssFile."""
    found: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                found[name] = int(value.split()[0]) * 1024
    return found


def _sqlite_memory() -> Any:
    """``sqlite3_memory_used()`` of the SQLite library this process uses (diskcache's page caches), or None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).sqlite3_memory_used
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_int64
    return function


SQLITE_MEMORY = _sqlite_memory()


def sqlite_bytes() -> int:
    """Bytes SQLite holds right now (0 when the library cannot be reached)."""
    return int(SQLITE_MEMORY()) if SQLITE_MEMORY is not None else 0


_SKIPPED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
            types.CodeType, types.FrameType, dspy.BaseLM, dspy.Module)


def deep_size(root: Any, seen: set[int] | None = None, limit: int = 5_000_000) -> tuple[int, int]:
    """(bytes, objects) reachable from ``root`` and not in ``seen`` (which it extends), each object once.

    Modules, classes, functions, frames, LMs and DSPy modules are not followed.
    """
    seen = set() if seen is None else seen
    stack = [root]
    total = 0
    start = len(seen)
    while stack and len(seen) - start < limit:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIPPED):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total, len(seen) - start


class MemoryProbe:
    """A progress reporter that samples memory as dialogues finish (it runs in the runner's main thread)."""

    def __init__(self, runtime: Runtime, simulator: dspy.Module, total: int, checkpoints: set[int],
                 trace: bool) -> None:
        self.runtime = runtime
        self.simulator = simulator
        self.total = total
        self.checkpoints = checkpoints
        self.trace = trace
        self.rows: list[dict[str, Any]] = []
        self.snapshots: dict[int, tracemalloc.Snapshot] = {}
        self.holders: dict[int, dict[str, tuple[int, int, int]]] = {}
        self._taken: set[int] = set()
        self._started = 0.0

    def start(self, state: ProgressState) -> None:  # noqa: D102
        self._started = time.monotonic()

    def update(self, state: ProgressState) -> None:  # noqa: D102
        done = state.done + state.failed
        due = [point for point in self.checkpoints if point <= done and point not in self._taken]
        if due:
            self._taken.update(due)
            self.sample(max(due))

    def sample(self, done: int) -> None:
        """Record the memory row at ``done`` finished dialogues (and holder sizes at the measuring points)."""
        status = proc_status()
        histories = {id(p.history): len(p.history) for _, p in self.simulator.named_predictors()}
        self.rows.append({
            "done": done,
            "seconds": time.monotonic() - self._started,
            **status,
            "history": len(base_lm.GLOBAL_HISTORY),
            "module_history": len(self.simulator.history) + sum(histories.values()),
            "trace": len(dspy.settings.trace or ()),
            "lru": len(self.runtime.cache._memory),
            "sqlite": sqlite_bytes(),
            "calls": self.runtime.usage()["total"]["live_calls"],
        })
        if done in (FIRST, self.total):
            seen: set[int] = set()
            modules = [self.simulator.history, *(p.history for _, p in self.simulator.named_predictors())]
            self.holders[done] = {
                "dspy GLOBAL_HISTORY": (*deep_size(base_lm.GLOBAL_HISTORY, seen), len(base_lm.GLOBAL_HISTORY)),
                "+ module histories beyond it": (*deep_size(modules, seen), sum(len(h) for h in modules)),
                "+ dspy settings.trace": (*deep_size(dspy.settings.trace, seen), len(dspy.settings.trace or ())),
                "cache memory layer (LRU)": (*deep_size(self.runtime.cache._memory, seen),
                                             len(self.runtime.cache._memory)),
                "SQLite (diskcache page caches)": (sqlite_bytes(), 0, 0),
            }
            if self.trace:
                self.snapshots[done] = tracemalloc.take_snapshot()

    def message(self, text: str) -> None:  # noqa: D102
        pass

    def stop(self) -> None:  # noqa: D102
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 dialogues instead of 2,000")
    parser.add_argument("--n", type=int, default=None, help="dialogues (default 2000; quick 600)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: allocation sites that grew (slower)")
    parser.add_argument("--history", choices=tuple(HISTORY), default="dspy-default",
                        help="DSPy settings for the run: dspy-default, last-only (max_history_size=1: each LM and "
                             "module keeps its last call) or off (disable_history=True, trace=None)")
    args = parser.parse_args(argv)
    total = args.n or (600 if args.quick else 2000)
    if total <= FIRST:
        parser.error(f"--n must be above {FIRST}")
    os.environ[loopback.KEY_ENV] = "sk-bench"
    print(f"memory benchmark{' (quick)' if args.quick else ''}: start {loopback.load_text()} on {os.cpu_count()} "
          "CPUs (a shared machine: load changes the speed, not the memory)")
    plan = loopback.bench_plan(total)
    step = max(1, total // 10)
    checkpoints = {FIRST, total, *range(step, total + 1, step)}
    with loopback.server_process(0.0) as (url,), tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        # Warm up in a throw-away run (imports, pools, adapter caches), so the baseline is the steady process.
        warm = synthesis.runtime_for(url, "native", work / "cache-warm", CONCURRENCY)
        runner = synthesis.synthesis_runner(warm, work / "warm.jsonl", CONCURRENCY, max_utterances=CAP)
        runner.run([(d, (d, p, t)) for d, p, t in loopback.bench_plan(3)])
        warm.close()
        base_lm.GLOBAL_HISTORY.clear()
        gc.collect()
        if args.trace:
            tracemalloc.start(8)
        baseline = proc_status()

        runtime = synthesis.runtime_for(url, "native", work / "cache", CONCURRENCY)
        simulator = RolePlaySimulator(max_utterances=CAP)
        probe = MemoryProbe(runtime, simulator, total, checkpoints, args.trace)
        runner = synthesis.synthesis_runner(runtime, work / "dialogues.jsonl", CONCURRENCY, max_utterances=CAP,
                                            progress=probe, simulator=simulator)
        began = time.perf_counter()
        with dspy.context(**HISTORY[args.history]):
            result = runner.run([(d, (d, p, t)) for d, p, t in plan])
        seconds = time.perf_counter() - began
        synthesis.check_result(result, total)
        final = proc_status()
        runtime.close()

    rows = {row["done"]: row for row in probe.rows}
    print(f"{total} dialogues of {CAP} utterances, concurrency {CONCURRENCY}, cache on, DSPy history "
          f"{args.history} {HISTORY[args.history] or ''}: {rows[total]['calls']} LM calls in {seconds:.0f} s "
          f"({rows[total]['calls'] / seconds:.0f} calls/s)")
    print(f"RSS before the run {baseline['VmRSS'] / _MB:.1f} MB (anon {baseline['RssAnon'] / _MB:.1f}, file "
          f"{baseline['RssFile'] / _MB:.1f}); peak before {baseline['VmHWM'] / _MB:.1f} MB")
    print(f"  {'done':>6} {'s':>5} {'peak RSS':>9} {'RSS':>8} {'anon':>8} {'file':>7} {'dspy hist':>9} "
          f"{'mod hist':>8} {'trace':>6} {'LRU':>5} {'sqlite':>7}   (MB; histories, trace and LRU in entries)")
    for row in probe.rows:
        print(f"  {row['done']:>6} {row['seconds']:>5.0f} {row['VmHWM'] / _MB:>9.1f} {row['VmRSS'] / _MB:>8.1f} "
              f"{row['RssAnon'] / _MB:>8.1f} {row['RssFile'] / _MB:>7.1f} {row['history']:>9} "
              f"{row['module_history']:>8} {row['trace']:>6} {row['lru']:>5} {row['sqlite'] / _MB:>7.1f}")
    first, last = rows[FIRST], rows[total]
    ratio = last["VmHWM"] / first["VmHWM"]
    own_first, own_last = first["VmHWM"] - baseline["VmRSS"], last["VmHWM"] - baseline["VmRSS"]
    print(f"\npeak RSS at {FIRST}: {first['VmHWM'] / _MB:.1f} MB; at {total}: {last['VmHWM'] / _MB:.1f} MB; ratio "
          f"{ratio:.2f} (goal: flat, 1.00); the run's own memory {own_first / _MB:.1f} -> {own_last / _MB:.1f} MB; "
          f"anonymous RSS {first['RssAnon'] / _MB:.1f} -> {last['RssAnon'] / _MB:.1f} MB; "
          f"{'FLAT' if last['VmHWM'] - first['VmHWM'] < 10 * _MB else 'GROWS'}")
    print(f"after the run (before closing the runtime): RSS {final['VmRSS'] / _MB:.1f} MB; history entries: "
          f"dspy global {len(base_lm.GLOBAL_HISTORY)}, simulator module {len(simulator.history)}, "
          + ", ".join(f"{name} {len(p.history)}" for name, p in simulator.named_predictors()))
    print("\nwhat the holders keep (object walk, each object once):")
    for name in probe.holders[FIRST]:
        size_a, _, entries_a = probe.holders[FIRST][name]
        size_b, _, entries_b = probe.holders[total][name]
        per = f" in {entries_b} entries, {size_b / entries_b / 1024:.1f} KB each" if entries_b else ""
        print(f"  {name:<30} at {FIRST}: {size_a / _MB:7.1f} MB{f' in {entries_a} entries' if entries_a else ''}; "
              f"at {total}: {size_b / _MB:7.1f} MB{per}")
    if args.trace:
        print(f"\ntracemalloc: allocation sites that grew the most between {FIRST} and {total} dialogues:")
        diff = probe.snapshots[total].compare_to(probe.snapshots[FIRST], "traceback")
        for stat in diff[:8]:
            frames = [f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"
                      for frame in list(reversed(stat.traceback))[:4]]
            print(f"  {stat.size_diff / _MB:+7.1f} MB {stat.count_diff:+8} blocks  {' <- '.join(frames)}")
    print(f"\nend {loopback.load_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
