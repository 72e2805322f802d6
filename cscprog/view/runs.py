"""Evaluation runs as the viewer's data: every scored turn with its history, gold and predicted strategy and
reply, and per-turn scores; one run, or two runs joined on the same turns.

An evaluation run is the output directory of ``cscprog evaluate`` (:mod:`cscprog.evaluation.evaluate`):
``predictions.jsonl`` and ``result.json``. The reference dialogues (for the history and the gold turns) are the
data named in ``result.json``'s ``settings.data``, unless given. Per-turn scores are computed here, the same
way for every run: ROUGE-L F (x100, :func:`cscprog.evaluation.metrics.rouge_l`) and sentence BLEU-2 (x100,
:func:`cscprog.evaluation.metrics.corpus_bleu` on the one pair, so 0 when no bigram matches).

Example:
    ```python
    from cscprog.view.runs import load_run, run_payload

    base = load_run("eval/base")
    compiled = load_run("eval/compiled", dialogues=base.dialogues)
    data = run_payload([base, compiled], base.taxonomy)
    ```
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cscprog.data import Dialogue, read_dialogues
from cscprog.errors import DataError
from cscprog.evaluation.metrics import corpus_bleu, rouge_l
from cscprog.evaluation.predictions import align_predictions, read_predictions
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.runs import failures_path
from cscprog.samples import SAMPLES, sample_path
from cscprog.view.dialogues import dialogue_record, taxonomy_payload

__all__ = [
    "EvaluationRun",
    "is_run_dir",
    "load_dialogue_source",
    "load_run",
    "read_json_object",
    "read_records",
    "run_payload",
    "turn_scores",
]

PREDICTIONS = "predictions.jsonl"
RESULT = "result.json"
HEADLINE = ("accuracy", "macro_f1", "bleu2", "bleu4", "rouge_l", "semantic", "n", "failures")


@dataclass
class EvaluationRun:
    """One evaluation output directory, joined with its reference dialogues.

    Attributes:
        name: A short name (the directory name unless given).
        path: The directory.
        result: The content of ``result.json``.
        records: One record per scored turn (:func:`cscprog.evaluation.predictions.align_predictions`).
        dialogues: The reference dialogues.
        taxonomy: The taxonomy the labels belong to.
        failures: Records of the run's ``predictions.jsonl.failures.jsonl`` (dialogues not finished).

    Example:
        ```python
        run = load_run("eval/base")
        run.context, len(run.records)
        ```
    """

    name: str
    path: Path
    result: dict[str, Any]
    records: list[dict[str, Any]]
    dialogues: list[Dialogue]
    taxonomy: Taxonomy
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def context(self) -> str:
        """``reference`` or ``generated`` (from the run's settings)."""
        return str((self.result.get("settings") or {}).get("context") or "reference")


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory holding ``predictions.jsonl`` and ``result.json``.

    Example:
        ```python
        is_run_dir("eval/base")   # True after `cscprog evaluate ... -o eval/base`
        ```
    """
    target = Path(path)
    return target.is_dir() and (target / PREDICTIONS).is_file() and (target / RESULT).is_file()


def load_dialogue_source(source: str, taxonomy: Taxonomy, *, base: Path | None = None) -> list[Dialogue]:
    """The dialogues of a file path or ``sample:NAME``; a relative path is also tried under ``base``.

    Raises:
        DataError: no such sample or file, or the file does not load.

    Example:
        ```python
        load_dialogue_source("sample:annotated_en", load_taxonomy("csc"))
        ```
    """
    if source.startswith("sample:"):
        name = source.removeprefix("sample:")
        if name not in SAMPLES:
            raise DataError(source, f"unknown sample {name!r}; samples: {', '.join(SAMPLES)}")
        return read_dialogues(sample_path(name), taxonomy=taxonomy).dialogues
    candidates = [Path(source)]
    if base is not None and not Path(source).is_absolute():
        candidates += [base / source, base.parent / source]
    for candidate in candidates:
        if candidate.is_file():
            return read_dialogues(candidate, taxonomy=taxonomy).dialogues
    raise DataError(source, "reference data not found (give it with --data)")


def read_json_object(path: str | os.PathLike[str], what: str = "JSON") -> dict[str, Any]:
    """A JSON object from a file.

    Raises:
        DataError: the file is missing, unreadable, not JSON or not an object (naming the file and line).

    Example:
        ```python
        result = read_json_object("eval/base/result.json", "result")
        ```
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(str(source), f"no such {what} file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(str(source), f"cannot read the {what} file ({error})") from None
    except json.JSONDecodeError as error:
        raise DataError(str(source), f"not JSON ({error.msg})", line=error.lineno) from None
    if not isinstance(data, dict):
        raise DataError(str(source), f"expected a JSON object, got {type(data).__name__}")
    return data


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file such as ``*.failures.jsonl`` (empty when it does not exist).

    Raises:
        DataError: a line is not a JSON object (naming the line).

    Example:
        ```python
        read_records(Path("out.jsonl.failures.jsonl"))   # [{"item_id": ..., "reason": ...}]
        ```
    """
    if not path.is_file():
        return []
    return [record for _, record in read_predictions(path)]


def load_run(
    path: str | os.PathLike[str],
    *,
    dialogues: Sequence[Dialogue] | None = None,
    data: str | None = None,
    taxonomy: Taxonomy | None = None,
    name: str | None = None,
) -> EvaluationRun:
    """Read an evaluation output directory and join its predictions with the reference dialogues.

    Args:
        path: The directory ``cscprog evaluate`` wrote.
        dialogues: The reference dialogues (default: loaded from ``data``).
        data: A file or ``sample:NAME`` (default: ``settings.data`` of ``result.json``).
        taxonomy: The taxonomy (default: CSC).
        name: Display name (default: the directory name).

    Raises:
        DataError: not a run directory, unreadable files, or predictions that do not match the reference.

    Example:
        ```python
        run = load_run("eval/base", data="sample:annotated_en")
        ```
    """
    target = Path(path)
    if not is_run_dir(target):
        raise DataError(str(target), f"not an evaluation run directory (needs {PREDICTIONS} and {RESULT})")
    taxonomy = taxonomy or load_taxonomy("csc")
    result = read_json_object(target / RESULT, "result")
    if dialogues is None:
        source = data or (result.get("settings") or {}).get("data")
        if not source:
            raise DataError(str(target / RESULT), "no settings.data naming the reference data (give --data)")
        dialogues = load_dialogue_source(str(source), taxonomy, base=target)
    failures = read_records(failures_path(target / PREDICTIONS))
    missing = {str(f.get("item_id")): f"not run: {f.get('error', 'error')}: {f.get('reason', '')}" for f in failures}
    predictions = read_predictions(target / PREDICTIONS)
    # a run of a subset (--limit) scored only its own dialogues: show those, not the whole reference
    run_ids = {record.get("dialogue_id") for _, record in predictions} | set(missing)
    records, _ = align_predictions(predictions, [d for d in dialogues if d.id in run_ids], taxonomy,
                                   source=str(target / PREDICTIONS), missing_reasons=missing)
    return EvaluationRun(name=name or target.resolve().name, path=target, result=result, records=records,
                         dialogues=list(dialogues), taxonomy=taxonomy, failures=failures)


def turn_scores(pred_reply: str | None, gold_reply: str) -> list[float]:
    """``[ROUGE-L, BLEU-2]`` of one reply, each x100 and rounded to 0.1.

    Example:
        ```python
        turn_scores("Your card is blocked.", "your card is blocked")   # [100.0, 100.0]
        ```
    """
    rouge = 100.0 * rouge_l(pred_reply, gold_reply)
    bleu = corpus_bleu([pred_reply], [gold_reply], max_order=2) if gold_reply.strip() else 0.0
    return [round(rouge, 1), round(bleu, 1)]


def _summary(run: EvaluationRun) -> dict[str, Any]:
    result = run.result
    settings = result.get("settings") or {}
    return {"name": run.name, "path": str(run.path), "context": run.context, "model": result.get("model"),
            "data": settings.get("data"), "scores": {key: result.get(key) for key in HEADLINE if key in result},
            "failures": run.failures}


def run_payload(runs: Sequence[EvaluationRun], taxonomy: Taxonomy, *, source: str = "") -> dict[str, Any]:
    """The data of a run view: one run, or several joined on the turns they all scored.

    Rows are in reference order; ``d`` indexes ``dialogues``, ``k`` is the turn index, ``g`` the gold strategy's
    index, and ``p``/``r``/``f``/``sc`` hold per run the predicted strategy's index, the reply, the failure and
    ``[ROUGE-L, BLEU-2]``. ``only`` counts, per run, the turns it scored that another run did not.

    Raises:
        ValueError: no run given.

    Example:
        ```python
        data = run_payload([load_run("eval/base")], load_taxonomy("csc"))
        data["rows"][0]["sc"]   # [[ROUGE-L, BLEU-2]]
        ```
    """
    if not runs:
        raise ValueError("run_payload needs at least one run")
    index = {name: i for i, name in enumerate(taxonomy.names)}
    keyed = [{(r["dialogue_id"], r["turn_index"]): r for r in run.records} for run in runs]
    shared = set(keyed[0]).intersection(*keyed[1:])
    by_id = {d.id: d for d in runs[0].dialogues}
    dialogue_slot: dict[str, int] = {}
    dialogues: list[dict[str, Any]] = []
    rows = []
    for record in runs[0].records:
        key = (record["dialogue_id"], record["turn_index"])
        if key not in shared:
            continue
        if key[0] not in dialogue_slot:
            dialogue_slot[key[0]] = len(dialogues)
            dialogues.append(dialogue_record(by_id[key[0]], taxonomy, index))
        per_run = [table[key] for table in keyed]
        rows.append({
            "d": dialogue_slot[key[0]], "k": key[1], "g": index.get(record["gold_strategy"]),
            "p": [index.get(r["pred_strategy"]) if r["pred_strategy"] else None for r in per_run],
            "r": [r["pred_reply"] for r in per_run], "f": [r["failure"] for r in per_run],
            "sc": [turn_scores(r["pred_reply"], r["gold_reply"]) for r in per_run],
        })
    only = [len(set(table) - shared) for table in keyed]
    return {"kind": "run", "source": source, "taxonomy": taxonomy_payload(taxonomy),
            "runs": [_summary(run) for run in runs], "only": only, "dialogues": dialogues, "rows": rows}
