"""Per-turn predictions on disk: read them, check them against the reference dialogues, and score them.

A predictions file is JSONL, one record per supporter turn (see :func:`align_predictions`); ``cscprog
evaluate`` writes one, and ``cscprog score`` scores one written by any system.

Example:
    ```python
    from cscprog.evaluation.predictions import score_file

    scores = score_file("finetuned.jsonl", read_dialogues("csconv_test.jsonl").dialogues)
    ```
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cscprog.data import Dialogue
from cscprog.data.completion import parse_completion
from cscprog.errors import DataError, TaxonomyError
from cscprog.evaluation.intervals import DEFAULT_RESAMPLES
from cscprog.evaluation.metrics import score_predictions
from cscprog.evaluation.metrics.columns import Scorers
from cscprog.evaluation.metrics.semantic import SemanticScorer
from cscprog.framework import Taxonomy, load_taxonomy

__all__ = ["align_predictions", "check_evaluable", "read_predictions", "score_file"]

logger = logging.getLogger(__name__)


def check_evaluable(dialogues: Sequence[Dialogue], source: str) -> None:
    """Raise when ``dialogues`` cannot be evaluated: duplicate ids, or a supporter turn with no strategy.

    Raises:
        DataError: naming the record, turn and field.
    """
    seen: set[str] = set()
    for number, dialogue in enumerate(dialogues):
        if dialogue.id in seen:
            raise DataError(source, f"duplicate dialogue id {dialogue.id!r}", record=number, field="id")
        seen.add(dialogue.id)
        for index in dialogue.supporter_indices():
            if dialogue.turns[index].strategy is None:
                raise DataError(source, f"dialogue {dialogue.id!r}: supporter turn has no strategy (evaluation "
                                        "needs annotated dialogues)", record=number, turn=index, field="strategy")


def read_predictions(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """The records of a predictions JSONL file with their 1-based line numbers (blank lines skipped).

    Raises:
        DataError: the file is missing, or a line is not a JSON object (naming the line).

    Example:
        ```python
        for line, record in read_predictions("eval/predictions.jsonl"): ...
        ```
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(str(source), "no such predictions file")
    records = []
    with source.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                raise DataError(str(source), f"not JSON ({error.msg})", line=number) from None
            if not isinstance(record, dict):
                raise DataError(str(source), f"expected a JSON object, got {type(record).__name__}", line=number)
            records.append((number, record))
    return records


