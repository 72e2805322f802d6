"""Throughput of role-play synthesis through cscprog's runner, against a bare ``dspy.Predict`` loop, same server.

What it measures, in one run, against the loopback OpenAI-compatible server (``OpenAICompatibleServer``) running in
a child process (its own GIL) and answering every chat completion after a fixed ``--latency`` (100 ms):

* **cscprog**: ``RolePlaySimulator`` dialogues through :class:`cscprog.runs.Runner` at concurrency 1, 4 and 16,
  with everything a real ``cscprog synthesize`` has: a :class:`cscprog.runtime.Runtime` (response cache on, in a
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

Goal: cscprog's orchestration (cache, limiter, streaming output, progress) costs at most 10% against the bare loop
at every concurrency (ratio >= 0.90). On 2 cores DSPy's own per-call CPU caps the bare loop well below the ideal
at concurrency 16; the ratio, not the ideal, is the goal. The machine may be shared and loaded: the load average
at the start and the end is printed, and both loops run interleaved so they see the same load.

Usage:
    python benchmarks/throughput.py            # 2 dialogues per worker, 8 utterances each, 3 rounds
    python benchmarks/throughput.py --quick    # 1 dialogue per worker, 6 utterances, 1 round, litellm at 1 and 4
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import multiprocessing
import os
import pstats
import re
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dspy  # noqa: E402
from dspy.utils.callback import BaseCallback  # noqa: E402

from cscprog.config import config_from_dict  # noqa: E402
from cscprog.data import Profile  # noqa: E402
from cscprog.lm.backends import ENGINES  # noqa: E402
from cscprog.roleplay import TOPICS, RolePlaySimulator, synthesis_plan  # noqa: E402
from cscprog.runs import Runner, RunResult  # noqa: E402
from cscprog.runs.progress import NoProgress, ProgressReporter, RichProgress  # noqa: E402
from cscprog.runtime import Runtime  # noqa: E402
from cscprog.samples import load_profiles  # noqa: E402
from cscprog.testing import OpenAICompatibleServer  # noqa: E402
from cscprog.testing.engines import AnswerRequest  # noqa: E402

KEY_ENV = "CSCPROG_BENCH_API_KEY"
MODEL = "openai/test-model"
CLOSING = "Appreciation and Closure"
_LITERAL = re.compile(r"Literal\[(.*)\]")
_REPLY = (
    "I understand; the transfer you made on Monday is still pending because the receiving bank has not confirmed it, "
    "and I can follow it up for you right now."
)


# --- the simulated provider ----------------------------------------------------------------------------------------


def synthesis_answer(field: str, request: AnswerRequest) -> str:
    """A deterministic role-play answer of realistic length; dialogues always run to the utterance cap.

    Strategies are drawn from the offered labels by the prompt's hash (never the closing one) and the customer never
    says it is finished, so every dialogue makes the same number of calls (``1 + 2 * cap``).
    """
    digest = hashlib.sha256(request.last.encode("utf-8")).hexdigest()
    literal = _LITERAL.search(request.output_types.get(field, "str"))
    if literal:
        options = [option.strip().strip("'\"") for option in literal.group(1).split(",")]
        options = [option for option in options if option != CLOSING] or options
        return options[int(digest[:8], 16) % len(options)]
    if field == "finished":
        return "False"
    return f"({field} {digest[:8]}) {_REPLY}"


def _serve(latencies: Sequence[float], urls: Any, stop: Any) -> None:
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(OpenAICompatibleServer(answer=synthesis_answer, latency=latency))
                   for latency in latencies]
        urls.put([server.url for server in servers])
        stop.wait()


@contextlib.contextmanager
def server_process(*latencies: float) -> Iterator[list[str]]:
    """Loopback servers (one per latency) in a child process with its own GIL; yields their base URLs."""
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(list(latencies), urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=120)
    finally:
        stop.set()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


# --- inputs --------------------------------------------------------------------------------------------------------


def bench_profiles(count: int) -> list[Profile]:
    """``count`` distinct customers (the packaged profiles, each repeated under a new id and customer number).

    Distinct profile texts give distinct prompts, so no two dialogues share a cache entry.
    """
    base = load_profiles()
    profiles = []
    for index in range(count):
        profile = base[index % len(base)]
        description = f"{profile.description or ''} Your customer number is {index:05d}.".strip()
        profiles.append(profile.model_copy(update={"id": f"bench-{index:05d}", "description": description}))
    return profiles


def bench_plan(dialogues: int, seed: int = 1234) -> list[tuple[str, Profile, str]]:
    """``dialogues`` distinct (dialogue_id, profile, topic) triples over the method's seven topics."""
    profiles = bench_profiles(-(-dialogues // len(TOPICS)))
    return synthesis_plan(profiles, TOPICS, n=dialogues, seed=seed)


def runtime_for(url: str, engine: str, cache_dir: Path, concurrency: int) -> Runtime:
    """A runtime like ``cscprog synthesize`` builds: every role on the loopback model, cache read-write."""
    config = config_from_dict(
        {
            "lm": {"model": MODEL, "api_base": url, "api_key_env": KEY_ENV, "temperature": 0.0, "engine": engine},
            "cache": {"dir": str(cache_dir), "mode": "readwrite"},
            "run": {"concurrency": concurrency},
        },
        environ={},
    )
    return Runtime(config)


def bare_lm(url: str, engine: str) -> dspy.LM:
    """The plain ``dspy.LM`` of the bare loop: the same request as cscprog's, DSPy's cache off."""
    return dspy.LM(MODEL, api_base=url, api_key="sk-bench", engine=ENGINES[engine], cache=False, num_retries=0,
                   temperature=0.0, timeout=120.0)


def load_text() -> str:
    """``load average 1.23 0.98 0.87`` (1, 5 and 15 minutes)."""
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


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


def synthesis_runner(
    runtime: Runtime,
    output: Path,
    concurrency: int,
    *,
    max_utterances: int,
    progress: ProgressReporter | None = None,
    simulator: RolePlaySimulator | None = None,
    profiles: list[cProfile.Profile] | None = None,
) -> Runner:
    """A runner of ``RolePlaySimulator`` dialogues into ``output``, as ``cscprog synthesize`` sets one up.

    With ``profiles``, every item's work is profiled on its worker thread and the profile added to that list.
    """
    simulator = simulator if simulator is not None else RolePlaySimulator(max_utterances=max_utterances)

    def work(payload: tuple[str, Profile, str]) -> dict[str, Any]:
        dialogue_id, profile, topic = payload
        if profiles is None:
            return simulator(profile=profile, topic=topic, dialogue_id=dialogue_id).dialogue.to_json()
        with _profiled(profiles):
            return simulator(profile=profile, topic=topic, dialogue_id=dialogue_id).dialogue.to_json()

    return Runner(work, output=output, concurrency=concurrency, runtime=runtime,
                  progress=progress if progress is not None else NoProgress(),
                  command="benchmarks/throughput.py", inputs={"benchmark": "throughput"})


def rich_progress() -> tuple[RichProgress, Any]:
    """The rich progress bar a terminal user sees, drawn to a terminal console on /dev/null (and that file)."""
    from rich.console import Console

    sink = open(os.devnull, "w")  # noqa: SIM115 - closed by the caller
    return RichProgress("synthesize", console=Console(file=sink, force_terminal=True, width=120)), sink


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
    _check(result, len(plan))
    return Measure(runtime.usage()["total"]["live_calls"], wall, cpu)


def _check(result: RunResult, expected: int) -> None:
    if result.done != expected or result.failed:
        raise SystemExit(f"benchmark run did not finish cleanly: {result.summary()} (see {result.failures})")


def run_bare(url: str, engine: str, calls: list[tuple[dspy.Predict, dict[str, Any]]], concurrency: int) -> Measure:
    """The same predictor calls from a plain thread pool with a plain ``dspy.LM`` (DSPy's cache off)."""
    lm = bare_lm(url, engine)

    def one(call: tuple[dspy.Predict, dict[str, Any]]) -> Any:
        predictor, inputs = call
        with dspy.context(lm=lm):
            return predictor(**inputs)

    began, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
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
    _check(result, len(plan))
    return recorder.calls


# --- profiling -----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _profiled(profiles: list[cProfile.Profile]) -> Iterator[None]:
    """Profile the block in this thread's CPU time (cProfile is per thread); the profile joins ``profiles``."""
    profile = cProfile.Profile(time.thread_time)
    profiles.append(profile)
    profile.enable()
    try:
        yield
    finally:
        profile.disable()


OTHER = "other (stdlib, json, threading, ...)"
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cscprog cache (+diskcache, sqlite)", ("/cscprog/cache/", "/diskcache/", "/sqlite3/")),
    ("runner (+rich progress)", ("/cscprog/runs/", "/rich/")),
    ("dspy adapter (format, parse)", ("/dspy/adapters/", "/dspy/signatures/")),
    ("http client (lm15, httpx, litellm)", ("/dspy/_vendor/lm15/", "/dspy/clients/engines/", "/httpx/", "/httpcore/",
                                            "/h11/", "/anyio/", "/litellm/", "/openai/", "/aiohttp/",
                                            "/http/client.py", "/socket.py", "/ssl.py", "/selectors.py")),
    ("dspy pricing (clients/costs, model_metadata)", ("/dspy/clients/costs.py", "/dspy/clients/model_metadata/")),
    ("dspy core (Predict, Module, LM, settings)", ("/dspy/",)),
    ("cscprog other (invoke, runtime, roleplay, data)", ("/cscprog/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
)
_STDLIB = sysconfig.get_paths()["stdlib"].replace("\\", "/").rstrip("/") + "/"


def group_of(filename: str) -> str | None:
    """The group of a source file; None for builtins and the standard library, whose time goes to their callers."""
    if filename == "~" or filename.startswith("<"):
        return None
    path = filename.replace("\\", "/")
    for name, markers in GROUPS:
        if any(marker in path for marker in markers):
            return name
    if path.startswith(_STDLIB) and "/site-packages/" not in path:
        return None
    return OTHER


def grouped_self_time(stats: pstats.Stats) -> dict[str, float]:
    """Self CPU seconds per group; builtins and stdlib are charged to their callers' groups, pro rata."""
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    memo: dict[tuple[str, int, str], dict[str, float]] = {}

    def owner(func: tuple[str, int, str], depth: int = 0) -> dict[str, float]:
        group = group_of(func[0])
        if group is not None:
            return {group: 1.0}
        if func in memo:
            return memo[func]
        callers = table.get(func, (0, 0, 0.0, 0.0, {}))[4]
        spent = {caller: values[2] for caller, values in callers.items()}
        whole = sum(spent.values())
        if not whole or depth > 8:
            return {OTHER: 1.0}
        shares: dict[str, float] = {}
        for caller, seconds in spent.items():
            for name, share in owner(caller, depth + 1).items():
                shares[name] = shares.get(name, 0.0) + share * seconds / whole
        memo[func] = shares
        return shares

    totals: dict[str, float] = {}
    for func, values in table.items():
        for name, share in owner(func).items():
            totals[name] = totals.get(name, 0.0) + values[2] * share
    return totals


def _profile_ours(url: str, plan: list[tuple[str, Profile, str]], work: Path, tag: str, max_utterances: int,
                  concurrency: int) -> tuple[list[cProfile.Profile], int]:
    """Profiles of every thread of one cscprog synthesis of ``plan``, and its live calls."""
    runtime = runtime_for(url, "native", work / f"cache-profile-{tag}", concurrency)
    progress, sink = rich_progress()
    main_profile = cProfile.Profile(time.thread_time)  # the runner's main thread: appends, ordering, progress
    profiles = [main_profile]
    runner = synthesis_runner(runtime, work / f"out-profile-{tag}.jsonl", concurrency, max_utterances=max_utterances,
                              progress=progress, profiles=profiles)
    items = [(dialogue_id, (dialogue_id, profile, topic)) for dialogue_id, profile, topic in plan]
    main_profile.enable()
    try:
        result = runner.run(items)
    finally:
        main_profile.disable()
        runtime.close()
        sink.close()
    _check(result, len(plan))
    return profiles, runtime.usage()["total"]["live_calls"]


def _profile_bare(url: str, calls: list[tuple[dspy.Predict, dict[str, Any]]],
                  concurrency: int) -> list[cProfile.Profile]:
    """Profiles of every call of the bare loop over ``calls``."""
    lm = bare_lm(url, "native")
    profiles: list[cProfile.Profile] = []

    def one(call: tuple[dspy.Predict, dict[str, Any]]) -> Any:
        predictor, inputs = call
        with _profiled(profiles), dspy.context(lm=lm):
            return predictor(**inputs)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, calls))
    return profiles


def profile_run(url: str, plan: list[tuple[str, Profile, str]], calls: list[tuple[dspy.Predict, dict[str, Any]]],
                work: Path, max_utterances: int, concurrency: int, top: int, rounds: int = 2) -> None:
    """Profile cscprog syntheses and bare loops over the same calls (rounds interleaved); print where CPU goes."""
    ours_profiles: list[cProfile.Profile] = []
    bare_profiles: list[cProfile.Profile] = []
    ours_calls = bare_count = 0
    per_run = len(plan) * (1 + 2 * max_utterances)
    for round_ in range(rounds):
        for which in ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours"):
            if which == "ours":
                profiles, made = _profile_ours(url, plan, work, str(round_), max_utterances, concurrency)
                ours_profiles.extend(profiles)
                ours_calls += made
            else:
                bare_profiles.extend(_profile_bare(url, calls[:per_run], concurrency))
                bare_count += per_run
    ours = pstats.Stats(*ours_profiles)
    bare = pstats.Stats(*bare_profiles)

    def total(stats: pstats.Stats) -> float:
        return sum(values[2] for values in stats.stats.values())  # type: ignore[attr-defined]

    print(f"\nWhere the client CPU goes: cProfile in every thread (thread CPU time) of {rounds} cscprog runs at "
          f"concurrency {concurrency} (native engine, {ours_calls} calls) and of {rounds} bare loops over the same "
          "calls, interleaved. The profiler inflates call-dense code (about 4-5x here): compare the columns, not the "
          "absolute numbers with the table above.")
    ours_total, bare_total = total(ours), total(bare)
    print(f"  {'group (self time; builtins/stdlib charged to callers)':<52} {'bare ms':>8} {'cscprog ms':>10} "
          f"{'extra ms':>8}   per LM call")
    ours_groups, bare_groups = grouped_self_time(ours), grouped_self_time(bare)
    names = sorted(set(ours_groups) | set(bare_groups), key=lambda name: -ours_groups.get(name, 0.0))
    for name in names:
        mine = 1000 * ours_groups.get(name, 0.0) / ours_calls
        theirs = 1000 * bare_groups.get(name, 0.0) / bare_count
        print(f"  {name:<52} {theirs:>8.2f} {mine:>10.2f} {mine - theirs:>+8.2f}")
    mine, theirs = 1000 * ours_total / ours_calls, 1000 * bare_total / bare_count
    print(f"  {'total':<52} {theirs:>8.2f} {mine:>10.2f} {mine - theirs:>+8.2f}")

    table: dict[tuple[str, int, str], tuple[Any, ...]] = ours.stats  # type: ignore[attr-defined]
    print(f"\n  Top {top} functions of the cscprog run by cumulative CPU, all threads (wrappers over the whole call "
          "skipped):")
    rows = sorted(table.items(), key=lambda pair: -pair[1][3])
    shown = 0
    for (filename, line, name), (_cc, made, _tt, cumulative, _callers) in rows:
        if cumulative > 0.9 * ours_total or name.startswith("<") or filename.startswith(_STDLIB):
            continue
        where = "/".join(filename.replace("\\", "/").split("/")[-2:]) if filename != "~" else "builtin"
        group = group_of(filename) or "builtin"
        print(f"  {1000 * cumulative / ours_calls:7.2f} ms/call {100 * cumulative / ours_total:5.1f}%  {made:>6}x  "
              f"{where}:{line}({name})  [{group.split(' (')[0]}]")
        shown += 1
        if shown >= top:
            break
    ours_only = [(func, values) for func, values in rows
                 if group_of(func[0]) in (GROUPS[0][0], GROUPS[1][0]) and values[3] < 0.5 * ours_total]
    print("\n  Top cscprog cache / runner functions by cumulative CPU:")
    for (filename, line, name), (_cc, made, _tt, cumulative, _callers) in ours_only[:8]:
        where = "/".join(filename.replace("\\", "/").split("/")[-2:])
        print(f"  {1000 * cumulative / ours_calls:7.2f} ms/call {100 * cumulative / ours_total:5.1f}%  {made:>6}x  "
              f"{where}:{line}({name})")


# --- main ----------------------------------------------------------------------------------------------------------


def dialogues_for(concurrency: int, per_worker: int) -> int:
    """Dialogues of a run at ``concurrency``: ``per_worker`` for each worker, at least 2."""
    return max(2, per_worker * concurrency)


def measure_engine(engine: str, url: str, concurrencies: Sequence[int], per_worker: int, rounds: int,
                   calls: list[tuple[dspy.Predict, dict[str, Any]]], plan: list[tuple[str, Profile, str]],
                   work: Path, latency: float, max_utterances: int) -> list[tuple[int, float, float, float]]:
    """(concurrency, cscprog calls/s, bare calls/s, cscprog/bare) at each concurrency: medians of interleaved rounds.

    The ratio is the median of the per-round ratios (each round runs both loops back to back, order alternating).
    """
    per_dialogue = 1 + 2 * max_utterances
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
                    bare.append(run_bare(url, engine, bare_calls, concurrency))
        ours_rate = statistics.median(m.rate for m in ours)
        bare_rate = statistics.median(m.rate for m in bare)
        ratios = [o.rate / b.rate for o, b in zip(ours, bare, strict=True)]
        ratio = statistics.median(ratios)  # paired rounds ran back to back, under the same load
        ours_cpu = statistics.median(m.cpu_ms for m in ours)
        bare_cpu = statistics.median(m.cpu_ms for m in bare)
        rows.append((concurrency, ours_rate, bare_rate, ratio))
        ideal = concurrency / latency
        print(f"  {engine:>7} {concurrency:>4} {ours[0].calls:>6} {ours_rate:>8.1f} {bare_rate:>8.1f} "
              f"{ours_rate / ideal:>7.2f} {bare_rate / ideal:>7.2f} {ratio:>7.3f} {ours_cpu:>8.1f} {bare_cpu:>8.1f}   "
              f"{'ok' if ratio >= 0.9 else 'OVER 10%'}"
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
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--top", type=int, default=15, help="functions shown by the profile")
    args = parser.parse_args(argv)
    per_worker = args.per_worker or (1 if args.quick else 2)
    rounds = args.rounds or (1 if args.quick else 3)
    cap = args.max_utterances or (6 if args.quick else 8)
    litellm_concurrency = args.litellm_concurrency or ([c for c in args.concurrency if c <= 4] if args.quick
                                                       else args.concurrency)
    os.environ[KEY_ENV] = "sk-bench"

    print(f"throughput benchmark{' (quick)' if args.quick else ''}: start {load_text()} on {os.cpu_count()} CPUs "
          "(a shared machine: other work competes for the cores, so absolute rates vary; the two loops run "
          "interleaved and see the same load)")
    largest = max(dialogues_for(c, per_worker) for c in args.concurrency)
    plan = bench_plan(largest)
    with server_process(args.latency, 0.0) as (url, fast_url), tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        calls = record_calls(fast_url, plan, work, cap)
        per_dialogue = 1 + 2 * cap
        if len(calls) != largest * per_dialogue:
            raise SystemExit(f"recorded {len(calls)} calls, expected {largest * per_dialogue}")
        print(f"server latency {args.latency * 1000:.0f} ms; dialogues of {cap} utterances = {per_dialogue} calls; "
              f"{per_worker} dialogue(s) per worker; medians of {rounds} interleaved round(s)")
        print(f"  {'engine':>7} {'conc':>4} {'calls':>6} {'cscprog':>8} {'bare':>8} {'c/ideal':>7} {'b/ideal':>7} "
              f"{'c/bare':>7} {'c CPU ms':>8} {'b CPU ms':>8}   goal c/bare >= 0.90")
        print("  (rates in LM calls/s; CPU ms = client process CPU per call)")
        for engine in args.engines:
            concurrencies = litellm_concurrency if engine == "litellm" else args.concurrency
            measure_engine(engine, url, concurrencies, per_worker, rounds, calls, plan, work, args.latency, cap)
        if not args.no_profile:
            concurrency = max(args.concurrency)
            profile_run(url, plan[: dialogues_for(concurrency, per_worker)], calls, work, cap, concurrency,
                        args.top)
    print(f"\nend {load_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
