"""Score a blind human evaluation: un-blind the raters' exported JSON with the study key, then report win rates
with 95% Wilson intervals, agreement between raters (Cohen's kappa per pair, Fleiss' kappa over all), and the
agreement of the raters' majority with an LLM pairwise judge when its verdicts are given.

Every judgment (one rater, one item, one criterion) counts once in the win rates; the intervals treat them as
independent, which overstates certainty when several raters rate the same items, so the per-item majority
counts are reported beside them.

A judge file is JSON Lines, one judged turn a line with ``dialogue_id`` and ``turn_index``, and either
``verdicts`` as the LLM pairwise judge writes them (``{criterion: {"final": "A"|"B"|"tie", ...}}``, see
:mod:`cscprog.evaluation.verdicts`) or
``winner`` with an optional ``criterion`` (without it the verdict is compared on every criterion). ``A`` and ``B``
are the first and second run given to ``cscprog human-eval``; a system name as in the key is accepted too.

Example:
    ```python
    from cscprog.view.human_scores import score_ratings

    report = score_ratings(["study/ratings-ab.json", "study/ratings-cd.json"])
    report["criteria"]["resolution"]["win_rate"]
    ```
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from cscprog.errors import DataError
from cscprog.evaluation.predictions import read_predictions
from cscprog.evaluation.verdicts import record_finals
from cscprog.view.agreement import cohen_kappa, fleiss_kappa, wilson_interval
from cscprog.view.human_eval import KEY_FILE, KEY_FORMAT
from cscprog.view.runs import read_json_object

__all__ = ["RATINGS_FORMAT", "score_ratings"]

RATINGS_FORMAT = "cscprog-human-eval-ratings/1"
CHOICES = ("A", "tie", "B")
TIE = "tie"


def _share(count: int, n: int) -> dict[str, Any]:
    interval = wilson_interval(count, n)
    return {"count": count, "n": n, "value": round(count / n, 4) if n else None,
            "ci95": [round(interval[0], 4), round(interval[1], 4)] if interval else None}


def _read_ratings(path: Path, key: dict[str, Any]) -> tuple[str, dict[tuple[str, str], str], dict[str, str]]:
    """(rater, {(item, criterion): unblinded label}, {item: comment}) of one ratings file."""
    data = read_json_object(path, "ratings")
    if data.get("format") != RATINGS_FORMAT:
        raise DataError(str(path), f"not a ratings file (format {data.get('format')!r}, expected {RATINGS_FORMAT!r})",
                        field="format")
    if data.get("study") != key["study"]:
        raise DataError(str(path), f"ratings of study {data.get('study')!r}, but the key is of study "
                                   f"{key['study']!r}", field="study")
    ratings = data.get("ratings")
    if not isinstance(ratings, dict):
        raise DataError(str(path), "expected an object of ratings by item", field="ratings")
    labels: dict[tuple[str, str], str] = {}
    comments: dict[str, str] = {}
    for item, entry in ratings.items():
        where = f"ratings.{item}"
        if item not in key["items"]:
            raise DataError(str(path), f"item {item!r} is not in the study", field=where)
        if not isinstance(entry, dict) or not isinstance(entry.get("choices", {}), dict):
            raise DataError(str(path), "expected {choices: {criterion: A|tie|B}, comment}", field=where)
        for criterion, choice in entry.get("choices", {}).items():
            if criterion not in key["criteria"]:
                raise DataError(str(path), f"unknown criterion {criterion!r}", field=f"{where}.choices")
            if choice not in CHOICES:
                raise DataError(str(path), f"choice {choice!r} is not A, tie or B",
                                field=f"{where}.choices.{criterion}")
            labels[(item, criterion)] = TIE if choice == TIE else key["items"][item][choice]
        if isinstance(entry.get("comment"), str) and entry["comment"].strip():
            comments[item] = entry["comment"].strip()
    rater = str(data.get("rater") or path.stem)
    return rater, labels, comments


def _judge_verdicts(path: Path, key: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    if not path.is_file():
        raise DataError(str(path), "no such judge file")
    systems = key["systems"]
    verdicts: dict[tuple[str, str | None], str] = {}
    for line, record in read_predictions(path):
        item = f"{record.get('dialogue_id')}#{record.get('turn_index')}"
        finals = record_finals(record)
        if finals is not None:
            found = [(name, final, f"verdicts.{name}.final") for name, final in finals.items()]
        else:
            criterion = record.get("criterion")
            found = [(criterion if isinstance(criterion, str) else None, record.get("winner"), "winner")]
        for criterion, said, field in found:
            winner = {"A": systems[0], "B": systems[1]}.get(said, said)
            if winner not in (*systems, TIE):
                raise DataError(str(path), f"{said!r} is not A, B, tie or a system name ({', '.join(systems)})",
                                line=line, field=field)
            verdicts[(item, criterion)] = winner
    return verdicts


def _majority(labels: list[str]) -> str:
    counts = Counter(labels).most_common()
    return counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else TIE


def score_ratings(
    paths: Sequence[str | os.PathLike[str]],
    *,
    key: str | os.PathLike[str] | None = None,
    judge: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Un-blind and score ratings files of one study.

    Args:
        paths: Ratings files exported from the study page (one per rater).
        key: The study's ``key.json`` (default: ``key.json`` beside the first ratings file).
        judge: An LLM pairwise judge's verdicts (JSON Lines, see the module docstring), if any.

    Raises:
        DataError: no ratings file, a missing or foreign key, or a malformed ratings or judge file (naming the
            file and field).

    Example:
        ```python
        score_ratings(["study/ratings-ann.json"], judge="judge.jsonl")["criteria"]["resolution"]
        ```
    """
    if not paths:
        raise DataError("<ratings>", "give at least one ratings file")
    files = [Path(p) for p in paths]
    key_path = Path(key) if key is not None else files[0].with_name(KEY_FILE)
    if key is None and not key_path.is_file():
        raise DataError(str(key_path), "no study key beside the ratings; give it with --key")
    study_key = read_json_object(key_path, "key")
    if study_key.get("format") != KEY_FORMAT or not isinstance(study_key.get("items"), dict):
        raise DataError(str(key_path), f"not a study key (format {study_key.get('format')!r})", field="format")
    systems = list(study_key["systems"])
    per_rater: dict[str, dict[tuple[str, str], str]] = {}
    comments: dict[str, dict[str, str]] = {}
    for file in files:
        rater, labels, notes = _read_ratings(file, study_key)
        name, n = rater, 2
        while name in per_rater:
            name, n = f"{rater}#{n}", n + 1
        per_rater[name], comments[name] = labels, notes
    verdicts = _judge_verdicts(Path(judge), study_key) if judge is not None else None
    criteria: dict[str, Any] = {}
    for criterion in study_key["criteria"]:
        by_item: dict[str, dict[str, str]] = defaultdict(dict)
        for rater, labels in per_rater.items():
            for (item, crit), label in labels.items():
                if crit == criterion:
                    by_item[item][rater] = label
        judgments = [label for votes in by_item.values() for label in votes.values()]
        n = len(judgments)
        counts = Counter(judgments)
        decided = counts[systems[0]] + counts[systems[1]]
        majority = {item: _majority(list(votes.values())) for item, votes in by_item.items()}
        entry: dict[str, Any] = {
            "judgments": n, "items": len(by_item),
            "win_rate": {name: _share(counts[name], n) for name in (*systems, TIE)},
            "preference_without_ties": {name: _share(counts[name], decided) for name in systems},
            "item_majority": dict(Counter(majority.values())),
            "agreement": _agreement(by_item, list(per_rater)),
        }
        if verdicts is not None:
            entry["judge"] = _judge_agreement(majority, verdicts, criterion)
        criteria[criterion] = entry
    return {"study": study_key["study"], "systems": systems, "raters": list(per_rater), "key": str(key_path),
            "items_in_study": len(study_key["items"]), "criteria": criteria,
            "comments": {r: c for r, c in comments.items() if c},
            "method": "win rates: share of all judgments (rater x item), Wilson 95% intervals treating judgments as "
                      "independent; kappa over the labels (first system, tie, second system); Fleiss' kappa on the "
                      "items every rater rated; judge agreement against the per-item majority of the raters"}


