"""Replay speed of cscprog's ResponseCache against DSPy's own disk cache, on the same cached ``Predict`` calls.

Records ``--n`` distinct ``dspy.Predict`` calls once into each cache (an offline engine answering the same text
both times: ours through ``activate``, so its result layer records the parsed outputs too; DSPy's directly), then
replays them with an engine that refuses every call, each replay in a fresh process from a cold cache instance
(our memory layer empty, DSPy's memory layer off), best of ``--repeat`` alternating rounds, and prints calls/s,
the ratio ours/DSPy and the total replay time. Both replays run with DSPy's history disabled (as cscprog's runs
do; the result layer serves only such calls). A last replay of ours under cProfile says where its time goes.

DSPy's cache is reached through the same :class:`cscprog.cache.CacheRouter`, so both pay the same routing.

Usage:
    ```
    python benchmarks/cache_replay.py                      # 25,000 calls, the size of a CSConv evaluation
    python benchmarks/cache_replay.py --n 2000             # quick check
    python benchmarks/cache_replay.py --dir /tmp/b --n 5000 --repeat 4   # re-time an existing recording
    ```
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cscprog.cache import ResponseCache, activate, install_router  # noqa: E402

SIGNATURE = "question -> answer"


class _Engine:
    """Answers the ChatAdapter format; ``refuse=True`` fails on any call (replay must not call it)."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.calls = 0

    def complete(self, request: Any) -> Response:
        self.calls += 1
        if self.refuse:
            raise RuntimeError("replay made an LM call")
        last = request.messages[-1].text or ""
        body = f"[[ ## answer ## ]]\nanswer {len(last)} {last[-40:]!r}\n\n[[ ## completed ## ]]"
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant([TextPart(body)]),
            finish_reason="stop",
            usage=Usage(input_tokens=len(last) // 4, output_tokens=len(body) // 4),
        )

    def stream(self, request: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _questions(n: int) -> list[str]:
    return [f"Customer {i}: my order #{100000 + i} has not arrived; what should I do next?" for i in range(n)]


def _run(program: dspy.Predict, questions: list[str]) -> tuple[float, list[str]]:
    seconds, _cpu, answers = _timed(program, questions)
    return seconds, answers


def _timed(program: dspy.Predict, questions: list[str]) -> tuple[float, float, list[str]]:
    """(wall seconds, CPU seconds of this process, answers)."""
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    answers = [program(question=question).answer for question in questions]
    return time.perf_counter() - start, time.process_time() - cpu, answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=25_000, help="number of cached Predict calls (default 25000)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=2, help="timed replays of each cache, best kept (default 2)")
    parser.add_argument("--replay", choices=("ours", "dspy", "profile"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay:
        return _replay(args.replay, args.n, args.dir)
    work = args.dir or Path(tempfile.mkdtemp(prefix="cscprog-bench-"))
    ours_dir, dspy_dir = work / "ours", work / "dspy"
    questions = _questions(args.n)
    program = dspy.Predict(SIGNATURE)
    install_router()

    # 1. Record once into both caches (a --dir holding a recording of at least --n calls is reused).
    answers_file = work / "answers.txt"
    if answers_file.is_file() and len(answers_file.read_text(encoding="utf-8").split("\n")) >= args.n:
        print(f"reusing the recording in {work}")
    else:
        recorder = _Engine()
        lm = dspy.LM("offline/bench-v1", engine=recorder, temperature=0.0)
        ours = ResponseCache(ours_dir)
        with activate(ours), dspy.context(lm=lm, disable_history=True):
            seconds, recorded = _run(program, questions)
        ours.close()
        theirs = dspy.clients.Cache(
            enable_disk_cache=True,
            enable_memory_cache=False,
            disk_cache_dir=str(dspy_dir),
            disk_size_limit_bytes=int(3e10),
        )
        with dspy.context(lm=lm, cscprog_cache=theirs, disable_history=True):
            _seconds, theirs_recorded = _run(program, questions)
        theirs.disk_cache.close()
        if theirs_recorded != recorded:
            print("FAILED: the two recordings differ", file=sys.stderr)
            return 1
        answers_file.write_text("\n".join(recorded), encoding="utf-8")
        print(f"recorded {args.n} calls into each cache ({args.n / seconds:.0f} calls/s into ours), "
              f"engine {recorder.calls}")

    # 2. Replay each in its own fresh process (cold cache instance, no history or garbage left from the other)
    #    with an engine that refuses every call.
    # The machine may be busy: alternate the order over --repeat rounds and keep each cache's best time.
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for round_ in range(args.repeat):
        for which in ("dspy", "ours") if round_ % 2 == 0 else ("ours", "dspy"):
            command = [sys.executable, __file__, "--replay", which, "--n", str(args.n), "--dir", str(work)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"FAILED: {which} replay: {done.stderr.strip()[-2000:]}", file=sys.stderr)
                return 1
            seconds, cpu_seconds = (float(word) for word in done.stdout.split()[-2:])
            print(f"  round {round_ + 1}: {which:4s} {seconds:6.2f} s wall, {cpu_seconds:6.2f} s CPU")
            wall[which] = min(wall.get(which, seconds), seconds)
            cpu[which] = min(cpu.get(which, cpu_seconds), cpu_seconds)
    n = args.n
    print(
        f"DSPy Cache (disk, memory off):  {n / wall['dspy']:6.0f} calls/s wall ({wall['dspy']:.1f} s), "
        f"{n / cpu['dspy']:6.0f} calls/CPU-s"
    )
    print(
        f"cscprog ResponseCache (replay): {n / wall['ours']:6.0f} calls/s wall ({wall['ours']:.1f} s), "
        f"{n / cpu['ours']:6.0f} calls/CPU-s"
    )
    print(f"ratio ours/DSPy: {wall['dspy'] / wall['ours']:.2f} (wall), {cpu['dspy'] / cpu['ours']:.2f} (CPU)")
    print(f"total replay seconds (ours, {n} calls): {wall['ours']:.1f}")
    command = [sys.executable, __file__, "--replay", "profile", "--n", str(args.n), "--dir", str(work)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"FAILED: profiled replay: {done.stderr.strip()[-2000:]}", file=sys.stderr)
        return 1
    print(done.stdout.rstrip())
    return 0


STAGES = (
    ("DSPy Predict input preparation (_forward_preprocess)", "predict.py", "_forward_preprocess"),
    ("DSPy adapter resolution (resolve_adapter)", "decision.py", "resolve_adapter"),
    ("result key (signature/demos/inputs/LM settings, sha256)", "result_keys.py", "result_key"),
    ("result lookup (SQLite read, checksum, JSON decode)", "results.py", "get"),
    ("hit reporting (counters, observer)", "predict_results.py", "_serve"),
    ("DSPy Prediction + trace (_forward_postprocess)", "predict.py", "_forward_postprocess"),
)


def _profile(program: dspy.Predict, questions: list[str]) -> str:
    """Where a replay's time goes: each stage's share of the profiled total (cProfile inflates absolute times)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for question in questions:
        program(question=question)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values())  # tottime over every function
    lines = [f"where the replay's time goes (cProfile, {len(questions)} calls; shares of the profiled total):"]
    covered = 0.0
    for label, filename, function in STAGES:
        seconds = sum(row[3] for (path, _line, name), row in stats.items() if name == function and
                      path.endswith(filename))
        covered += seconds
        lines.append(f"  {100 * seconds / total:5.1f}%  {label}")
    lines.append(f"  {100 * (total - covered) / total:5.1f}%  the rest: Module.__call__ and callback wrappers, "
                 "settings contexts, the loop")
    return "\n".join(lines)


def _replay(which: str, n: int, work: Path) -> int:
    """One timed replay (run in a child process); prints the seconds as the last word."""
    questions = _questions(n)
    program = dspy.Predict(SIGNATURE)
    install_router()
    refuser = _Engine(refuse=True)
    lm = dspy.LM("offline/bench-v1", engine=refuser, temperature=0.0)
    if which == "dspy":
        cache = dspy.clients.Cache(
            enable_disk_cache=True,
            enable_memory_cache=False,
            disk_cache_dir=str(work / "dspy"),
            disk_size_limit_bytes=int(3e10),
        )
        with dspy.context(lm=lm, cscprog_cache=cache, disable_history=True):
            seconds, cpu, answers = _timed(program, questions)
    elif which == "profile":
        cache = ResponseCache(work / "ours", mode="replay")
        with activate(cache), dspy.context(lm=lm, disable_history=True):
            print(_profile(program, questions))
        cache.close()
        return 0
    else:
        cache = ResponseCache(work / "ours", mode="replay")
        with activate(cache), dspy.context(lm=lm, disable_history=True):
            seconds, cpu, answers = _timed(program, questions)
        counts, results = cache.run_stats(), dict(cache.results.counts)
        cache.close()
        if counts["hits"] != n or counts["misses"] or results["hits"] != n:
            print(f"hits={counts['hits']} misses={counts['misses']} result hits={results['hits']}", file=sys.stderr)
            return 1
    expected = (work / "answers.txt").read_text(encoding="utf-8").split("\n")[:n]
    if refuser.calls or answers != expected:
        print("replay made LM calls or changed outputs", file=sys.stderr)
        return 1
    print(f"{which} {seconds:.4f} {cpu:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
