"""Compare two evaluation runs on the same turns: per-metric difference, 95% interval and p-value, with breakdowns.

A run is an evaluation output directory (``predictions.jsonl`` and ``result.json``, as ``cscprog evaluate``
writes) or a predictions file. :func:`load_run` reads it; :func:`compare_runs` checks that both runs hold exactly
the same turns (same ``dialogue_id`` and ``turn_index`` and the same gold reply; otherwise a
:class:`~cscprog.errors.DataError` names the turns that differ), scores both with one profile
(:mod:`~cscprog.evaluation.metrics.columns`), and for every metric reports B - A with a paired test
(:mod:`~cscprog.evaluation.intervals`): the paired bootstrap (default) or approximate randomization. The same is
done within each gold strategy and each domain. :func:`difference_sentence` words one result for a reader, saying
plainly when a difference is not significant.

Example:
    ```python
    from cscprog.evaluation.compare import compare_runs, load_run

    report = compare_runs(load_run("eval/base"), load_run("eval/compiled"), profile="standard")
    report["metrics"]["rouge_l"]   # {'a': 14.3, 'b': 15.1, 'delta': 0.8, 'low': -0.4, 'high': 2.0, 'p_value': 0.21, ..}
    ```
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cscprog.errors import DataError
from cscprog.evaluation.evaluate import PREDICTIONS, RESULT
from cscprog.evaluation.intervals import (
    DEFAULT_RESAMPLES,
    Difference,
    Statistic,
    approximate_randomization,
    paired_bootstrap,
)
from cscprog.evaluation.metrics.columns import Column, Scorers, metric_columns
from cscprog.evaluation.metrics.conventions import get_profile
from cscprog.evaluation.predictions import read_predictions

__all__ = ["TESTS", "RunRecords", "compare_runs", "difference_sentence", "load_run", "p_text"]

TESTS = ("bootstrap", "randomization")
"""The paired tests :func:`compare_runs` offers."""

LABELS = {"bleu2": "BLEU-2", "bleu4": "BLEU-4", "rouge_l": "ROUGE-L", "bertscore": "BERTScore", "bleurt": "BLEURT",
          "semantic": "WL-F1", "accuracy": "ACC", "macro_f1": "macro-F1"}
"""Display names of the metric keys."""

SHOWN_MISMATCHES = 10


@dataclass
class RunRecords:
    """One run's per-turn records, keyed by ``(dialogue_id, turn_index)``, and its result (when there is one)."""

    path: Path
    records: dict[tuple[str, int], dict[str, Any]]
    result: dict[str, Any]

    @property
    def profile(self) -> str | None:
        """The metric profile the run was scored with, when its result says."""
        return (self.result.get("metrics") or {}).get("profile")


def load_run(path: str | os.PathLike[str]) -> RunRecords:
    """Read a run directory (or a predictions file).

    Raises:
        DataError: no predictions file, a malformed line, a record without ``dialogue_id``/``turn_index``, or
            a turn listed twice (naming the file and line).

    Example:
        ```python
        run = load_run("eval/base")
        ```
    """
    source = Path(path)
    predictions = source / PREDICTIONS if source.is_dir() else source
    result_path = predictions.parent / RESULT
    result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.is_file() else {}
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for line, record in read_predictions(predictions):
        for name in ("dialogue_id", "turn_index", "gold_strategy", "gold_reply"):
            if name not in record:
                raise DataError(str(predictions), f"missing field {name!r}", line=line, field=name)
        key = (str(record["dialogue_id"]), int(record["turn_index"]))
        if key in records:
            raise DataError(str(predictions), f"turn {key[0]}#{key[1]} listed twice", line=line)
        records[key] = record
    if not records:
        raise DataError(str(predictions), "no predictions")
    return RunRecords(predictions, records, result)


def _check_same_turns(a: RunRecords, b: RunRecords) -> list[tuple[str, int]]:
    only_a = sorted(set(a.records) - set(b.records))
    only_b = sorted(set(b.records) - set(a.records))
    differ = sorted(k for k in set(a.records) & set(b.records)
                    if a.records[k]["gold_reply"] != b.records[k]["gold_reply"])
    if only_a or only_b or differ:
        parts = []
        for label, keys in ((f"only in {a.path}", only_a), (f"only in {b.path}", only_b),
                            ("with different gold replies", differ)):
            if keys:
                shown = ", ".join(f"{d}#{t}" for d, t in keys[:SHOWN_MISMATCHES])
                more = f" and {len(keys) - SHOWN_MISMATCHES} more" if len(keys) > SHOWN_MISMATCHES else ""
                parts.append(f"{len(keys)} turn(s) {label}: {shown}{more}")
        raise DataError(str(b.path), "the runs are not on the same turns; " + "; ".join(parts))
    return sorted(a.records)


def _columns(run: RunRecords, keys: Sequence[tuple[str, int]], labels: Sequence[str], profile_name: str,
             scorers: Scorers) -> dict[str, Column]:
    rows = [run.records[key] for key in keys]
    return metric_columns([r.get("pred_reply") for r in rows], [r["gold_reply"] for r in rows],
                          [r["gold_strategy"] for r in rows], [r.get("pred_strategy") for r in rows], labels,
                          get_profile(profile_name), scorers)


