"""Throughput of role-play synthesis through cscprog's runner, against a bare ``dspy.Predict`` loop, same server.

What it measures, in one run, against the loopback OpenAI-compatible server (``OpenAICompatibleServer``) running in
a child process (its own GIL) and answering every chat completion after a fixed ``--latency`` (100 ms):

* **cscprog**: ``RolePlaySimulator`` dialogues through :class:`cscprog.runs.Runner` at concurrency 1, 4 and 16,
  with everything a real ``cscprog synthesize`` has: a :class:`cscprog.lm.runtime.Runtime` (response cache on, in a
  fresh temp directory per run, so every call is a miss that is looked up, made and stored; call gate, budget and
  usage ledger), ``invoke`` (role routing, validation, retries), streamed fsynced JSONL output, the final
  reordering and manifest, and a rich progress bar drawn to a terminal console on ``/dev/null``.
* **bare**: the very same predictor calls (the same signatures and inputs, recorded from a synthesis of the same
  dialogues), made by ``predictor(**inputs)`` with a plain ``dspy.LM`` (``cache=False``) from a thread pool of the
  same size.

It prints achieved LM calls/s of both (medians over rounds that run the two loops back to back, order alternating),
over the ideal (``concurrency / latency``), the ratio cscprog/bare (median of the per-round ratios) and the client
CPU per call of both, for DSPy's native engine and for ``engine = "litellm"``. Then it profiles cscprog runs and bare
loops at concurrency 16 (cProfile in every thread, timed in thread CPU time, interleaved) and shows the CPU per call
of each grouped as dspy adapter / dspy pricing / dspy core / http client / cscprog cache / runner / cscprog other,
with the difference, and the top functions of the cscprog run by cumulative CPU.

Goal: cscprog's orchestration (cache, limiter, streaming output, progress) costs at most 5% against the bare loop
at every concurrency (ratio >= 0.95), and at most 1.2x the bare loop's client CPU per call (CPU c/b). On 2 cores
DSPy's own per-call CPU caps the bare loop well below the ideal at concurrency 16; the ratio, not the ideal, is
the goal. The machine may be shared and loaded: the load average at the start and the end is printed, and both
loops run interleaved so they see the same load.

The simulated provider and the dialogues are in ``loopback.py``, the runtime and runner set-up in ``synthesis.py`` and
the cProfile part in ``profiling.py``; this script has the two measured loops and the table.

Usage:
    python benchmarks/throughput.py            # 2 dialogues per worker, 8 utterances each, 3 rounds
    python benchmarks/throughput.py --quick    # 1 dialogue per worker, 6 utterances, 1 round, litellm at 1 and 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dspy  # noqa: E402
from dspy.utils.callback import BaseCallback  # noqa: E402
from loopback import KEY_ENV, bench_plan, load_text, server_process  # noqa: E402
from profiling import profile_run  # noqa: E402
from synthesis import bare_lm, bare_pricing, check_result, rich_progress, runtime_for, synthesis_runner  # noqa: E402

from cscprog.data import Profile  # noqa: E402

# --- the two loops -------------------------------------------------------------------------------------------------


class Measure:
    """Wall seconds, client CPU seconds and LM calls of one timed run."""

    def __init__(self, calls: int, wall: float, cpu: float) -> None:
        self.calls = calls
        self.wall = wall
        self.cpu = cpu

    @property
    def rate(self) -> float:
        """LM calls per second."""
        return self.calls / self.wall

    @property
    def cpu_ms(self) -> float:
        """Client CPU milliseconds per LM call."""
        return 1000.0 * self.cpu / max(1, self.calls)


def run_cscprog(url: str, engine: str, plan: list[tuple[str, Profile, str]], concurrency: int, work: Path,
                tag: str, max_utterances: int) -> Measure:
    """One timed synthesis of ``plan`` through the runner (fresh cache directory and output)."""
    runtime = runtime_for(url, engine, work / f"cache-{tag}", concurrency)
    progress, sink = rich_progress()
    runner = synthesis_runner(runtime, work / f"out-{tag}.jsonl", concurrency, max_utterances=max_utterances,
                              progress=progress)
    items = [(dialogue_id, (dialogue_id, profile, topic)) for dialogue_id, profile, topic in plan]
    try:
        began, cpu = time.perf_counter(), time.process_time()
        result = runner.run(items)
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    finally:
        runtime.close()
        sink.close()
    check_result(result, len(plan))
    return Measure(runtime.usage()["total"]["live_calls"], wall, cpu)


def run_bare(url: str, engine: str, calls: list[tuple[dspy.Predict, dict[str, Any]]], concurrency: int,
             shipped_pricing: bool = True) -> Measure:
    """The same predictor calls from a plain thread pool with a plain ``dspy.LM`` (DSPy's cache off).

    ``shipped_pricing``: DSPy's own price lookup (else the memoized one cscprog installs; see ``bare_pricing``).
    """
    lm = bare_lm(url, engine)

    def one(call: tuple[dspy.Predict, dict[str, Any]]) -> Any:
        predictor, inputs = call
        with dspy.context(lm=lm):
            return predictor(**inputs)

    began, cpu = time.perf_counter(), time.process_time()
    with bare_pricing(shipped_pricing), ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, calls))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    return Measure(len(calls), wall, cpu)


class _Recorder(BaseCallback):
    """Records every ``dspy.Predict`` call (the predictor and its inputs) of a synthesis."""

    def __init__(self) -> None:
        self.calls: list[tuple[dspy.Predict, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if isinstance(instance, dspy.Predict):
            if inputs.get("args"):
                raise RuntimeError(f"a predictor was called with positional arguments: {inputs['args']!r}")
            with self._lock:  # the bound arguments of Module.__call__(self, *args, **kwargs)
                self.calls.append((instance, dict(inputs.get("kwargs") or {})))


def record_calls(url: str, plan: list[tuple[str, Profile, str]], work: Path,
                 max_utterances: int) -> list[tuple[dspy.Predict, dict[str, Any]]]:
    """The predictor calls a synthesis of ``plan`` makes (recorded against the fast server, cache off)."""
    recorder = _Recorder()
    runtime = runtime_for(url, "native", work / "cache-record", 4)
    runner = synthesis_runner(runtime, work / "out-record.jsonl", 4, max_utterances=max_utterances)
    items = [(dialogue_id, (dialogue_id, profile, topic)) for dialogue_id, profile, topic in plan]
    with dspy.context(callbacks=[recorder]):
        result = runner.run(items)
    runtime.close()
    check_result(result, len(plan))
    return recorder.calls


# --- main ----------------------------------------------------------------------------------------------------------


def dialogues_for(concurrency: int, per_worker: int) -> int:
    """Dialogues of a run at ``concurrency``: ``per_worker`` for each worker, at least 2."""
    return max(2, per_worker * concurrency)


def measure_engine(engine: str, url: str, concurrencies: Sequence[int], per_worker: int, rounds: int,
                   calls: list[tuple[dspy.Predict, dict[str, Any]]], plan: list[tuple[str, Profile, str]],
                   work: Path, latency: float, max_utterances: int, per_dialogue: int,
                   shipped_pricing: bool = True) -> list[tuple[int, float, float, float]]:
    """(concurrency, cscprog calls/s, bare calls/s, cscprog/bare) at each concurrency: medians of interleaved rounds.

    The ratio is the median of the per-round ratios (each round runs both loops back to back, order alternating).
    """
    run_cscprog(url, engine, plan[:1], 1, work, f"{engine}-warm", max_utterances)  # imports, pools, caches
    run_bare(url, engine, calls[:4], 2)
    rows = []
    for concurrency in concurrencies:
        count = dialogues_for(concurrency, per_worker)
        subset = plan[:count]
        bare_calls = calls[: count * per_dialogue]
        ours: list[Measure] = []
        bare: list[Measure] = []
        for round_ in range(rounds):
            for which in ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours"):
                if which == "ours":
                    ours.append(run_cscprog(url, engine, subset, concurrency, work,
                                            f"{engine}-{concurrency}-{round_}", max_utterances))
                else:
                    bare.append(run_bare(url, engine, bare_calls, concurrency, shipped_pricing))
        ours_rate = statistics.median(m.rate for m in ours)
        bare_rate = statistics.median(m.rate for m in bare)
        ratios = [o.rate / b.rate for o, b in zip(ours, bare, strict=True)]
        ratio = statistics.median(ratios)  # paired rounds ran back to back, under the same load
        ours_cpu = statistics.median(m.cpu_ms for m in ours)
        bare_cpu = statistics.median(m.cpu_ms for m in bare)
        rows.append((concurrency, ours_rate, bare_rate, ratio))
        ideal = concurrency / latency
        print(f"  {engine:>7} {concurrency:>4} {ours[0].calls:>6} {ours_rate:>8.1f} {bare_rate:>8.1f} "
              f"{ours_rate / ideal:>7.2f} {bare_rate / ideal:>7.2f} {ratio:>7.3f} {ours_cpu:>8.2f} {bare_cpu:>8.2f} "
              f"{ours_cpu / bare_cpu:>6.2f}   {'ok' if ratio >= 0.95 else 'under 0.95'}"
              f"{'' if rounds == 1 else '  rounds ' + ' '.join(f'{r:.2f}' for r in ratios)}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 2 minutes)")
    parser.add_argument("--latency", type=float, default=0.1, help="server seconds per call (default 0.1)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--per-worker", type=int, default=None, help="dialogues per worker (default 2; quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--max-utterances", type=int, default=None, help="utterance cap (default 8; quick 6)")
    parser.add_argument("--engines", nargs="+", default=["native", "litellm"], choices=["native", "litellm"])
    parser.add_argument("--litellm-concurrency", type=int, nargs="+", default=None,
                        help="concurrencies for the litellm engine (default: as --concurrency; quick 1 4)")
    parser.add_argument("--bare-pricing", choices=["shipped", "memoized"], default="shipped",
                        help="the bare loop's price lookup: DSPy's as shipped (default), or the memoized one cscprog "
                             "installs, which leaves only the orchestration in the ratio")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--profile-engine", choices=["native", "litellm"], default="native",
                        help="the engine of the profiled runs (default native)")
    parser.add_argument("--top", type=int, default=15, help="functions shown by the profile")
    args = parser.parse_args(argv)
    per_worker = args.per_worker or (1 if args.quick else 2)
    rounds = args.rounds or (1 if args.quick else 3)
    cap = args.max_utterances or (6 if args.quick else 8)
    litellm_concurrency = args.litellm_concurrency or ([c for c in args.concurrency if c <= 4] if args.quick
                                                       else args.concurrency)
    os.environ[KEY_ENV] = "sk-bench"
    shipped = args.bare_pricing == "shipped"

    print(f"throughput benchmark{' (quick)' if args.quick else ''}: start {load_text()} on {os.cpu_count()} CPUs "
          "(a shared machine: other work competes for the cores, so absolute rates vary; the two loops run "
          "interleaved and see the same load)")
    largest = max(dialogues_for(c, per_worker) for c in args.concurrency)
    plan = bench_plan(largest)
    with server_process(args.latency, 0.0) as (url, fast_url), tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        calls = record_calls(fast_url, plan, work, cap)
        per_dialogue = len(calls) // largest  # the server never ends a dialogue: every one makes the same calls
        if len(calls) != largest * per_dialogue:
            raise SystemExit(f"recorded {len(calls)} calls for {largest} dialogues: not the same number each")
        print(f"server latency {args.latency * 1000:.0f} ms; dialogues of {cap} utterances = {per_dialogue} calls; "
              f"{per_worker} dialogue(s) per worker; medians of {rounds} interleaved round(s); bare loop with "
              f"{'DSPy as shipped' if shipped else 'the memoized price lookup cscprog installs'}")
        print(f"  {'engine':>7} {'conc':>4} {'calls':>6} {'cscprog':>8} {'bare':>8} {'c/ideal':>7} {'b/ideal':>7} "
              f"{'c/bare':>7} {'c CPU ms':>8} {'b CPU ms':>8} {'CPU c/b':>6}   goal c/bare >= 0.95, CPU c/b <= 1.2")
        print("  (rates in LM calls/s; CPU ms = client process CPU per call, every thread of the process: cscprog's "
              "includes its cache writer thread; medians over the rounds)")
        for engine in args.engines:
            concurrencies = litellm_concurrency if engine == "litellm" else args.concurrency
            measure_engine(engine, url, concurrencies, per_worker, rounds, calls, plan, work, args.latency, cap,
                           per_dialogue, shipped)
        if not args.no_profile:
            concurrency = max(args.concurrency)
            print("\n".join(profile_run(url, plan[: dialogues_for(concurrency, per_worker)], calls, work, cap,
                                         concurrency, args.top, shipped_pricing=shipped,
                                         engine=args.profile_engine, per_dialogue=per_dialogue)))
    print(f"\nend {load_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
