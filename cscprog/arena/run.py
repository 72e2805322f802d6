"""An arena run: plan the customers, hold the conversations, judge the pairs, summarize, report.

:func:`run_arena` runs up to three stages, each a :class:`cscprog.runs.Runner` over its own JSONL output in the
run directory (so each is resumable, cached, budgeted, shown on the progress display, runnable on Ray, and has
its own manifest and failures file):

1. ``customers.jsonl``: every planned customer's goal and scenario (role ``planner``), once for all candidates;
2. ``conversations.jsonl``: every candidate x customer x trial: the conversation
   (:class:`~cscprog.arena.simulate.ArenaSimulator`), its strategy labels, resolution verdict, the customer's
   satisfaction and the scores (:func:`~cscprog.arena.scores.score_conversation`);
3. ``pairs.jsonl`` (two candidates or more): every pair of candidates on every customer and trial both finished,
   judged in both orders (:class:`~cscprog.arena.pairwise.ConversationPairJudge`).

Then ``result.json`` (the command, settings, candidates, counts, per-candidate scores with intervals, pass^k, pairwise
rates), ``report.md`` and the plots are written from whatever the outputs hold. A stage that is interrupted or
stopped by the budget stops the run before the next stage; items that failed are retried by ``resume=True``.

Example:
    ```python
    from cscprog.arena import ArenaSettings, ModuleCandidate, run_arena
    from cscprog.agents.responder import ResponseGenerator
    from cscprog.rolecs.plan import TOPICS, synthesis_plan
    from cscprog.samples import load_profiles

    plan = synthesis_plan(load_profiles(), TOPICS, n=4, seed=1234)
    candidates = [ModuleCandidate("base", ResponseGenerator())]
    with runtime.activate():
        outcome = run_arena(candidates, plan, ArenaSettings(output_dir=Path("runs/arena"), trials=2))
    outcome.result["summary"]["base"]["scores"]["resolved"]
    ```
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cscprog.agents.classifier import ROLE as CLASSIFIER_ROLE
from cscprog.agents.classifier import StrategyClassifier
from cscprog.arena.aggregate import summarize_candidates, summarize_pairs
from cscprog.arena.candidates import MODULE_ROLE, Candidate
from cscprog.arena.customers import PLANNER_ROLE, ArenaCustomer, CustomerPlanner
from cscprog.arena.judges import JUDGE_ROLE, SURVEY_ROLE, ResolutionJudge, ResolutionVerdict, SatisfactionSurvey
from cscprog.arena.pairwise import PAIR_ROLE, ConversationPairJudge
from cscprog.arena.plots import write_plots
from cscprog.arena.report import write_report
from cscprog.arena.scores import label_strategies, score_conversation
from cscprog.arena.simulate import ArenaSimulator, conversation_id
from cscprog.data import LANGUAGES, Dialogue, Profile
from cscprog.errors import ConfigError, DataError
from cscprog.files import atomic_write
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.roles import Role
from cscprog.runs import ExecutionEngine, NoProgress, ProgressReporter, Runner, RunResult

__all__ = ["RESULT_FORMAT", "ArenaOutcome", "ArenaSettings", "arena_roles", "read_records", "run_arena"]

logger = logging.getLogger(__name__)

RESULT_FORMAT = "cscprog-arena/1"
"""The ``format`` of ``result.json``."""

STAGES = ("customers", "conversations", "pairs")


@dataclass
class ArenaSettings:
    """How an arena run is done.

    Attributes:
        output_dir: The run directory (outputs, manifests, result, report, plots).
        trials: Seeded trials per candidate and customer (pass^k is reported for k = 1..trials).
        turn_cap: The most utterances of a conversation.
        language: ``en`` or ``zh``; None: each profile's own language, else ``en``.
        concurrency: Items run at once in each stage.
        resume: Continue an existing run directory (finished items are skipped, failed ones retried).
        pairwise: Judge every pair of candidates (needs two candidates or more).
        check_adherence: Classify the turns a candidate tagged with a strategy, to measure adherence.
        resamples: Bootstrap resamples of every interval.
        confidence: Interval coverage.
        seed: The seed of the customer plan, recorded, and of the bootstrap.
        engine: Where items run (threads by default; a Ray engine works the same).
        progress: ``progress(stage) -> ProgressReporter`` (default: none).
        command: The command line, for the manifests.
        resume_command: The command that resumes the run, shown when it stops early.
        inputs: More inputs for the manifests.
    """

    output_dir: Path
    trials: int = 1
    turn_cap: int = 12
    language: str | None = None
    concurrency: int = 1
    resume: bool = False
    pairwise: bool = True
    check_adherence: bool = True
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 1234
    engine: ExecutionEngine | None = None
    progress: Callable[[str], ProgressReporter] | None = None
    command: str = "cscprog arena"
    resume_command: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`ConfigError` for values the run cannot use."""
        if self.trials < 1:
            raise ConfigError(f"trials must be >= 1, got {self.trials}")
        if self.turn_cap < 2:
            raise ConfigError(f"turn cap must be >= 2 utterances, got {self.turn_cap}")
        if self.language is not None and self.language not in LANGUAGES:
            raise ConfigError(f"language must be en or zh, got {self.language!r}")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")