def align_predictions(
    predictions: Iterable[tuple[int, dict[str, Any]]],
    dialogues: Sequence[Dialogue],
    taxonomy: Taxonomy,
    *,
    source: str = "<predictions>",
    missing_reasons: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Check predictions against the reference dialogues and join them with the gold turns.

    Each prediction needs ``dialogue_id``, ``turn_index`` (a supporter turn of that dialogue),
    ``pred_strategy`` (any label form of the taxonomy, or null for a failure) and ``pred_reply`` (string or
    null); ``failure`` is optional. Instead of ``pred_strategy``/``pred_reply`` a line may carry
    ``completion``, the raw text of a model fine-tuned on :mod:`cscprog.finetune.export` data, read with
    :func:`cscprog.finetune.export.parse_completion`: a completion that does not parse (or is null) is a failure, its
    parsed parts still scored as they are, and the coverage then counts ``completions`` and
    ``unparseable_completions``. Gold strategy, reply, domain and language always come from the reference.
    A supporter turn of a predicted dialogue with no prediction counts as a failure (``missing prediction``,
    or the reason in ``missing_reasons[dialogue_id]``); a dialogue with no prediction at all is left out of
    the scores only when it is not in ``missing_reasons`` (a subset run), and is reported in the coverage.

    Returns:
        ``(records, coverage)``: records in dialogue and turn order; coverage counts.

    Raises:
        DataError: naming the line and field of an unknown dialogue id, a turn index that is not a supporter
            turn, a duplicate position, an unknown strategy label or a wrong type.

    Example:
        ```python
        records, coverage = align_predictions(read_predictions(path), dialogues, csc, source=str(path))
        ```
    """
    by_id = {d.id: d for d in dialogues}
    missing_reasons = dict(missing_reasons or {})
    found: dict[tuple[str, int], dict[str, Any]] = {}
    completions = unparseable = 0
    for line, record in predictions:
        def fail(field: str, reason: str, line: int = line) -> DataError:
            return DataError(source, reason, line=line, field=field)

        dialogue_id = record.get("dialogue_id")
        if not isinstance(dialogue_id, str):
            raise fail("dialogue_id", "missing or not a string")
        dialogue = by_id.get(dialogue_id)
        if dialogue is None:
            raise fail("dialogue_id", f"unknown dialogue id {dialogue_id!r} (not in the reference data)")
        index = record.get("turn_index")
        if not isinstance(index, int) or isinstance(index, bool) or index not in dialogue.supporter_indices():
            raise fail("turn_index", f"{index!r} is not a supporter turn of dialogue {dialogue_id!r} "
                                     f"(supporter turns: {dialogue.supporter_indices()})")
        if (dialogue_id, index) in found:
            raise fail("turn_index", f"a second prediction for dialogue {dialogue_id!r}, turn {index}")
        label = record.get("pred_strategy")
        problem = None
        if "completion" in record:
            if "pred_strategy" in record or "pred_reply" in record:
                raise fail("completion", "give either completion or pred_strategy/pred_reply, not both")
            completion = record["completion"]
            if completion is not None and not isinstance(completion, str):
                raise fail("completion", f"expected a string or null, got {type(completion).__name__}")
            strategy, reply, problem = parse_completion(completion, taxonomy)
            completions += 1
            unparseable += problem is not None
        elif label is None:
            strategy = None
        elif not isinstance(label, str):
            raise fail("pred_strategy", f"expected a strategy name or null, got {type(label).__name__}")
        else:
            try:
                strategy = taxonomy.parse(label).name
            except TaxonomyError:
                raise fail("pred_strategy", f"unknown strategy label {label!r} (taxonomy {taxonomy.name!r}: "
                                            f"{', '.join(taxonomy.names)})") from None
        if "completion" not in record:
            reply = record.get("pred_reply")
            if reply is not None and not isinstance(reply, str):
                raise fail("pred_reply", f"expected a string or null, got {type(reply).__name__}")
        failure = record.get("failure")
        if failure is not None and not isinstance(failure, str):
            raise fail("failure", f"expected a string or null, got {type(failure).__name__}")
        if problem is not None:
            failure = failure or f"unparseable completion: {problem}"
        found[(dialogue_id, index)] = {"pred_strategy": strategy, "pred_reply": reply, "failure": failure,
                                       "gold_fallbacks": record.get("gold_fallbacks", 0),
                                       "context": record.get("context")}
    predicted_dialogues = {dialogue_id for dialogue_id, _ in found}
    records: list[dict[str, Any]] = []
    missing = absent = 0
    for dialogue in dialogues:
        if dialogue.id not in predicted_dialogues and dialogue.id not in missing_reasons:
            absent += 1
            continue
        for index in dialogue.supporter_indices():
            turn = dialogue.turns[index]
            prediction = found.get((dialogue.id, index))
            if prediction is None:
                missing += 1
                prediction = {"pred_strategy": None, "pred_reply": None, "gold_fallbacks": 0, "context": None,
                              "failure": missing_reasons.get(dialogue.id, "missing prediction")}
            records.append({"dialogue_id": dialogue.id, "turn_index": index, "gold_strategy": turn.strategy,
                            "pred_strategy": prediction["pred_strategy"], "gold_reply": turn.text,
                            "pred_reply": prediction["pred_reply"], "failure": prediction["failure"],
                            "domain": dialogue.domain or "", "language": dialogue.language or "en",
                            "context": prediction["context"], "gold_fallbacks": prediction["gold_fallbacks"]})
    coverage = {"dialogues_in_reference": len(dialogues), "dialogues_scored": len(dialogues) - absent,
                "dialogues_without_predictions": absent, "turns_scored": len(records),
                "turns_missing_predictions": missing}
    if completions:
        coverage.update(completions=completions, unparseable_completions=unparseable)
    if absent:
        logger.warning("%s: %d of %d reference dialogues have no prediction and are not scored", source, absent,
                       len(dialogues))
    return records, coverage


def score_file(
    predictions: str | os.PathLike[str],
    dialogues: Sequence[Dialogue],
    taxonomy: Taxonomy | None = None,
    *,
    semantic: SemanticScorer | bool = True,
    profile: str = "standard",
    scorers: Scorers | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Score a predictions file made by any system against reference dialogues (``cscprog score``).

    Returns:
        The :func:`cscprog.evaluation.metrics.score_predictions` result plus ``coverage``.

    Raises:
        DataError: a malformed predictions file (naming the line and field), or nothing to score.

    Example:
        ```python
        scores = score_file("finetuned.jsonl", read_dialogues("csconv_test.jsonl").dialogues)
        ```
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    check_evaluable(dialogues, "<reference>")
    records, coverage = align_predictions(read_predictions(predictions), dialogues, taxonomy,
                                          source=str(predictions))
    if not records:
        raise DataError(str(predictions), "no predictions to score")
    result = score_predictions(records, taxonomy, semantic=semantic, profile=profile, scorers=scorers,
                               resamples=resamples, seed=seed)
    result["coverage"] = coverage
    return result