def _agreement(by_item: dict[str, dict[str, str]], raters: list[str]) -> dict[str, Any]:
    pairs = []
    for first, second in combinations(raters, 2):
        shared = [(votes[first], votes[second]) for votes in by_item.values() if first in votes and second in votes]
        kappa = cohen_kappa(shared)
        pairs.append({"raters": [first, second], "items": len(shared),
                      "observed": round(sum(a == b for a, b in shared) / len(shared), 4) if shared else None,
                      "cohen_kappa": None if kappa is None else round(kappa, 4)})
    full = [Counter(votes.values()) for votes in by_item.values() if len(votes) == len(raters)]
    fleiss = fleiss_kappa(full) if len(raters) >= 2 else None
    return {"cohen": pairs, "fleiss": {"kappa": None if fleiss is None else round(fleiss, 4), "items": len(full),
                                       "raters": len(raters)}}


def _judge_agreement(majority: dict[str, str], verdicts: dict[tuple[str, str | None], str],
                     criterion: str) -> dict[str, Any]:
    pairs = []
    for item, human in majority.items():
        judged = verdicts.get((item, criterion), verdicts.get((item, None)))
        if judged is not None:
            pairs.append((human, judged))
    kappa = cohen_kappa(pairs)
    return {"items": len(pairs), "agreement": _share(sum(a == b for a, b in pairs), len(pairs)),
            "cohen_kappa": None if kappa is None else round(kappa, 4)}
