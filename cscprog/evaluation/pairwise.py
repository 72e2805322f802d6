"""Pairwise LLM judging of two runs on the same turns: both orders, four criteria, win/tie/loss with intervals.

For each supporter turn the judge (:class:`~cscprog.signatures.ComparePair`, role ``pair_judge``) sees the
conversation so far, the gold strategy with its definition, and the two runs' replies, twice: A as reply 1 and B
as reply 2, then swapped. Per criterion (:data:`~cscprog.signatures.PAIR_CRITERIA`: strategy adherence, problem
resolution, empathy, naturalness) the two verdicts are mapped back to A/B and combined by the rule every pairwise
judge shares (:func:`cscprog.evaluation.verdicts.combine_orders`): theirs when they agree, a tie when they
disagree. The *position-consistency rate* is the share of (turn, criterion) verdicts that survive the swap.

:func:`judge_pairs` runs the turns through the resumable runner (:mod:`cscprog.runs`: cached, concurrent,
crash-safe; ``resume=True`` continues), one output line per turn, and :func:`summarize_pairs` turns the lines
into win/tie/loss rates of B against A per criterion and overall (B wins a turn when it wins more criteria
than it loses), each with a percentile bootstrap interval over turns
(:func:`cscprog.evaluation.verdicts.summarize_outcomes`, as the arena's pairwise figures).

Example:
    ```python
    from cscprog.evaluation.pairwise import PairwiseJudge, judge_pairs, summarize_pairs

    run = judge_pairs(PairwiseJudge(), turns, output="compare/pairs.jsonl", resume=True)
    summary = summarize_pairs(read_pair_records("compare/pairs.jsonl"), resamples=1000, seed=0)
    summary["overall"]["win"]     # {'estimate': 0.412, 'low': 0.35, 'high': 0.475, 'n': 120, ...}
    ```
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy

from cscprog.data import Dialogue
from cscprog.errors import DataError
from cscprog.evaluation.intervals import DEFAULT_RESAMPLES
from cscprog.evaluation.predictions import read_predictions
from cscprog.evaluation.verdicts import PAIR_ROLE, TIE, combine_orders, summarize_outcomes
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.lm.invoke import invoke
from cscprog.runs import Runner, RunResult
from cscprog.runs.progress import ProgressReporter
from cscprog.signatures import PAIR_CRITERIA, ComparePair, PairChoice

__all__ = ["PairTurn", "PairwiseJudge", "judge_pairs", "pair_turns", "read_pair_records", "summarize_pairs"]


@dataclass(frozen=True)
class PairTurn:
    """One turn to judge: where it is, what the judge is shown, and both runs' replies."""

    dialogue_id: str
    turn_index: int
    history: str
    strategy: str
    language: str
    reply_a: str
    reply_b: str
    domain: str = ""

    @property
    def turn_id(self) -> str:
        """``dialogue_id#turn_index``, the runner's item id."""
        return f"{self.dialogue_id}#{self.turn_index}"


NO_REPLY = "(no reply: the generation failed)"


def pair_turns(run_a: Any, run_b: Any, dialogues: Sequence[Dialogue], taxonomy: Taxonomy) -> list[PairTurn]:
    """The turns both runs answered, with the gold history and the gold strategy's definition.

    ``run_a``/``run_b`` are :class:`cscprog.evaluation.compare.RunRecords` on the same turns.

    Raises:
        DataError: a turn's dialogue is not among ``dialogues`` (naming the turn).

    Example:
        ```python
        turns = pair_turns(load_run("eval/a"), load_run("eval/b"), dialogues, load_taxonomy("csc"))
        ```
    """
    by_id = {dialogue.id: dialogue for dialogue in dialogues}
    turns = []
    for key in sorted(set(run_a.records) & set(run_b.records)):
        record_a, record_b = run_a.records[key], run_b.records[key]
        dialogue = by_id.get(key[0])
        if dialogue is None:
            raise DataError(str(run_a.path), f"turn {key[0]}#{key[1]}: dialogue {key[0]!r} is not in the data given")
        language = record_a.get("language") or dialogue.language or "en"
        strategy = taxonomy.strategy(record_a["gold_strategy"])
        turns.append(PairTurn(key[0], key[1], dialogue.transcript(key[1], strategies=False, language=language),
                              strategy.describe(language), language, record_a.get("pred_reply") or NO_REPLY,
                              record_b.get("pred_reply") or NO_REPLY, record_a.get("domain") or ""))
    return turns


