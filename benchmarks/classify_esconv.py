"""Label the supporter turns of real ESConv dialogues with the embedded model and score against the gold labels.

The dialogues are ``../shared/data/esconv/FailedESConv.json`` (beside the repository, not part of it; ESConv is
CC BY-NC 4.0, so it is used here for measurement only and nothing fitted to it ships). A fixed slice is taken in
file order: ``--offset`` dialogues are skipped and the next ``--dialogues`` are labelled, so a development slice
(used to choose settings) and a held-out slice (reported) never overlap. Every supporter turn with a gold label
is classified by :class:`cscprog.agents.classifier.StrategyClassifier` with the ``esconv`` taxonomy.

Printed: accuracy with a 95% Wilson interval, chance (1 / labels) and the majority-label baseline, the share of
the most frequent prediction, and per label: gold count, predicted count, precision and recall.

``--method trained`` needs no LM: it trains :func:`cscprog.agents.strategy_model.train_strategy_model`
(logistic regression on multilingual-e5-small embeddings, what ``cscprog train-classifier`` does) on the
dialogues from ``--train-from`` to the end of the file (never overlapping the scored slice; nothing is held out
inside them), labels the slice with it through :class:`StrategyClassifier`, and reports the slice and also its
first ``--first`` dialogues (the slice the README's scored figures use). The model is not saved.

Usage::

    nice -n 10 .venv/bin/python benchmarks/classify_esconv.py --offset 10 --dialogues 8 --method score
    nice -n 10 .venv/bin/python benchmarks/classify_esconv.py --offset 10 --dialogues 50 --method trained \
        --train-from 60 --first 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewrite_real_calls import wilson  # noqa: E402

from cscprog.agents.classifier import StrategyClassifier  # noqa: E402
from cscprog.agents.strategy_model import train_strategy_model  # noqa: E402
from cscprog.config import config_from_dict  # noqa: E402
from cscprog.data import read_dialogues  # noqa: E402
from cscprog.framework import Taxonomy, load_taxonomy  # noqa: E402
from cscprog.lm.runtime import Runtime  # noqa: E402

SHARED = Path(os.environ.get("CSCPROG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DATA = SHARED / "esconv" / "FailedESConv.json"


def calibrated_run(args: argparse.Namespace) -> bool:
    """True when the run scores labels with calibration (then the uncalibrated choice is reported too)."""
    return args.method == "score" and not args.no_calibrate


def report(pairs: list[tuple[str, str | None]], names: tuple[str, ...]) -> None:
    """Accuracy with its interval, the most frequent prediction's share, and precision/recall per label."""
    total = len(pairs)
    correct = sum(gold == predicted for gold, predicted in pairs)
    low, high = wilson(correct, total)
    gold_counts = Counter(gold for gold, _ in pairs)
    predicted_counts = Counter(predicted for _, predicted in pairs)
    top, top_count = predicted_counts.most_common(1)[0]
    print(f"accuracy: {correct}/{total} = {correct / total:.1%} (95% Wilson interval {low:.1%}-{high:.1%}); "
          f"chance {1 / len(names):.1%}; majority gold label {gold_counts.most_common(1)[0][0]!r} "
          f"{gold_counts.most_common(1)[0][1] / total:.1%}")
    print(f"most frequent prediction: {top!r} {top_count}/{total} = {top_count / total:.1%} of predictions")
    print(f"{'label':32} {'gold':>5} {'pred':>5} {'precision':>9} {'recall':>7}")
    for name in names:
        hits = sum(1 for gold, predicted in pairs if gold == predicted == name)
        precision = hits / predicted_counts[name] if predicted_counts[name] else 0.0
        recall = hits / gold_counts[name] if gold_counts[name] else 0.0
        print(f"{name:32} {gold_counts[name]:5d} {predicted_counts[name]:5d} {precision:9.0%} {recall:7.0%}")
    print(json.dumps({"correct": correct, "n": total, "top_share": round(top_count / total, 4),
                      "predicted": dict(predicted_counts), "gold": dict(gold_counts)}))


