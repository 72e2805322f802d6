"""The stages of the demo, each a small function of a :class:`DemoContext`.

1. :func:`csconv_stage`: rewrite raw sample calls (rule and LLM filters, rewrite, judge), then re-annotate the
   first supporter turns of each rewrite with the strategy classifier;
2. :func:`rolecs_stage`: synthesize role-play dialogues from sample profiles x topics and judge them;
3. :func:`compile_stage`: compile the response generator on RoleCS-style data, validated on the dev split;
4. :func:`evaluate_stage`: base vs compiled on the test split, in reference and generated context.

Stages 1, 2 and 4 run their items through :class:`cscprog.runs.Runner` (JSONL outputs, progress, failure
logs, manifests); an item whose LM output stays unusable after the retries is recorded, never fatal. A run
stopped by Ctrl-C or a budget raises :class:`DemoStopped`.

Example:
    ```python
    ctx = DemoContext(out_dir=Path("demo"), runtime=runtime, taxonomy=load_taxonomy("csc"), plan=DemoPlan())
    with runtime.activate():
        csconv = csconv_stage(ctx)
    [row["decision"]["rule"] for row in csconv.decisions]
    ```
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy

from cscprog.agents.classifier import StrategyClassifier
from cscprog.agents.responder import ResponseGenerator
from cscprog.csconv.rewriter import GENERATION_FAILURE, Rewriter
from cscprog.data import Dialogue
from cscprog.demo.plan import DemoPlan, held_out_splits, truncate
from cscprog.errors import CscprogError
from cscprog.evaluation.evaluate import evaluate
from cscprog.evaluation.metrics.semantic import load_semantic_scorer
from cscprog.framework import Taxonomy
from cscprog.lm.runtime import Runtime
from cscprog.optimizers import compile_program, save_compiled, training_examples
from cscprog.rolecs.judge import QualityJudge
from cscprog.rolecs.plan import TOPICS, synthesis_plan
from cscprog.rolecs.roleplay import RolePlaySimulator
from cscprog.roles import Role
from cscprog.runs import FailureLog, ItemError, NoProgress, ProgressReporter, Runner, RunResult
from cscprog.samples import load_profiles, load_sample

__all__ = ["COMPILE_OVERRIDES", "CONTEXTS", "PROGRAMS", "ROLES_USED", "STAGES", "CompileOutcome", "CsconvOutcome",
           "DemoContext", "DemoStopped", "EvaluateOutcome", "RolecsOutcome", "StageRun", "compile_stage",
           "csconv_stage", "evaluate_stage", "rolecs_stage"]

COMMAND = "cscprog demo"
RECIPE, BUDGET = "bootstrap", "light"
COMPILE_OVERRIDES = {"max_bootstrapped_demos": 0}
"""The ``bootstrap`` recipe without bootstrapping: labeled demos drawn from the training data (LabeledFewShot
style), so the compile itself makes no LM call and the change it makes is the demos alone."""
CONTEXTS = ("reference", "generated")
PROGRAMS = ("base", "compiled")
STAGES = ("rewrite", "annotate", "synthesize", "judge", "compile", *(f"evaluate {program} ({context})"
                                                                     for program in PROGRAMS for context in CONTEXTS))
"""The demo's steps in order, as numbered on the progress display (``3/9 synthesize``)."""
ROLES_USED = (Role.REWRITER, Role.JUDGE, Role.CLASSIFIER, Role.PLANNER, Role.SUPPORTER_ASSISTANT, Role.SUPPORTER,
              Role.CUSTOMER_ASSISTANT, Role.CUSTOMER, Role.RESPONDER, Role.REFLECTION)
"""Every role whose LM the demo builds (``reflection``: the compile asks for its prompt LM even when unused)."""

ProgressFactory = Callable[[str], ProgressReporter]


class DemoStopped(CscprogError):
    """A stage's run was interrupted (Ctrl-C) or stopped by the budget before it finished."""

    def __init__(self, stage: str, reason: str, interrupted: bool) -> None:
        self.stage = stage
        self.reason = reason
        self.interrupted = interrupted
        super().__init__(f"the demo stopped during {stage}: {reason}")


