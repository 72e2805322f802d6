"""Where the client CPU goes: cProfile in every thread of cscprog syntheses and of bare loops, grouped by library.

cProfile profiles only the thread that enables it, so every worker's item runs under a profile of its own
(:func:`_profiled`, timed in thread CPU time) and the profiles are merged with :class:`pstats.Stats`.
:func:`grouped_self_time` charges self time to groups of source files (:data:`GROUPS`: dspy adapter, http client,
cscprog cache, runner, ...); builtins and the standard library go to their callers' groups. :func:`profile_run` runs
both loops interleaved and returns the report lines.

Example:
    ```python
    from profiling import profile_run

    lines = profile_run(url, plan, calls, work, max_utterances=8, concurrency=16, top=15)
    print("\\n".join(lines))  # per LM call: bare ms, cscprog ms and the difference, by group
    ```
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import pstats
import sys
import sysconfig
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dspy  # noqa: E402
from synthesis import bare_lm, bare_pricing, check_result, rich_progress, runtime_for, synthesis_runner  # noqa: E402

from cscprog.data import Profile  # noqa: E402

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
"""The groups of :func:`group_of`, first match wins: (name, markers in the source path)."""
_STDLIB = sysconfig.get_paths()["stdlib"].replace("\\", "/").rstrip("/") + "/"


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
                  concurrency: int, engine: str = "native") -> tuple[list[cProfile.Profile], int]:
    """Profiles of every thread of one cscprog synthesis of ``plan``, and its live calls."""
    runtime = runtime_for(url, engine, work / f"cache-profile-{tag}", concurrency)
    progress, sink = rich_progress()
    main_profile = cProfile.Profile(time.thread_time)  # the runner's main thread: appends, ordering, progress
    profiles = [main_profile]
    runner = synthesis_runner(runtime, work / f"out-profile-{tag}.jsonl", concurrency, max_utterances=max_utterances,
                              progress=progress, item_context=functools.partial(_profiled, profiles))
    items = [(dialogue_id, (dialogue_id, profile, topic)) for dialogue_id, profile, topic in plan]
    main_profile.enable()
    try:
        result = runner.run(items)
    finally:
        main_profile.disable()
        runtime.close()
        sink.close()
    check_result(result, len(plan))
    return profiles, runtime.usage()["total"]["live_calls"]


def _profile_bare(url: str, calls: list[tuple[dspy.Predict, dict[str, Any]]],
                  concurrency: int, shipped_pricing: bool = True, engine: str = "native") -> list[cProfile.Profile]:
    """Profiles of every call of the bare loop over ``calls``."""
    lm = bare_lm(url, engine)
    profiles: list[cProfile.Profile] = []

    def one(call: tuple[dspy.Predict, dict[str, Any]]) -> Any:
        predictor, inputs = call
        with _profiled(profiles), dspy.context(lm=lm):
            return predictor(**inputs)

    with bare_pricing(shipped_pricing), ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, calls))
    return profiles


def profile_run(url: str, plan: list[tuple[str, Profile, str]], calls: list[tuple[dspy.Predict, dict[str, Any]]],
                work: Path, max_utterances: int, concurrency: int, top: int, rounds: int = 2,
                shipped_pricing: bool = True, engine: str = "native", per_dialogue: int | None = None) -> list[str]:
    """Profile cscprog syntheses and bare loops over the same calls (rounds interleaved); where CPU goes, as lines."""
    ours_profiles: list[cProfile.Profile] = []
    bare_profiles: list[cProfile.Profile] = []
    ours_calls = bare_count = 0
    per_run = len(plan) * (per_dialogue or 1 + 2 * max_utterances)
    for round_ in range(rounds):
        for which in ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours"):
            if which == "ours":
                profiles, made = _profile_ours(url, plan, work, str(round_), max_utterances, concurrency,
                                                 engine)
                ours_profiles.extend(profiles)
                ours_calls += made
            else:
                bare_profiles.extend(_profile_bare(url, calls[:per_run], concurrency, shipped_pricing, engine))
                bare_count += per_run
    ours = pstats.Stats(*ours_profiles)
    bare = pstats.Stats(*bare_profiles)

    def total(stats: pstats.Stats) -> float:
        return sum(values[2] for values in stats.stats.values())  # type: ignore[attr-defined]

    lines = [f"\nWhere the client CPU goes: cProfile in every thread (thread CPU time) of {rounds} cscprog runs at "
             f"concurrency {concurrency} ({engine} engine, {ours_calls} calls) and of {rounds} bare loops over the "
             "same calls, interleaved. The profiler inflates call-dense code (about 4-5x here): compare the columns, "
             "not the absolute numbers with the table above."]
    ours_total, bare_total = total(ours), total(bare)
    lines.append(f"  {'group (self time; builtins/stdlib charged to callers)':<52} {'bare ms':>8} {'cscprog ms':>10} "
                 f"{'extra ms':>8}   per LM call")
    ours_groups, bare_groups = grouped_self_time(ours), grouped_self_time(bare)
    names = sorted(set(ours_groups) | set(bare_groups), key=lambda name: -ours_groups.get(name, 0.0))
    for name in names:
        mine = 1000 * ours_groups.get(name, 0.0) / ours_calls
        theirs = 1000 * bare_groups.get(name, 0.0) / bare_count
        lines.append(f"  {name:<52} {theirs:>8.2f} {mine:>10.2f} {mine - theirs:>+8.2f}")
    mine, theirs = 1000 * ours_total / ours_calls, 1000 * bare_total / bare_count
    lines.append(f"  {'total':<52} {theirs:>8.2f} {mine:>10.2f} {mine - theirs:>+8.2f}")

    table: dict[tuple[str, int, str], tuple[Any, ...]] = ours.stats  # type: ignore[attr-defined]
    lines.append(f"\n  Top {top} functions of the cscprog run by cumulative CPU, all threads (wrappers over the whole "
                 "call skipped):")
    rows = sorted(table.items(), key=lambda pair: -pair[1][3])
    shown = 0
    for (filename, line, name), (_cc, made, _tt, cumulative, _callers) in rows:
        if cumulative > 0.9 * ours_total or name.startswith("<") or filename.startswith(_STDLIB):
            continue
        where = "/".join(filename.replace("\\", "/").split("/")[-2:]) if filename != "~" else "builtin"
        group = group_of(filename) or "builtin"
        lines.append(f"  {1000 * cumulative / ours_calls:7.2f} ms/call {100 * cumulative / ours_total:5.1f}%  "
                     f"{made:>6}x  {where}:{line}({name})  [{group.split(' (')[0]}]")
        shown += 1
        if shown >= top:
            break
    ours_only = [(func, values) for func, values in rows
                 if group_of(func[0]) in (GROUPS[0][0], GROUPS[1][0]) and values[3] < 0.5 * ours_total]
    lines.append("\n  Top cscprog cache / runner functions by cumulative CPU:")
    for (filename, line, name), (_cc, made, _tt, cumulative, _callers) in ours_only[:8]:
        where = "/".join(filename.replace("\\", "/").split("/")[-2:])
        lines.append(f"  {1000 * cumulative / ours_calls:7.2f} ms/call {100 * cumulative / ours_total:5.1f}%  "
                     f"{made:>6}x  {where}:{line}({name})")
    return lines