def trained_run(args: argparse.Namespace, taxonomy: Taxonomy, everything: list, dialogues: list) -> int:
    """Train on ``everything[args.train_from:]``, label ``dialogues`` and report (see the module docstring)."""
    if args.train_from < args.offset + len(dialogues):
        print(f"--train-from {args.train_from} overlaps the scored dialogues {args.offset}.."
              f"{args.offset + len(dialogues) - 1}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    model = train_strategy_model(everything[args.train_from:], taxonomy, context_turns=args.trained_context_turns,
                                 held_out=0.0, l2=args.l2, sources=[args.data.name])
    trained_seconds = time.perf_counter() - started
    classifier = StrategyClassifier(taxonomy, method="trained", model=model)
    started = time.perf_counter()
    pairs_by_dialogue = []
    for dialogue in dialogues:
        result = classifier(dialogue)
        pairs_by_dialogue.append([(dialogue.turns[i].strategy, result.dialogue.turns[i].strategy)
                                  for i in dialogue.supporter_indices() if dialogue.turns[i].strategy])
    seconds = time.perf_counter() - started
    pairs = [pair for dialogue_pairs in pairs_by_dialogue for pair in dialogue_pairs]
    card = model.card
    print(f"training: {args.data.name} dialogues {args.train_from}..{len(everything) - 1} in file order "
          f"({card['data']['dialogues']} dialogues, {card['data']['turns']} gold-labelled supporter turns); "
          f"encoder {card['encoder']}; logistic regression, l2 {args.l2}; context {args.trained_context_turns} "
          f"turns; {trained_seconds:.0f} s (embedding included)")
    print(f"training labels: {json.dumps(card['per_label_counts'])}")
    print(f"\nheld out: dialogues {args.offset}..{args.offset + len(dialogues) - 1} in file order "
          f"({len(dialogues)} dialogues, {len(pairs)} gold-labelled supporter turns); "
          f"{seconds / max(1, len(pairs)):.2f} s per turn")
    report(pairs, taxonomy.names)
    if 0 < args.first < len(dialogues):
        first = [pair for dialogue_pairs in pairs_by_dialogue[: args.first] for pair in dialogue_pairs]
        print(f"\nthe first {args.first} of them: dialogues {args.offset}..{args.offset + args.first - 1} "
              f"({len(first)} turns)")
        report(first, taxonomy.names)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--offset", type=int, default=10, help="dialogues skipped first (default 10: the dev slice)")
    parser.add_argument("--dialogues", type=int, default=8, help="dialogues labelled (default 8)")
    parser.add_argument("--method", default="score", choices=["score", "generate", "trained"])
    parser.add_argument("--train-from", type=int, default=60, help="trained: train on dialogues from here on")
    parser.add_argument("--trained-context-turns", type=int, default=0, help="trained: context turns embedded")
    parser.add_argument("--l2", type=float, default=0.3, help="trained: L2 penalty")
    parser.add_argument("--first", type=int, default=5, help="trained: also report the slice's first N dialogues")
    parser.add_argument("--no-calibrate", action="store_true", help="raw label likelihoods (score method)")
    parser.add_argument("--context-turns", type=int, default=6)
    parser.add_argument("--size", default="0.5b", choices=["0.5b", "1.5b"])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", default="~/.cache/cscprog")
    parser.add_argument("--out", type=Path, default=None, help="JSONL: gold, predicted, scores per turn")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data}: not found (the shared real data sits beside the repository)", file=sys.stderr)
        return 2
    taxonomy = load_taxonomy("esconv")
    everything = read_dialogues(args.data, taxonomy=taxonomy).dialogues
    dialogues = everything[args.offset : args.offset + args.dialogues]
    if args.method == "trained":
        return trained_run(args, taxonomy, everything, dialogues)
    config = config_from_dict(
        {"lm": {"model": "local", "local_model_size": args.size}, "cache": {"dir": args.cache_dir}}, environ={}
    )
    runtime = Runtime(config)
    classifier = StrategyClassifier(taxonomy, context_turns=args.context_turns, method=args.method,
                                    calibrate=not args.no_calibrate, concurrency=1)
    pairs: list[tuple[str, str | None]] = []
    rows = []
    started = time.perf_counter()
    with runtime.activate():
        for dialogue in dialogues:
            gold = {i: dialogue.turns[i].strategy for i in dialogue.supporter_indices() if dialogue.turns[i].strategy}
            result = classifier(dialogue.model_copy(update={"language": dialogue.language or "en"}))
            for index, label in gold.items():
                turn = result.dialogue.turns[index]
                pairs.append((label, turn.strategy))
                rows.append({"dialogue": dialogue.id, "turn": index, "gold": label, "predicted": turn.strategy,
                             "text": turn.text, **({"scores": turn.metadata.get("strategy_scores")})})
            print(f"{dialogue.id}: {sum(g == p for g, p in pairs)}/{len(pairs)} so far", file=sys.stderr)
        prior = classifier.scorer.prior(runtime.lm("classifier")) if calibrated_run(args) else None
    seconds = time.perf_counter() - started
    runtime.close()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    total = len(pairs)
    calibrated = "on" if calibrated_run(args) else "off"
    print(f"data: {args.data.name}, dialogues {args.offset}..{args.offset + len(dialogues) - 1} in file order "
          f"({len(dialogues)} dialogues, {total} gold-labelled supporter turns)")
    print(f"model: embedded {args.size}; method {args.method}; calibration {calibrated}; "
          f"context {args.context_turns} turns; {seconds / max(1, total):.1f} s per turn")
    report(pairs, taxonomy.names)
    if prior is not None:
        # the same run without calibration: raw log-likelihood = calibrated score + the label's prior
        raw = [(row["gold"], max(prior, key=lambda name, row=row: row["scores"]["scores"][name] + prior[name]))
               for row in rows]
        print("\nthe same turns, uncalibrated (raw label log-likelihoods):")
        report(raw, taxonomy.names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