def read_pair_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The judged turns of a verdicts file (see :func:`judge_pairs`).

    Raises:
        DataError: the file is missing or a line is not a JSON object.

    Example:
        ```python
        records = read_pair_records("pairs.jsonl")
        ```
    """
    return [record for _, record in read_predictions(path)]


def _check(prediction: dspy.Prediction) -> str | None:
    for name in PAIR_CRITERIA:
        if not isinstance(getattr(prediction, name, None), PairChoice):
            return f"criterion {name}: no verdict"
    return None


def _as_ab(choice: str, a_first: bool) -> str:
    if choice == TIE:
        return TIE
    return ("A" if choice == "1" else "B") if a_first else ("B" if choice == "1" else "A")


class PairwiseJudge(dspy.Module):
    """Judges one turn in both orders and combines the verdicts.

    Args:
        taxonomy: Strategy definitions shown to the judge (default CSC).
        attempts: Attempts per order at a parseable verdict.

    Example:
        ```python
        record = PairwiseJudge()(turn)
        record["verdicts"]["empathy"]   # {'ab': 'B', 'ba': 'B', 'final': 'B', 'consistent': True, ...}
        ```
    """

    def __init__(self, taxonomy: Taxonomy | None = None, *, attempts: int = 3) -> None:
        super().__init__()
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
        self.attempts = attempts
        self.compare = dspy.Predict(ComparePair)

    def _ask(self, turn: PairTurn, first: str, second: str) -> dspy.Prediction:
        return invoke(self.compare, role=PAIR_ROLE, attempts=self.attempts, validate=_check, history=turn.history,
                      strategy=turn.strategy, reply_1=first, reply_2=second, language=turn.language)

    def forward(self, turn: PairTurn) -> dict[str, Any]:
        """The JSON record of one judged turn (both orders, final verdict and consistency per criterion).

        Raises:
            GenerationFailure: no parseable verdict in one of the orders after every attempt.
        """
        ab = self._ask(turn, turn.reply_a, turn.reply_b)
        ba = self._ask(turn, turn.reply_b, turn.reply_a)
        verdicts = {}
        for name in PAIR_CRITERIA:
            first, second = _as_ab(getattr(ab, name).choice, True), _as_ab(getattr(ba, name).choice, False)
            final, consistent = combine_orders(first, second)
            verdicts[name] = {"ab": first, "ba": second, "final": final, "consistent": consistent,
                              "reason_ab": getattr(ab, name).reason.strip(),
                              "reason_ba": getattr(ba, name).reason.strip()}
        return {"turn_id": turn.turn_id, "dialogue_id": turn.dialogue_id, "turn_index": turn.turn_index,
                "domain": turn.domain, "verdicts": verdicts}


def judge_pairs(
    judge: PairwiseJudge,
    turns: Sequence[PairTurn],
    *,
    output: str | os.PathLike[str],
    resume: bool = False,
    concurrency: int = 4,
    progress: ProgressReporter | None = None,
    command: str = "",
    runtime: Any = None,
) -> RunResult:
    """Judge every turn through the resumable runner; one JSON line per turn in ``output``.

    Example:
        ```python
        result = judge_pairs(PairwiseJudge(), turns, output="pairs.jsonl", resume=True)
        ```
    """
    runner = Runner(judge, output=Path(output), id_field="turn_id", concurrency=concurrency, resume=resume,
                    runtime=runtime, progress=progress, command=command, inputs={"turns": len(turns)})
    return runner.run((turn.turn_id, turn) for turn in turns)


def _turn_winner(verdicts: dict[str, Any]) -> str:
    wins = sum(v["final"] == "B" for v in verdicts.values())
    losses = sum(v["final"] == "A" for v in verdicts.values())
    return "B" if wins > losses else "A" if losses > wins else TIE


def summarize_pairs(
    records: Iterable[dict[str, Any]], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = 0.95
) -> dict[str, Any]:
    """Win/tie/loss rates of B against A per criterion and overall, and the position consistency, with intervals.

    Every rate is :func:`~cscprog.evaluation.verdicts.summarize_outcomes` over turns (``estimate`` in [0, 1]).

    Raises:
        ValueError: no records.

    Example:
        ```python
        summarize_pairs(records)["position_consistency"]["estimate"]
        ```
    """
    rows = list(records)
    if not rows:
        raise ValueError("no judged turns to summarize")
    options = {"resamples": resamples, "seed": seed, "confidence": confidence, "unit": "turns"}
    criteria = {name: summarize_outcomes([[(row["verdicts"][name]["final"], row["verdicts"][name]["consistent"])]
                                          for row in rows], "B", **options) for name in PAIR_CRITERIA}
    every = summarize_outcomes([[(v["final"], v["consistent"]) for v in row["verdicts"].values()] for row in rows],
                               "B", **options)
    overall = summarize_outcomes([[(_turn_winner(row["verdicts"]), True)] for row in rows], "B", **options)
    return {
        "n": len(rows),
        "overall": {name: overall[name] for name in ("win", "tie", "loss")},
        "criteria": {name: {key: rates[key] for key in ("win", "tie", "loss", "position_consistency")}
                     for name, rates in criteria.items()},
        "position_consistency": every["position_consistency"],
        "rule": "per criterion: the verdict when both orders agree, else tie; a turn is a win for B when B wins "
                "more criteria than it loses; rates are means over turns with percentile-bootstrap intervals",
    }