@dataclass
class DemoContext:
    """What every stage needs: where to write, the runtime, the taxonomy, the plan and the progress display."""

    out_dir: Path
    runtime: Runtime
    taxonomy: Taxonomy
    plan: DemoPlan
    progress: ProgressFactory | None = None
    concurrency: int = 1

    def reporter(self, stage: str) -> ProgressReporter:
        """A fresh progress reporter for ``stage``, numbered ``k/n`` by :data:`STAGES` (nothing without a display)."""
        if self.progress is None:
            return NoProgress()
        number = f"{STAGES.index(stage) + 1}/{len(STAGES)} " if stage in STAGES else ""
        return self.progress(number + stage)

    @property
    def seed(self) -> int:
        """The run seed (``[run] seed``)."""
        return self.runtime.config.run.seed


@dataclass
class StageRun:
    """One runner stage: its result, the records it wrote (input order) and the failures it logged."""

    name: str
    output: Path
    result: RunResult
    records: list[dict[str, Any]]
    failures: list[dict[str, Any]]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _run(ctx: DemoContext, name: str, items: Iterable[tuple[str, Any]], work: Callable[[Any], Any],
         output: Path) -> StageRun:
    """Run ``work`` over ``items`` into ``output``; raise :class:`DemoStopped` when the run did not finish."""
    output.parent.mkdir(parents=True, exist_ok=True)
    runner = Runner(work, output=output, concurrency=ctx.concurrency, runtime=ctx.runtime,
                    progress=ctx.reporter(name), command=COMMAND, inputs={"stage": name},
                    seed=ctx.seed, manifest_extra={"plan": ctx.plan.to_json()})
    result = runner.run(items)
    if result.interrupted or result.stop_reason:
        raise DemoStopped(name, result.stop_reason or "interrupted", result.interrupted)
    failures = list(FailureLog.load(runner.failures_path).values())
    return StageRun(name, output, result, _read_jsonl(output), failures)


class _RewriteCall(dspy.Module):
    """Calls the rewrite predictor with its own completion limit and, on the embedded model, DSPy's ChatAdapter.

    The rewrite writes a whole dialogue, so it gets more room than the rewriter role's other call (the screen).
    On the embedded model the JSON adapter's grammar for a typed list of turns makes llama.cpp sample about one
    token a second on two cores, while free text is many times faster; parse failures are retried by ``invoke``.
    """

    def __init__(self, predictor: dspy.Predict, max_tokens: int, *, chat: bool) -> None:
        super().__init__()
        self.predictor = predictor
        self.max_tokens = max_tokens
        self.adapter = dspy.ChatAdapter(use_json_adapter_fallback=False) if chat else None

    def forward(self, **inputs: Any) -> dspy.Prediction:
        config = {"max_tokens": self.max_tokens}
        if self.adapter is None:
            return self.predictor(**inputs, config=config)
        with dspy.context(adapter=self.adapter):
            return self.predictor(**inputs, config=config)


# --- 1. CSConv-style: rewrite and annotate ------------------------------------------------------------------------


@dataclass
class CsconvOutcome:
    """Stage 1: one decision record per raw dialogue, the kept rewrites, the classifier's annotations, and whether
    the LLM screen ran."""

    decisions: list[dict[str, Any]]
    kept: list[Dialogue]
    annotations: list[dict[str, Any]]
    runs: list[StageRun] = field(default_factory=list)
    screen: bool = True


