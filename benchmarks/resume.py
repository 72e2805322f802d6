"""Resume cost: how long ``Runner(..., resume=True)`` takes to pick up a 10,000-item output with one item left.

What it measures: an output JSONL of ``--items`` (10,000) synthesized-dialogue records (one real
``RolePlaySimulator`` dialogue of 16 utterances, made offline with a scripted LM, repeated under each item's id:
about 7 KB a line, as ``cscprog synthesize`` writes them) in which every item but one is finished, followed by the
torn half line a ``kill -9`` leaves. The timed part is end to end: a :class:`cscprog.lm.runtime.Runtime` (opening the
cache directory the interrupted run made), the runner, ``run(items)`` over all 10,000 items (lock, torn-tail repair,
id scan, the one item run on a worker, fsynced append, the atomic rewrite in input order, failures file and
manifest) and closing the runtime. The missing item sits in the middle of the input order, so the final rewrite
moves the whole file (the worst case); the run with the last item missing (no rewrite) is timed too. Each case is
rebuilt and timed ``--repeat`` times; the median is printed with the scan and rewrite parts measured alone.

Goal: under 2 s for 10,000 items with 9,999 done. The machine may be shared and loaded: the load average at the
start and the end is printed.

Usage:
    python benchmarks/resume.py               # 10,000 items
    python benchmarks/resume.py --quick       # 2,000 items
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dspy  # noqa: E402
import loopback  # noqa: E402  (the role-play answers and profiles)
import synthesis  # noqa: E402  (the runtime set-up)

from cscprog.rolecs.plan import TOPICS  # noqa: E402
from cscprog.rolecs.roleplay import RolePlaySimulator  # noqa: E402
from cscprog.runs import Runner, encode_result, rewrite_in_order, scan_output  # noqa: E402
from cscprog.testing import scripted_lm  # noqa: E402

UNUSED_ENDPOINT = "http://127.0.0.1:9/v1"
"""The runtime's endpoint: the one item left needs no LM, so nothing is ever sent there."""
TORN = b'{"id": "torn-by-kill", "turns": [{"speaker": "supporter", "text": "Good mor'


def template_record() -> dict[str, Any]:
    """One real synthesized dialogue record (16 utterances), made offline with a scripted LM."""
    profile = loopback.bench_profiles(1)[0]
    with dspy.context(lm=scripted_lm(loopback.synthesis_answer)):
        dialogue = RolePlaySimulator(max_utterances=16)(profile=profile, topic=TOPICS[0], dialogue_id="template")
    return dialogue.dialogue.to_json()


def item_ids(count: int) -> list[str]:
    """Stable item ids in input order."""
    return [f"rp-{index:06d}" for index in range(count)]


def build_output(path: Path, template: dict[str, Any], ids: list[str], missing: str) -> int:
    """Write every item's record except ``missing`` (in input order) plus a torn last line; return the bytes."""
    with path.open("wb") as out:
        for item_id in ids:
            if item_id != missing:
                out.write(encode_result({**template, "id": item_id}, item_id, id_field="id", sinks={"output"})[1])
        out.write(TORN)
    for stale in (path.with_name(path.name + ".manifest.json"), path.with_name(path.name + ".failures.jsonl")):
        stale.unlink(missing_ok=True)
    return path.stat().st_size


def timed_resume(path: Path, template: dict[str, Any], ids: list[str], cache_dir: Path) -> tuple[float, Any]:
    """Seconds of one end-to-end resume (runtime, runner, run, close) and its result."""
    def work(item_id: str) -> dict[str, Any]:
        return {**template, "id": item_id}

    began = time.perf_counter()
    runtime = synthesis.runtime_for(UNUSED_ENDPOINT, "native", cache_dir, 4)  # as a CLI run builds one
    runner = Runner(work, output=path, resume=True, concurrency=4, runtime=runtime, command="benchmarks/resume.py",
                    inputs={"items": len(ids)})
    result = runner.run([(item_id, item_id) for item_id in ids])
    runtime.close()
    return time.perf_counter() - began, result


def timed(action: Callable[[], Any]) -> float:
    """Seconds ``action`` takes."""
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 items instead of 10,000")
    parser.add_argument("--items", type=int, default=None, help="items in the output (default 10000; quick 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed resumes of each case (default 3)")
    args = parser.parse_args(argv)
    count = args.items or (2000 if args.quick else 10_000)
    logging.getLogger("cscprog.runs.output").setLevel(logging.ERROR)  # the expected torn-line warning
    os.environ[loopback.KEY_ENV] = "sk-bench"
    print(f"resume benchmark{' (quick)' if args.quick else ''}: start {loopback.load_text()} on {os.cpu_count()} "
          "CPUs (a shared machine: other work competes for the cores and the disk, so times vary)")
    template = template_record()
    ids = item_ids(count)
    cases = {"middle item missing (full rewrite)": ids[count // 2], "last item missing (no rewrite)": ids[-1]}
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        path = work / "dialogues.jsonl"
        cache_dir = work / "cache"  # made by the interrupted run (a fresh one costs ~0.6 s more to create)
        synthesis.runtime_for(UNUSED_ENDPOINT, "native", cache_dir, 4).close()
        size = 0
        for name, missing in cases.items():
            seconds = []
            for _ in range(args.repeat):
                size = build_output(path, template, ids, missing)
                elapsed, result = timed_resume(path, template, ids, cache_dir)
                if result.done != 1 or result.skipped != count - 1 or result.failed or not result.dropped_bytes:
                    raise SystemExit(f"{name}: unexpected resume result: {result.summary()}")
                seconds.append(elapsed)
            size_mb = size / 1024 / 1024
            scan = timed(lambda: scan_output(path, "id", repair=False))
            shuffled = ids[1:] + ids[:1]  # forces a full rewrite of the (now complete) file
            rewrite = timed(lambda order=shuffled: rewrite_in_order(path, order, "id"))
            rows.append((name, statistics.median(seconds), min(seconds), max(seconds), scan, rewrite, size_mb))
    print(f"{count} items, {count - 1} done, a torn last line; records of {size / count / 1024:.1f} KB "
          f"({rows[0][6]:.0f} MB file); median of {args.repeat} end-to-end resumes")
    print(f"  {'case':<38} {'median s':>8} {'min':>6} {'max':>6} {'scan s':>7} {'rewrite s':>9}   goal < 2 s")
    for name, median, low, high, scan, rewrite, _size in rows:
        print(f"  {name:<38} {median:>8.2f} {low:>6.2f} {high:>6.2f} {scan:>7.2f} {rewrite:>9.2f}   "
              f"{'ok' if median < 2.0 else 'OVER'}")
    print(f"end {loopback.load_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
