"""The paper's next-supporter-turn evaluation: run a program over dialogues, score it, write the report.

Evaluation positions are every supporter turn of every dialogue (an opening supporter turn, with an empty
history, included). Two settings (CSC.md section 5):

* ``reference``: the history is the gold dialogue;
* ``generated``: the program's own earlier supporter turns replace the gold ones; customer turns stay gold.

:func:`evaluate` runs the program through the resumable runner (:mod:`cscprog.runs`: one item per dialogue,
concurrent, crash-safe, ``resume=True`` continues an interrupted run) and writes into ``out_dir``:

* ``predictions.jsonl``: one record per supporter turn: ``dialogue_id``, ``turn_index``, ``gold_strategy``,
  ``pred_strategy`` (canonical English names), ``gold_reply``, ``pred_reply``, ``failure``, ``domain``,
  ``language``, ``context``, ``gold_fallbacks``; any run can be re-scored from it (``cscprog score``);
* ``result.json``: every metric (:func:`cscprog.metrics.score_predictions`), the settings, coverage, the run
  counts, the compiled program's manifest and the run manifest;
* ``report.md`` (:mod:`cscprog.report`) and PNG plots (:mod:`cscprog.plots`).

Failures are never dropped: a turn whose prediction failed after its retries is scored as wrong, and a
dialogue the runner could not finish (its failure is in ``predictions.jsonl.failures.jsonl``) contributes
all its supporter turns as failures.

``limit`` evaluates at most that many *dialogues* (all their supporter turns, so both settings see the same
positions), chosen by a hash of each dialogue id: the same subset on every run and machine, independent of
file order.

Example:
    ```python
    from cscprog.evaluate import evaluate
    from cscprog.responder import ResponseGenerator
    from cscprog.runtime import Runtime
    from cscprog.samples import load_sample

    runtime = Runtime.from_config()
    with runtime.activate():
        outcome = evaluate(ResponseGenerator(), load_sample("annotated_en"), out_dir="eval/en-ref", limit=10)
    print(outcome.result["bleu2"], outcome.result["accuracy"])
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from cscprog.concurrency import run_concurrency
from cscprog.data import Dialogue
from cscprog.errors import DataError, TaxonomyError
from cscprog.export import parse_completion
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.manifest import write_manifest
from cscprog.metrics import score_predictions
from cscprog.metrics.semantic import SemanticScorer
from cscprog.runs import FailureLog, ProgressReporter, Runner, failures_path
from cscprog.runs.engine import ExecutionEngine

__all__ = [
    "CONTEXTS",
    "EvaluationOutcome",
    "align_predictions",
    "evaluate",
    "read_predictions",
    "sample_dialogues",
    "score_file",
]

logger = logging.getLogger(__name__)

CONTEXTS = ("reference", "generated")
"""The two evaluation settings."""

PREDICTIONS = "predictions.jsonl"
RESULT = "result.json"
REPORT = "report.md"
SAMPLE_SALT = "cscprog-evaluate"


@dataclass
class EvaluationOutcome:
    """What :func:`evaluate` produced.

    Attributes:
        result: The content of ``result.json`` (scores at the top level, then settings, coverage, run...).
        records: The scored per-turn records, in dialogue and turn order.
        out_dir: The output directory.
        exit_status: The runner's status: 0 all dialogues finished, 1 some failed, 130 interrupted.
    """

    result: dict[str, Any]
    records: list[dict[str, Any]]
    out_dir: Path
    exit_status: int


def sample_dialogues(dialogues: Sequence[Dialogue], limit: int | None, *, salt: str = SAMPLE_SALT) -> list[Dialogue]:
    """At most ``limit`` dialogues, picked by the SHA-256 of ``salt`` and the id; file order is kept.

    Raises:
        ValueError: ``limit`` is below 1.

    Example:
        ```python
        sample_dialogues(load_sample("annotated_en"), 5)   # the same 5 dialogues on every run
        ```
    """
    if limit is None or limit >= len(dialogues):
        return list(dialogues)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")

    def rank(dialogue: Dialogue) -> str:
        return hashlib.sha256(f"{salt}\x00{dialogue.id}".encode()).hexdigest()

    chosen = {id(d) for d in sorted(dialogues, key=rank)[:limit]}
    return [d for d in dialogues if id(d) in chosen]


def _check_evaluable(dialogues: Sequence[Dialogue], source: str) -> None:
    seen: set[str] = set()
    for number, dialogue in enumerate(dialogues):
        if dialogue.id in seen:
            raise DataError(source, f"duplicate dialogue id {dialogue.id!r}", record=number, field="id")
        seen.add(dialogue.id)
        for index in dialogue.supporter_indices():
            if dialogue.turns[index].strategy is None:
                raise DataError(source, f"dialogue {dialogue.id!r}: supporter turn has no strategy (evaluation "
                                        "needs annotated dialogues)", record=number, turn=index, field="strategy")


def _record(row: Any) -> dict[str, Any]:
    return {
        "dialogue_id": row.dialogue_id, "turn_index": row.turn_index, "gold_strategy": row.gold_strategy,
        "pred_strategy": row.pred_strategy, "gold_reply": row.gold_reply, "pred_reply": row.pred_reply,
        "failure": row.failure, "domain": row.domain, "language": row.language, "context": row.context,
        "gold_fallbacks": row.gold_fallbacks,
    }


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
    ``completion``, the raw text of a model fine-tuned on :mod:`cscprog.export` data, read with
    :func:`cscprog.export.parse_completion`: a completion that does not parse (or is null) is a failure, its
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
) -> dict[str, Any]:
    """Score a predictions file made by any system against reference dialogues (``cscprog score``).

    Returns:
        The :func:`cscprog.metrics.score_predictions` result plus ``coverage``.

    Raises:
        DataError: a malformed predictions file (naming the line and field), or nothing to score.

    Example:
        ```python
        scores = score_file("finetuned.jsonl", read_dialogues("csconv_test.jsonl").dialogues)
        ```
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    _check_evaluable(dialogues, "<reference>")
    records, coverage = align_predictions(read_predictions(predictions), dialogues, taxonomy,
                                          source=str(predictions))
    if not records:
        raise DataError(str(predictions), "no predictions to score")
    result = score_predictions(records, taxonomy, semantic=semantic)
    result["coverage"] = coverage
    return result