def _test(a: Statistic, b: Statistic, test: str, resamples: int, seed: int) -> Difference:
    if test == "randomization":
        return approximate_randomization(a, b, trials=resamples, seed=seed)
    return paired_bootstrap(a, b, resamples=resamples, seed=seed)


def _entry(key: str, a: Statistic, b: Statistic, test: str, resamples: int, seed: int) -> dict[str, Any]:
    diff = _test(a, b, test, resamples, seed)
    entry = {"a": round(a.point(), 4), "b": round(b.point(), 4), "n": a.n, **diff.as_dict()}
    entry["sentence"] = difference_sentence(LABELS.get(key, key), entry)
    return entry


def _subset(statistic: Statistic, mask: np.ndarray) -> Statistic:
    return Statistic(statistic.rows[mask], statistic.score)


def compare_runs(
    a: RunRecords,
    b: RunRecords,
    *,
    labels: Sequence[str],
    profile: str | None = None,
    scorers: Scorers | None = None,
    test: str = "bootstrap",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    min_group: int = 5,
) -> dict[str, Any]:
    """B - A for every metric of the profile, overall and per gold strategy and domain.

    Args:
        a: The baseline run.
        b: The run compared with it.
        labels: The taxonomy's strategy names (for macro-F1).
        profile: Metric profile (default: run A's, else ``standard``).
        scorers: Model-based scorers (default: none, so BERTScore/BLEURT/WL-F1 say why they are absent).
        test: ``bootstrap`` (paired bootstrap) or ``randomization`` (approximate randomization).
        resamples: Resamples (or shuffles) per test.
        seed: Random seed of every test.
        min_group: Breakdown groups with fewer turns are listed without a test.

    Raises:
        DataError: the runs are not on the same turns (naming them).
        ValueError: unknown ``test`` or profile.

    Example:
        ```python
        compare_runs(load_run("eval/a"), load_run("eval/b"), labels=taxonomy.names, test="randomization")
        ```
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    keys = _check_same_turns(a, b)
    profile_name = profile or a.profile or "standard"
    scorers = scorers or Scorers(reasons={"bertscore": "not requested", "bleurt": "not requested",
                                          "semantic": "not requested"})
    cols_a = _columns(a, keys, labels, profile_name, scorers)
    cols_b = _columns(b, keys, labels, profile_name, scorers)
    metrics: dict[str, Any] = {}
    for key, column in cols_a.items():
        other = cols_b[key]
        if column.statistic is None or other.statistic is None:
            metrics[key] = {"unavailable": column.unavailable or other.unavailable, "signature": column.signature}
            continue
        metrics[key] = {**_entry(key, column.statistic, other.statistic, test, resamples, seed),
                        "signature": column.signature}
    breakdowns: dict[str, dict[str, Any]] = {}
    for field, name in (("gold_strategy", "strategy"), ("domain", "domain")):
        values = np.array([str(a.records[k].get(field) or "(none)") for k in keys])
        groups: dict[str, Any] = {}
        for group in sorted(set(values)):
            mask = values == group
            if mask.sum() < min_group:
                groups[group] = {"n": int(mask.sum()), "note": f"fewer than {min_group} turns: not tested"}
                continue
            groups[group] = {key: _entry(key, _subset(cols_a[key].statistic, mask),
                                         _subset(cols_b[key].statistic, mask), test, resamples, seed)
                             for key in ("accuracy", "rouge_l", "bleu2") if cols_a[key].statistic is not None}
            groups[group]["n"] = int(mask.sum())
        breakdowns[name] = groups
    return {"a": str(a.path), "b": str(b.path), "turns": len(keys), "profile": profile_name, "test": test,
            "resamples": resamples, "seed": seed, "confidence": 0.95, "metrics": metrics, "breakdowns": breakdowns}


def p_text(entry: dict[str, Any]) -> str:
    """``p = 0.048``, or ``p < 0.001`` when no resample crossed zero (the test's resolution is 1/resamples).

    Example:
        ```python
        p_text({"p_value": 0.0, "resamples": 1000})   # 'p < 0.001'
        ```
    """
    if entry["p_value"] == 0 and entry.get("resamples"):
        return f"p < {1 / entry['resamples']:.2g}"
    return f"p = {entry['p_value']:.3g}"


def difference_sentence(label: str, entry: dict[str, Any]) -> str:
    """One plain sentence about a difference entry (``delta``, ``low``, ``high``, ``p_value``, ``n``).

    Example:
        ```python
        difference_sentence("ROUGE-L", {"delta": 0.4, "low": -0.8, "high": 1.6, "p_value": 0.48, "n": 120})
        # 'No significant difference in ROUGE-L: B - A = +0.40, 95% CI [-0.80, +1.60], p = 0.48 over 120 turns.'
        ```
    """
    figures = (f"B - A = {entry['delta']:+.2f}, 95% CI [{entry['low']:+.2f}, {entry['high']:+.2f}], "
               f"{p_text(entry)} over {entry['n']} turns")
    if entry["p_value"] >= 0.05:
        return f"No significant difference in {label}: {figures}."
    better = "B" if entry["delta"] > 0 else "A"
    return f"{better} is better on {label}: {figures}."
