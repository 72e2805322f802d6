"""Metric throughput at CSConv's size: 25,810 turn pairs scored with every lexical metric and 95% intervals.

The pairs are built from the packaged Chinese and English samples (``cscprog.samples``): every supporter turn's
gold reply is paired with a reply written for another turn (a realistic mix of partial overlap and none), cycled
until ``--turns`` pairs (default 25,810, CSConv's supporter-turn count); two thirds Chinese. Each profile
(``standard``, ``paper``) is timed end to end through :func:`cscprog.evaluation.metrics.score_predictions`: BLEU-2/4,
ROUGE-L, ACC, macro-F1 and a bootstrap interval for each (``--resamples``, default 1000); the static wordllama
similarity is off (it is timed separately with ``--semantic``). ``--bertscore N`` times BERTScore with the packaged
encoder on the first N pairs (it runs a 12-layer transformer per text: expect tens of pairs a second on 2 cores).

Goal (issue #14): all lexical metrics with intervals under 30 s on 2 cores. Run it under ``nice`` on a shared
machine and note the load average it prints.

Usage:
    nice -n 10 python benchmarks/metrics_throughput.py [--turns 25810] [--resamples 1000] [--bertscore 200]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cscprog.evaluation.metrics import score_predictions  # noqa: E402
from cscprog.framework import load_taxonomy  # noqa: E402
from cscprog.samples import load_sample  # noqa: E402

CSCONV_TURNS = 25_810


def build_records(turns: int) -> list[dict]:
    """``turns`` prediction records from the packaged samples, two thirds Chinese."""
    pools = {}
    for name in ("annotated_zh", "annotated_en"):
        rows = []
        for dialogue in load_sample(name):
            for index in dialogue.supporter_indices():
                turn = dialogue.turns[index]
                rows.append((turn.strategy, turn.text, dialogue.domain or "(none)"))
        pools[name] = rows
    records = []
    cycle = itertools.cycle(["annotated_zh", "annotated_zh", "annotated_en"])
    counters = {name: 0 for name in pools}
    while len(records) < turns:
        name = next(cycle)
        rows, i = pools[name], counters[name]
        counters[name] += 1
        strategy, gold, domain = rows[i % len(rows)]
        other_strategy, other, _ = rows[(i * 7 + 3) % len(rows)]
        records.append({"gold_strategy": strategy, "pred_strategy": other_strategy, "gold_reply": gold,
                        "pred_reply": other, "domain": domain, "language": name[-2:]})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=CSCONV_TURNS)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--semantic", action="store_true", help="also time the static wordllama similarity")
    parser.add_argument("--bertscore", type=int, default=0, help="time BERTScore on the first N pairs")
    args = parser.parse_args()
    taxonomy = load_taxonomy("csc")
    records = build_records(args.turns)
    print(f"{len(records)} pairs; cores available: {len(os.sched_getaffinity(0))}; "
          f"load average at start: {os.getloadavg()[0]:.2f}")
    for profile in ("standard", "paper"):
        started = time.perf_counter()
        result = score_predictions(records, taxonomy, semantic=False, profile=profile, resamples=args.resamples)
        elapsed = time.perf_counter() - started
        print(f"{profile:8s}: {elapsed:6.2f} s, {len(records) / elapsed:8.0f} turns/s "
              f"(BLEU-2 {result['bleu2']:.2f} {result['intervals']['bleu2']['low']:.2f}-"
              f"{result['intervals']['bleu2']['high']:.2f}, R-L {result['rouge_l']:.2f}, ACC {result['accuracy']:.2f}; "
              f"{args.resamples} resamples)")
    if args.semantic:
        from cscprog.evaluation.metrics.semantic import load_semantic_scorer

        scorer, reason = load_semantic_scorer()
        if scorer is None:
            print(f"semantic: {reason}")
        else:
            started = time.perf_counter()
            scorer.corpus([r["pred_reply"] for r in records], [r["gold_reply"] for r in records])
            elapsed = time.perf_counter() - started
            print(f"WL-F1   : {elapsed:6.2f} s, {len(records) / elapsed:8.0f} turns/s")
    if args.bertscore:
        from cscprog.evaluation.metrics.neural import load_bertscore

        started = time.perf_counter()
        scorer, reason = load_bertscore()
        if scorer is None:
            print(f"BERTScore: {reason}")
        else:
            loaded = time.perf_counter() - started
            sample = records[: args.bertscore]
            started = time.perf_counter()
            scorer.score([r["pred_reply"] for r in sample], [r["gold_reply"] for r in sample])
            elapsed = time.perf_counter() - started
            print(f"BERTScore ({scorer.model}, layer {scorer.layer}): load {loaded:.1f} s; {len(sample)} pairs in "
                  f"{elapsed:.1f} s = {len(sample) / elapsed:.1f} turns/s; 25,810 pairs would take "
                  f"{CSCONV_TURNS / (len(sample) / elapsed) / 60:.0f} min")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