def csconv_stage(ctx: DemoContext) -> CsconvOutcome:
    """Rewrite the plan's raw samples and re-annotate the first supporter turns of every rewrite produced."""
    plan = ctx.plan
    raw = {dialogue.id: dialogue for dialogue in load_sample("raw")}
    unknown = [item for item in plan.raw_ids if item not in raw]
    if unknown:
        raise ValueError(f"unknown raw sample id(s) {unknown}; the raw sample has {sorted(raw)}")
    # the 0.5B screen flags every call before anything is rewritten (6 of 6 real banking calls, with reasons that
    # restate its instructions): on the embedded model the demo skips it and the report says so
    screen = not ctx.runtime.settings(Role.REWRITER).is_local
    rewriter = Rewriter(ctx.taxonomy, language=plan.language, attempts=plan.attempts, use_screen=screen)
    rewriter.rewrite = _RewriteCall(rewriter.rewrite, plan.rewrite_max_tokens,
                                    chat=ctx.runtime.settings(Role.REWRITER).is_local)

    def rewrite_one(dialogue: Dialogue) -> dict[str, Any]:
        result = rewriter(dialogue=dialogue)
        decision = result.decision
        if decision.rule == GENERATION_FAILURE:  # a failed item, as `cscprog rewrite` counts it, not a drop
            raise ItemError(f"{decision.stage}: {decision.reason}", role=Role.JUDGE if decision.stage == "judge"
                            else Role.REWRITER, raw_text=decision.details.get("raw_text"))
        return {"id": dialogue.id, "domain": dialogue.domain, "decision": result.decision.to_json(),
                "screen": result.screen, "judge": result.judge,
                "candidate": result.candidate.to_json() if result.candidate is not None else None,
                "kept": result.dialogue is not None}

    rewrites = _run(ctx, "rewrite", ((item, raw[item]) for item in plan.raw_ids), rewrite_one,
                    ctx.out_dir / "csconv" / "rewrites.jsonl")
    candidates: list[Dialogue] = []
    kept: list[Dialogue] = []
    for row in rewrites.records:
        if row.get("candidate"):
            candidates.append(Dialogue.model_validate(row["candidate"]))
            if row["kept"]:
                kept.append(candidates[-1])
    classifier = StrategyClassifier(ctx.taxonomy, concurrency=1, attempts=plan.attempts)

    def classify_one(candidate: Dialogue) -> dict[str, Any]:
        short = truncate(candidate, plan.classify_turns)
        result = classifier(short)
        turns = [{"turn_index": index, "text": short.turns[index].text, "rewriter": short.turns[index].strategy,
                  "classifier": result.dialogue.turns[index].strategy} for index in short.supporter_indices()]
        return {"id": candidate.id, "turns": turns, "failures": [f.to_json() for f in result.failures]}

    runs = [rewrites]
    annotations: list[dict[str, Any]] = []
    if candidates:
        annotate = _run(ctx, "annotate", ((d.id, d) for d in candidates), classify_one,
                        ctx.out_dir / "csconv" / "annotations.jsonl")
        runs.append(annotate)
        annotations = annotate.records
    decisions = list(rewrites.records) + [{"id": f["item_id"], "failure": f} for f in rewrites.failures]
    return CsconvOutcome(decisions=decisions, kept=kept, annotations=annotations, runs=runs, screen=screen)


# --- 2. RoleCS-style: synthesize and judge ------------------------------------------------------------------------


@dataclass
class RolecsOutcome:
    """Stage 2: the synthesized dialogues (judge verdict in ``metadata["judge"]`` when judged)."""

    dialogues: list[Dialogue]
    verdicts: dict[str, dict[str, Any]]
    runs: list[StageRun] = field(default_factory=list)

    @property
    def passed(self) -> list[Dialogue]:
        """The dialogues that met all five criteria (the ones RoleCS keeps)."""
        return [d for d in self.dialogues if self.verdicts.get(d.id, {}).get("passed")]


def rolecs_stage(ctx: DemoContext) -> RolecsOutcome:
    """Synthesize the plan's role-play dialogues (seeded profiles x topics plan) and judge each one."""
    plan = ctx.plan
    profiles = [profile for profile in load_profiles() if profile.language == plan.language]
    entries = synthesis_plan(profiles, TOPICS, n=plan.synthesize, seed=ctx.seed)
    simulator = RolePlaySimulator(ctx.taxonomy, max_utterances=plan.max_utterances, hard_flow_guard=True,
                                  attempts=plan.attempts)

    def synthesize_one(entry: tuple[str, Any, str]) -> dict[str, Any]:
        dialogue_id, profile, topic = entry
        return simulator(profile=profile, topic=topic, dialogue_id=dialogue_id,
                         language=plan.language).dialogue.to_json()

    synthesized = _run(ctx, "synthesize", ((entry[0], entry) for entry in entries), synthesize_one,
                       ctx.out_dir / "rolecs" / "synthesized.jsonl")
    dialogues = [Dialogue.model_validate(record) for record in synthesized.records]
    judge = QualityJudge(ctx.taxonomy, concurrency=1, attempts=plan.attempts)

    def judge_one(dialogue: Dialogue) -> dict[str, Any]:
        verdict = judge(dialogue)
        return {"id": dialogue.id, "passed": verdict.passed, "scores": verdict.scores, "reasons": verdict.reasons,
                "rule_check": verdict.rule_check}

    runs = [synthesized]
    verdicts: dict[str, dict[str, Any]] = {}
    if dialogues:
        judged = _run(ctx, "judge", ((d.id, d) for d in dialogues), judge_one,
                      ctx.out_dir / "rolecs" / "verdicts.jsonl")
        runs.append(judged)
        verdicts = {row["id"]: row for row in judged.records}
        verdicts.update({f["item_id"]: {"id": f["item_id"], "passed": False, "failure": f.get("reason")}
                         for f in judged.failures})
    return RolecsOutcome(dialogues=dialogues, verdicts=verdicts, runs=runs)


