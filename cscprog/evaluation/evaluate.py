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
* ``result.json``: every metric (:func:`cscprog.evaluation.metrics.score_predictions`), the settings, coverage, the run
  counts, the compiled program's manifest and the run manifest;
* ``report.md`` (:mod:`cscprog.evaluation.report`) and PNG plots (:mod:`cscprog.evaluation.plots`).

Failures are never dropped: a turn whose prediction failed after its retries is scored as wrong, and a
dialogue the runner could not finish (its failure is in ``predictions.jsonl.failures.jsonl``) contributes
all its supporter turns as failures.

``limit`` evaluates at most that many *dialogues* (all their supporter turns, so both settings see the same
positions), chosen by a hash of each dialogue id: the same subset on every run and machine, independent of
file order.

Example:
    ```python
    from cscprog.evaluation.evaluate import evaluate
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.lm.runtime import Runtime
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from cscprog.agents.responder import respond_dialogue
from cscprog.concurrency import run_concurrency
from cscprog.context import current_runtime
from cscprog.data import Dialogue
from cscprog.errors import DataError
from cscprog.evaluation.intervals import DEFAULT_RESAMPLES
from cscprog.evaluation.metrics import score_predictions
from cscprog.evaluation.metrics.columns import Scorers
from cscprog.evaluation.metrics.semantic import SemanticScorer
from cscprog.evaluation.plots import write_plots
from cscprog.evaluation.predictions import align_predictions, check_evaluable, read_predictions
from cscprog.evaluation.report import render_report
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.roles import Role
from cscprog.runs import FailureLog, ProgressReporter, Runner, failures_path
from cscprog.runs.engine import ExecutionEngine
from cscprog.runs.manifest import write_manifest

__all__ = ["CONTEXTS", "EvaluationOutcome", "evaluate", "sample_dialogues"]

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


def _record(row: Any) -> dict[str, Any]:
    return {
        "dialogue_id": row.dialogue_id, "turn_index": row.turn_index, "gold_strategy": row.gold_strategy,
        "pred_strategy": row.pred_strategy, "gold_reply": row.gold_reply, "pred_reply": row.pred_reply,
        "failure": row.failure, "domain": row.domain, "language": row.language, "context": row.context,
        "gold_fallbacks": row.gold_fallbacks,
    }


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
    profile: str = "standard",
    scorers: Scorers | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
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
        program: A :class:`cscprog.agents.responder.ResponseGenerator` (or a program with the same interface).
        dialogues: Annotated dialogues (every supporter turn labelled).
        out_dir: Output directory (created).
        context: ``reference`` or ``generated``.
        limit: At most this many dialogues, sampled by id hash (see the module docstring).
        concurrency: Dialogues at once (default: the runtime's ``[run] concurrency``, else 4).
        resume: Continue an interrupted run in ``out_dir`` (without it, existing predictions are an error).
        taxonomy: The label set (default: the program's, else CSC).
        semantic: As for :func:`cscprog.evaluation.metrics.score_predictions`.
        profile: Metric conventions, ``standard`` or ``paper``.
        scorers: BERTScore/BLEURT scorers (:func:`cscprog.evaluation.metrics.neural.load_scorers`).
        resamples: Bootstrap resamples of every interval; ``seed`` their seed.
        plots: Write the PNG plots.
        progress: A progress reporter for the run.
        data_source: Where the dialogues came from (for the result and report).
        program_manifest: The compiled program's manifest (from its file), if any.
        command: The command line (for the manifests).
        resume_command: The command that resumes this run (shown when it stops early).
        engine: Where the program runs (default: threads of this process); e.g. a
            :class:`cscprog.runs.ray.engine.RayEngine` to spread the dialogues over Ray workers, each with its own
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
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    taxonomy = taxonomy or getattr(program, "taxonomy", None) or load_taxonomy("csc")
    selected = [d for d in sample_dialogues(dialogues, limit) if d.supporter_indices()]
    check_evaluable(selected, data_source or "<dialogues>")
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
    scores = score_predictions(records, taxonomy, semantic=semantic, profile=profile, scorers=scorers,
                               resamples=resamples, seed=seed)
    run_manifest = json.loads(run.manifest.read_text(encoding="utf-8")) if run.manifest else None
    result: dict[str, Any] = dict(scores)
    result["settings"] = {**scores["settings"], "context": context, "limit": limit, "concurrency": workers,
                          "data": data_source, "sample_salt": SAMPLE_SALT}
    runtime = current_runtime()
    responder = runtime.roles_used().get(Role.RESPONDER, {}).get("model") if runtime is not None else None
    result.update(model=responder or getattr(dspy.settings.lm, "model", None), coverage=coverage,
                  run=run.as_dict(), program=program_manifest, manifest=run_manifest)
    if plots:
        result["plots"] = [path.name for path in write_plots(result, records, taxonomy, target)]
    write_manifest(target / RESULT, result)
    (target / REPORT).write_text(render_report(result, taxonomy), encoding="utf-8")
    return EvaluationOutcome(result=result, records=records, out_dir=target, exit_status=run.exit_status)