@dataclass
class ArenaOutcome:
    """What :func:`run_arena` did: the stage results, the result document and where it was written."""

    runs: dict[str, RunResult]
    result: dict[str, Any]
    result_path: Path
    report_path: Path

    @property
    def exit_status(self) -> int:
        """The worst exit status of the stages (0 when every item of every stage finished)."""
        return max((run.exit_status for run in self.runs.values()), default=0)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON records of a finished JSONL output (empty when the file does not exist).

    Raises:
        DataError: a line is not a JSON object (the message names the file and line).

    Example:
        ```python
        conversations = read_records(Path("runs/arena/conversations.jsonl"))
        ```
    """
    if not path.is_file():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise DataError(str(path), f"line {number}: not JSON: {error}") from None
            if not isinstance(record, dict):
                raise DataError(str(path), f"line {number}: not a JSON object")
            records.append(record)
    return records


class _Stages:
    """The work functions of the three stages, sharing one set of modules.

    Picklable (a Ray engine sends it to its workers): it keeps the settings it needs, not the settings object,
    which holds the engine and the progress factory.
    """

    def __init__(self, taxonomy: Taxonomy, settings: ArenaSettings) -> None:
        self.taxonomy = taxonomy
        self.language = settings.language
        self.check_adherence = settings.check_adherence
        self.planner = CustomerPlanner()
        self.simulator = ArenaSimulator(taxonomy, turn_cap=settings.turn_cap)
        self.classifier = StrategyClassifier(taxonomy, concurrency=1)
        self.judge = ResolutionJudge()
        self.survey = SatisfactionSurvey()
        self.pair_judge = ConversationPairJudge()

    def plan(self, payload: tuple[str, Profile, str]) -> dict[str, Any]:
        customer_id, profile, topic = payload
        language = self.language or profile.language or "en"
        return self.planner(customer_id, profile, topic, language=language).to_json()

    def converse(self, payload: tuple[Candidate, ArenaCustomer, int]) -> dict[str, Any]:
        candidate, customer, trial = payload
        dialogue = self.simulator(candidate, customer, trial=trial)
        labelled, source, adherence, unlabelled = label_strategies(
            dialogue, self.classifier, check_adherence=self.check_adherence
        )
        if any(turn.speaker == "supporter" for turn in labelled.turns):
            verdict = self.judge(labelled)
            rating = self.survey(labelled)
        else:
            verdict, rating = ResolutionVerdict(False, "the agent produced no reply"), None
        scores = score_conversation(labelled, self.taxonomy, verdict, rating, strategy_source=source,
                                    adherence=adherence, label_failures=unlabelled)
        return {"id": labelled.id, "candidate": candidate.name, "customer_id": customer.id, "topic": customer.topic,
                "trial": trial, "scores": scores.to_json(), "dialogue": labelled.to_json()}

    def compare(self, payload: tuple[str, str, dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        a_name, b_name, a_record, b_record = payload
        a = Dialogue.model_validate(a_record["dialogue"])
        b = Dialogue.model_validate(b_record["dialogue"])
        verdict = self.pair_judge(a, b)
        return {"id": f"{a_name}~{b_name}/{a_record['customer_id']}/t{a_record['trial']}", "a": a_name,
                "b": b_name, "customer_id": a_record["customer_id"], "topic": a_record["topic"],
                "trial": a_record["trial"], **verdict.to_json()}


def _run_stage(name: str, work: Callable[[Any], Any], items: list[tuple[str, Any]], settings: ArenaSettings,
               inputs: dict[str, Any]) -> RunResult:
    progress = settings.progress(name) if settings.progress is not None else NoProgress()
    runner = Runner(work, output=settings.output_dir / f"{name}.jsonl", concurrency=settings.concurrency,
                    resume=settings.resume, progress=progress, command=settings.command,
                    inputs={**settings.inputs, **inputs, "stage": name}, seed=settings.seed,
                    resume_command=settings.resume_command, engine=settings.engine)
    return runner.run(items)


def _stopped(result: RunResult) -> bool:
    return result.interrupted or bool(result.stop_reason)


def arena_roles(candidates: Sequence[Candidate], settings: ArenaSettings) -> tuple[str, ...]:
    """The LM roles an arena run may call, for :func:`cscprog.lm.preflight.check_setup` before it starts.

    The planner, the customer assistant and the customer (who also answers the satisfaction survey), each
    candidate's own role, the resolution judge, the strategy classifier (it labels untagged turns even when
    adherence is off) and, with two candidates or more and ``pairwise``, the pair judge.

    Example:
        ```python
        check_setup(config, arena_roles(candidates, settings))
        ```
    """
    roles = [PLANNER_ROLE, Role.CUSTOMER_ASSISTANT, Role.CUSTOMER, SURVEY_ROLE,
             *(str(getattr(candidate, "role", MODULE_ROLE)) for candidate in candidates), JUDGE_ROLE,
             CLASSIFIER_ROLE]
    if settings.pairwise and len(candidates) > 1:
        roles.append(PAIR_ROLE)
    return tuple(dict.fromkeys(roles))


def run_arena(
    candidates: Sequence[Candidate],
    plan: Sequence[tuple[str, Profile, str]],
    settings: ArenaSettings,
    taxonomy: Taxonomy | None = None,
) -> ArenaOutcome:
    """Run the arena (see the module docstring) inside the active runtime.

    Args:
        candidates: The agents, with unique names.
        plan: ``(customer_id, profile, topic)`` triples (:func:`cscprog.rolecs.plan.synthesis_plan`).
        settings: How to run.
        taxonomy: The strategy taxonomy (default CSC).

    Returns:
        The stage results and the result document (also written to ``result.json``, with ``report.md``).

    Raises:
        ConfigError: no candidate, duplicate candidate names, no customer, or unusable settings.
        RunInputError: an existing output without ``resume``, or a corrupt output.
    """
    settings.check()
    taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
    names = [candidate.name for candidate in candidates]
    if not names:
        raise ConfigError("the arena needs at least one candidate")
    if len(set(names)) != len(names):
        raise ConfigError(f"candidate names must be unique, got {', '.join(names)}")
    if not plan:
        raise ConfigError("the arena needs at least one customer")
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    stages = _Stages(taxonomy, settings)
    runs: dict[str, RunResult] = {}
    described = {candidate.name: candidate.describe() for candidate in candidates}
    common = {"candidates": described, "customers": len(plan), "trials": settings.trials,
              "turn_cap": settings.turn_cap, "taxonomy": taxonomy.name}

    runs["customers"] = _run_stage("customers", stages.plan, [(item[0], item) for item in plan], settings, common)
    order = {customer_id: index for index, (customer_id, _, _) in enumerate(plan)}
    customers = sorted(
        (ArenaCustomer.from_json(record, str(settings.output_dir / "customers.jsonl"))
         for record in read_records(settings.output_dir / "customers.jsonl") if record.get("id") in order),
        key=lambda customer: order[customer.id],
    )
    if not _stopped(runs["customers"]) and customers:
        items = [(conversation_id(candidate.name, customer.id, trial), (candidate, customer, trial))
                 for candidate in candidates for customer in customers for trial in range(settings.trials)]
        runs["conversations"] = _run_stage("conversations", stages.converse, items, settings, common)
    conversations = read_records(settings.output_dir / "conversations.jsonl")
    conversations = [record for record in conversations
                     if record.get("candidate") in described and record.get("customer_id") in order
                     and record.get("trial", -1) < settings.trials]
    pairs: list[dict[str, Any]] = []
    wants_pairs = settings.pairwise and len(candidates) > 1
    if wants_pairs and "conversations" in runs and not _stopped(runs["conversations"]):
        by_key = {(record["candidate"], record["customer_id"], record["trial"]): record for record in conversations}
        items = []
        for a, b in itertools.combinations(names, 2):
            for customer in customers:
                for trial in range(settings.trials):
                    if (a, customer.id, trial) in by_key and (b, customer.id, trial) in by_key:
                        items.append((f"{a}~{b}/{customer.id}/t{trial}",
                                      (a, b, by_key[(a, customer.id, trial)], by_key[(b, customer.id, trial)])))
        if items:
            runs["pairs"] = _run_stage("pairs", stages.compare, items, settings, common)
        pairs = [record for record in read_records(settings.output_dir / "pairs.jsonl")
                 if record.get("a") in described and record.get("b") in described]

    options = {"resamples": settings.resamples, "confidence": settings.confidence, "seed": settings.seed}
    summary = summarize_candidates(conversations, **options)
    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "command": settings.command,
        "taxonomy": taxonomy.name,
        "settings": {"trials": settings.trials, "turn_cap": settings.turn_cap, "language": settings.language,
                     "seed": settings.seed, "resamples": settings.resamples, "confidence": settings.confidence,
                     "check_adherence": settings.check_adherence, "pairwise": wants_pairs},
        "candidates": described,
        "counts": {
            "customers_planned": len(plan),
            "customers_ready": len(customers),
            "conversations": {name: summary.get(name, {}).get("conversations", 0) for name in names},
            "pairs": len(pairs),
            "failed": {stage: run.failed for stage, run in runs.items()},
            "not_run": {stage: run.unfinished for stage, run in runs.items()},
        },
        "summary": summary,
        "pairwise": summarize_pairs(pairs, **options),
        "runs": {stage: {"exit_status": run.exit_status, "manifest": str(run.manifest) if run.manifest else None}
                 for stage, run in runs.items()},
    }
    result["plots"] = [str(path) for path in write_plots(conversations, summary, taxonomy, settings.output_dir)]
    result_path = settings.output_dir / "result.json"
    atomic_write(result_path, json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    report_path = write_report(result, settings.output_dir / "report.md")
    return ArenaOutcome(runs=runs, result=result, result_path=result_path, report_path=report_path)