# --- 3. compile ---------------------------------------------------------------------------------------------------


@dataclass
class CompileOutcome:
    """Stage 3: the compiled program, its file, the data sizes and the dev scores before and after."""

    program: dspy.Module
    path: Path
    result: Any
    train_sources: dict[str, int]
    splits: dict[str, list[Dialogue]]

    def manifest(self) -> dict[str, Any]:
        """What :func:`cscprog.evaluation.evaluate.evaluate` records about the compiled program."""
        return {"path": str(self.path), "recipe": RECIPE, "budget": BUDGET,
                "optimizer": self.result.settings.get("optimizer"), "before": self.result.before,
                "after": self.result.after, "improvement": self.result.improvement}


def compile_stage(ctx: DemoContext, rolecs: RolecsOutcome) -> CompileOutcome:
    """Compile the response generator on the judged synthesized dialogues plus the annotated train split."""
    plan = ctx.plan
    splits = held_out_splits(plan, load_sample(f"annotated_{plan.language}"))
    synthetic = [truncate(d, plan.train_positions) for d in rolecs.passed]
    annotated = [truncate(d, plan.train_positions) for d in splits["train"]]
    train = training_examples(synthetic + annotated)
    dev = training_examples(truncate(d, plan.positions) for d in splits["dev"])
    reporter = ctx.reporter("compile")
    reporter.message(f"compile: {RECIPE}/{BUDGET} with {plan.demos} labeled demos per predictor from "
                     f"{len(train)} training examples; scoring {len(dev)} dev examples before and after")
    overrides = {**COMPILE_OVERRIDES, "max_labeled_demos": plan.demos}
    result = compile_program(ResponseGenerator(ctx.taxonomy), train, dev, recipe=RECIPE, budget=BUDGET,
                             overrides=overrides, num_threads=1, seed=ctx.seed)
    inputs = {"train": f"{len(synthetic)} judged synthesized + {len(annotated)} annotated train dialogues",
              "dev": [d.id for d in splits["dev"]], "positions": plan.positions}
    path = save_compiled(ctx.out_dir / "compile" / "program.json", result, ctx.runtime, inputs=inputs)
    reporter.message(f"compile: dev metric {result.before['metric']} -> {result.after['metric']}")
    sources = {"synthesized_dialogues": len(synthetic), "annotated_dialogues": len(annotated),
               "train_examples": len(train), "dev_examples": len(dev)}
    return CompileOutcome(program=result.program, path=path, result=result, train_sources=sources, splits=splits)


# --- 4. evaluate --------------------------------------------------------------------------------------------------


@dataclass
class EvaluateOutcome:
    """Stage 4: ``results[(program, context)]`` is the ``result.json`` of that evaluation."""

    results: dict[tuple[str, str], dict[str, Any]]
    dirs: dict[tuple[str, str], Path]
    test_ids: list[str]


def evaluate_stage(ctx: DemoContext, compiled: CompileOutcome) -> EvaluateOutcome:
    """Evaluate the base and the compiled generator on the test split's first supporter turns, both contexts."""
    plan = ctx.plan
    test = [truncate(d, plan.positions) for d in compiled.splits["test"]]
    source = f"sample:annotated_{plan.language} (test split, first {plan.positions} supporter turns)"
    programs = {"base": (ResponseGenerator(ctx.taxonomy), None), "compiled": (compiled.program, compiled.manifest())}
    scorer, _ = load_semantic_scorer()  # once for the four evaluations (None: each records why it is missing)
    semantic = scorer if scorer is not None else True
    results: dict[tuple[str, str], dict[str, Any]] = {}
    dirs: dict[tuple[str, str], Path] = {}
    for name in PROGRAMS:
        program, manifest = programs[name]
        for context in CONTEXTS:
            target = ctx.out_dir / "eval" / f"{name}-{context}"
            outcome = evaluate(program, test, out_dir=target, context=context, concurrency=ctx.concurrency,
                               progress=ctx.reporter(f"evaluate {name} ({context})"), data_source=source,
                               program_manifest=manifest, command=COMMAND, semantic=semantic)
            if outcome.exit_status == 130:
                raise DemoStopped(f"evaluate {name} ({context})", "interrupted", True)
            run = outcome.result.get("run") or {}
            if run.get("stop_reason"):
                raise DemoStopped(f"evaluate {name} ({context})", run["stop_reason"], False)
            results[(name, context)] = outcome.result
            dirs[(name, context)] = target
    return EvaluateOutcome(results=results, dirs=dirs, test_ids=[d.id for d in test])
