"""Rewrite real banking calls with the embedded model and report what the CSConv pipeline keeps and why.

The calls are the 200 real SGD banking dialogues in ``../shared/data/sgd_banking/dialogues.jsonl`` (beside the
repository; not part of it). A fixed subset is taken: every ``len // n``-th dialogue of the file sorted by id,
so a run names exactly which calls it measured. Each goes through :class:`cscprog.csconv.rewriter.Rewriter` on
the configured model (by default the embedded Qwen2.5-Coder-0.5B-Instruct; ``--size 1.5b`` when installed),
with the LLM screen and judge on, and the script prints:

* the share kept, with a 95% Wilson interval (the subset is small: the interval says how sure the share is), and
  the share that passed every rule filter, whatever the LLM judge said;
* the share of supporter turns with a valid strategy of the taxonomy, over every rewrite produced (kept or not);
* the share dropped by each ``stage:rule``, and the wall time per call;
* for the ``anchored`` structure, what the supporter and customer turns are relative to the call (rewritten from
  a line of the call, unchanged, kept as said, inserted), over every rewrite produced.

Usage::

    nice -n 10 .venv/bin/python benchmarks/rewrite_real_calls.py --n 10 --out results/rewrite_real_calls.jsonl

The records (decision, candidate rewrite, judge verdict) go to ``--out`` so a reader can see every rewrite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cscprog.config import config_from_dict  # noqa: E402
from cscprog.csconv.rewriter import Rewriter, decision_counts  # noqa: E402
from cscprog.data import Dialogue, read_dialogues  # noqa: E402
from cscprog.framework import load_taxonomy  # noqa: E402
from cscprog.lm.runtime import Runtime  # noqa: E402

SHARED = Path(os.environ.get("CSCPROG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DATA = SHARED / "sgd_banking" / "dialogues.jsonl"


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a share."""
    if total == 0:
        return 0.0, 1.0
    share = successes / total
    centre = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def subset(dialogues: list[Dialogue], n: int) -> list[Dialogue]:
    """Every ``len // n``-th dialogue by id: a fixed, spread-out subset."""
    ordered = sorted(dialogues, key=lambda d: d.id)
    step = max(1, len(ordered) // n)
    return ordered[::step][:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=10, help="how many calls (default 10)")
    parser.add_argument("--size", default="0.5b", choices=["0.5b", "1.5b"], help="embedded model size")
    parser.add_argument("--structure", default="auto", choices=["auto", "anchored", "stepwise", "exchanges", "turns"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", default="~/.cache/cscprog")
    parser.add_argument("--out", type=Path, default=None, help="JSONL of every decision and rewrite")
    parser.add_argument("--no-judge", action="store_true", help="skip the LLM judge")
    parser.add_argument("--no-screen", action="store_true", help="skip the LLM pre-filter (screen)")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data}: not found (the shared real data sits beside the repository)", file=sys.stderr)
        return 2
    calls = subset(read_dialogues(args.data).dialogues, args.n)
    taxonomy = load_taxonomy("csc")
    config = config_from_dict(
        {"lm": {"model": "local", "local_model_size": args.size}, "cache": {"dir": args.cache_dir}}, environ={}
    )
    runtime = Runtime(config)
    rewriter = Rewriter(taxonomy, language="en", use_judge=not args.no_judge, use_screen=not args.no_screen,
                        structure=args.structure)
    results, rows, seconds = [], [], []
    with runtime.activate():
        for dialogue in calls:
            started = time.perf_counter()
            result = rewriter(dialogue=dialogue)
            seconds.append(time.perf_counter() - started)
            results.append(result)
            rows.append({"id": dialogue.id, "seconds": round(seconds[-1], 1), "decision": result.decision.to_json(),
                         "judge": result.judge,
                         "candidate": result.candidate.to_json() if result.candidate is not None else None})
            if args.out:  # one line per call as it finishes, so a long run can be read while it runs
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a" if len(rows) > 1 else "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(rows[-1], ensure_ascii=False) + "\n")
            verdict = "kept" if result.decision.kept else f"{result.decision.stage}:{result.decision.rule}"
            print(f"{dialogue.id}: {verdict} ({seconds[-1]:.0f} s)", file=sys.stderr)
    runtime.close()
    kept = sum(r.decision.kept for r in results)
    low, high = wilson(kept, len(results))
    supporter = valid = 0
    origins: Counter[str] = Counter()
    for result in results:
        if result.candidate is None:
            continue
        for turn in result.candidate.turns:
            origins[f"{turn.speaker} {(turn.metadata or {}).get('origin', 'unmarked')}"] += 1
            if turn.is_supporter:
                supporter += 1
                valid += turn.strategy in taxonomy.names and not turn.extra_strategies
    step = max(1, 200 // args.n)
    print(f"calls: {len(calls)} of {args.data.name} (every {step}th by id: {calls[0].id} ... {calls[-1].id})")
    print(f"model: embedded {args.size}; structure {args.structure}; screen {'off' if args.no_screen else 'on'}; "
          f"judge {'off' if args.no_judge else 'on'}")
    print(f"kept: {kept}/{len(results)} = {kept / len(results):.0%} (95% Wilson interval {low:.0%}-{high:.0%})")
    ruled = sum(r.decision.kept or r.decision.stage == "judge" for r in results)
    low, high = wilson(ruled, len(results))
    print(f"passed every rule filter (pre-filter, rewrite checks, post-filters, degenerate text), judge aside: "
          f"{ruled}/{len(results)} = {ruled / len(results):.0%} (95% Wilson interval {low:.0%}-{high:.0%})")
    share = valid / supporter if supporter else 0.0
    print(f"supporter turns with one valid strategy: {valid}/{supporter} = {share:.0%} (over every rewrite produced)")
    for side in ("supporter", "customer"):
        total = sum(count for key, count in origins.items() if key.startswith(side))
        parts = ", ".join(f"{key.split()[1]} {count}" for key, count in sorted(origins.items()) if key.startswith(side))
        print(f"{side} turns ({total}, over every rewrite produced): {parts}")
    for key, count in decision_counts(r.decision for r in results).items():
        if key != "kept":
            print(f"dropped by {key}: {count}/{len(results)} = {count / len(results):.0%}")
    print(f"seconds per call: mean {sum(seconds) / len(seconds):.0f}, max {max(seconds):.0f} (2 shared cores)")
    print(json.dumps({"kept": kept, "n": len(results), "valid_strategy": [valid, supporter], "origins": dict(origins),
                      "drops": dict(Counter(f"{r.decision.stage}:{r.decision.rule}" for r in results
                                            if not r.decision.kept))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