def evaluate(
    program: dspy.Module,
    dialogues: Sequence[Dialogue],
    *,
    out_dir: str | os.PathLike[str],
    context: str = "reference",
    limit: int | None = None,
    concurrency: int | None = None,
    resume: bool = False,
    taxonomy: Taxonomy | None = None,
    semantic: SemanticScorer | bool = True,
    plots: bool = True,
    progress: ProgressReporter | None = None,
    data_source: str = "",
    program_manifest: dict[str, Any] | None = None,
    command: str = "",
    resume_command: str | None = None,
    engine: ExecutionEngine | None = None,
) -> EvaluationOutcome:
    """Run ``program`` at every supporter turn of ``dialogues``, score it, and write the outputs to ``out_dir``.

    Args:
        program: A :class:`cscprog.responder.ResponseGenerator` (or a program with the same interface).
        dialogues: Annotated dialogues (every supporter turn labelled).
        out_dir: Output directory (created).
        context: ``reference`` or ``generated``.
        limit: At most this many dialogues, sampled by id hash (see the module docstring).
        concurrency: Dialogues at once (default: the runtime's ``[run] concurrency``, else 4).
        resume: Continue an interrupted run in ``out_dir`` (without it, existing predictions are an error).
        taxonomy: The label set (default: the program's, else CSC).
        semantic: As for :func:`cscprog.metrics.score_predictions`.
        plots: Write the PNG plots.
        progress: A progress reporter for the run.
        data_source: Where the dialogues came from (for the result and report).
        program_manifest: The compiled program's manifest (from its file), if any.
        command: The command line (for the manifests).
        resume_command: The command that resumes this run (shown when it stops early).
        engine: Where the program runs (default: threads of this process); e.g. a
            :class:`cscprog.runs.ray_engine.RayEngine` to spread the dialogues over Ray workers, each with its own
            runtime built from the active runtime's configuration. The predictions are the same either way.

    Returns:
        An :class:`EvaluationOutcome`.

    Raises:
        ValueError: unknown ``context``.
        DataError: unannotated or duplicate dialogues, or nothing to evaluate.
        RunInputError: ``out_dir`` holds predictions and ``resume`` is off.

    Example:
        ```python
        outcome = evaluate(load_compiled("program.json"), dialogues, out_dir="eval/compiled", context="generated")
        ```
    """
    from cscprog.responder import respond_dialogue
    from cscprog.runtime import current_runtime

    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    taxonomy = taxonomy or getattr(program, "taxonomy", None) or load_taxonomy("csc")
    selected = [d for d in sample_dialogues(dialogues, limit) if d.supporter_indices()]
    _check_evaluable(selected, data_source or "<dialogues>")
    if not selected:
        raise DataError(data_source or "<dialogues>", "no dialogue with a supporter turn to evaluate")
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    output = target / PREDICTIONS
    workers = run_concurrency(concurrency)

    def work(dialogue: Dialogue) -> list[dict[str, Any]]:
        return [_record(row) for row in respond_dialogue(program, dialogue, context, concurrency=1)]

    inputs = {"data": data_source, "context": context, "limit": limit, "dialogues": len(selected),
              "program": (program_manifest or {}).get("path")}
    runner = Runner(work, output=output, id_field="dialogue_id", many_records=True, concurrency=workers,
                    resume=resume, runtime=current_runtime(), progress=progress, command=command, inputs=inputs,
                    resume_command=resume_command, engine=engine)
    run = runner.run((d.id, d) for d in selected)
    missing = {d.id: "not run: the run stopped before this dialogue" for d in selected}
    missing.update({item: f"not run: {entry.get('error', 'error')}: {entry.get('reason', '')}"
                    for item, entry in FailureLog.load(failures_path(output)).items() if item in missing})
    written = [(line, record) for line, record in (read_predictions(output) if output.is_file() else [])
               if record.get("dialogue_id") in missing]  # an earlier run's other dialogues stay, unscored
    records, coverage = align_predictions(written, selected, taxonomy, source=str(output), missing_reasons=missing)
    scores = score_predictions(records, taxonomy, semantic=semantic)
    run_manifest = json.loads(run.manifest.read_text(encoding="utf-8")) if run.manifest else None
    result: dict[str, Any] = dict(scores)
    result["settings"] = {**scores["settings"], "context": context, "limit": limit, "concurrency": workers,
                          "data": data_source, "sample_salt": SAMPLE_SALT}
    runtime = current_runtime()
    responder = runtime.roles_used().get("responder", {}).get("model") if runtime is not None else None
    result.update(model=responder or getattr(dspy.settings.lm, "model", None), coverage=coverage,
                  run=run.as_dict(), program=program_manifest, manifest=run_manifest)
    if plots:
        from cscprog.plots import write_plots

        result["plots"] = [path.name for path in write_plots(result, records, taxonomy, target)]
    from cscprog.report import render_report

    write_manifest(target / RESULT, result)
    (target / REPORT).write_text(render_report(result, taxonomy), encoding="utf-8")
    return EvaluationOutcome(result=result, records=records, out_dir=target, exit_status=run.exit_status)
