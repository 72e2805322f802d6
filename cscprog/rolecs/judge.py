"""The quality judge of synthesized dialogues: five yes/no criteria, keep only dialogues that pass all five.

The criteria (CSC.md section 4): strategy adherence, spotting unreasonable or impossible requests, natural
replies, varied expression, role consistency. Each verdict is a real ``bool`` parsed by pydantic (the string
``"false"`` is False; a non-boolean answer is a parse failure that is retried), so the reference release's
"any non-empty string is true" bug cannot happen here.

The verdict is stored with the dialogue in ``metadata["judge"]``::

    {"passed": true, "criteria_passed": 5, "scores": {"strategy_adherence": true, ...},
     "reasons": {"strategy_adherence": "...", ...}}

Rule checks run first (:func:`cscprog.csconv.degenerate.check_degenerate`, with the dialogue's scenario, goal
and profile as the context no turn may copy): a dialogue with degenerate text (a turn repeating an earlier one
or the scenario, looping n-grams, an empty or runaway turn, a customer speaking as the supporter) fails with
``{"passed": false, "rule_check": {"rule": ..., "reason": ...}}`` and no LLM call, whatever a judge would have
said. A passing dialogue's record carries its ``rule_check`` too.

A dialogue the judge could not assess (no parseable verdict after the retries, or no turns) is rejected by
:meth:`QualityJudge.filter_passing` with ``{"passed": false, "failure": <reason>}`` instead: it was not
shown to be good, and the failure is visible and countable.

Role: ``judge``.

Example:
    ```python
    import dspy
    from cscprog.rolecs.judge import QualityJudge
    from cscprog.samples import load_sample

    judge = QualityJudge()
    with dspy.context(lm=dspy.LM("openai/gpt-4o-mini")):
        kept, rejected = judge.filter_passing(load_sample("annotated_en"))
    [d.metadata["judge"]["scores"] for d in rejected]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import dspy

from cscprog.concurrency import check_call_limits, map_in_threads, run_concurrency
from cscprog.csconv.degenerate import check_degenerate
from cscprog.data import Dialogue
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.roles import Role
from cscprog.signatures import JUDGE_CRITERIA, CriterionVerdict, JudgeDialogue, for_taxonomy

__all__ = ["JUDGE_CRITERIA", "METADATA_KEY", "QualityJudge"]

logger = logging.getLogger(__name__)

ROLE = Role.JUDGE
"""The LM role of the judge's calls."""

METADATA_KEY = "judge"
"""The dialogue metadata key holding the verdict."""


def _check_verdicts(prediction: dspy.Prediction) -> str | None:
    """None when every criterion has a verdict with a real bool, else what is wrong."""
    for name in JUDGE_CRITERIA:
        verdict = getattr(prediction, name, None)
        if not isinstance(verdict, CriterionVerdict):
            return f"criterion {name}: no verdict"
        if type(verdict.passed) is not bool:
            return f"criterion {name}: passed is {verdict.passed!r}, not a boolean"
    return None


def _context_of(dialogue: Dialogue) -> list[str]:
    """What the dialogue was written from and must not copy: scenario, goal, profile."""
    texts = []
    if dialogue.scenario is not None:
        texts += [dialogue.scenario.text, dialogue.scenario.goal]
    if dialogue.profile is not None:
        texts.append(dialogue.profile.as_prompt())
    return [text for text in texts if text]


class QualityJudge(dspy.Module):
    """Scores a dialogue on the five criteria; a dialogue passes when it meets all five.

    Args:
        taxonomy: The strategy taxonomy whose definitions the judge is shown (default CSC).
        concurrency: Dialogues judged at once by :meth:`filter_passing` (None: the runtime's setting, else 4).
        attempts: Attempts per dialogue at a parseable verdict.

    Attributes:
        judge: ``transcript, language -> five CriterionVerdicts`` (what optimizers tune).

    Example:
        ```python
        result = QualityJudge()(dialogue)
        result.passed, result.scores["varied_expression"], result.reasons["varied_expression"]
        ```
    """

    def __init__(self, taxonomy: Taxonomy | None = None, *, concurrency: int | None = None, attempts: int = 3) -> None:
        super().__init__()
        check_call_limits(attempts=attempts, concurrency=concurrency)
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
        self.concurrency = concurrency
        self.attempts = attempts
        self.judge = dspy.Predict(for_taxonomy(JudgeDialogue, self.taxonomy))

    def forward(self, dialogue: Dialogue) -> dspy.Prediction:
        """Judge one dialogue.

        Returns:
            ``Prediction(scores={criterion: bool}, reasons={criterion: str}, passed=<all five and the rule
            checks>, rule_check=<the rule checks' decision as data>, dialogue=<copy with metadata["judge"]>)``;
            after a failed rule check ``scores`` and ``reasons`` are empty (the LLM judge was not asked).

        Raises:
            ValueError: the dialogue has no turns.
            GenerationFailure: no parseable verdict after every attempt.

        Example:
            ```python
            verdict = judge(dialogue)
            ```
        """
        if not dialogue.turns:
            raise ValueError(f"dialogue {dialogue.id!r} has no turns to judge")
        rule_check = check_degenerate(dialogue, context=_context_of(dialogue)).to_json()
        if not rule_check["kept"]:
            judged = dialogue.model_copy(deep=True)
            judged.metadata[METADATA_KEY] = {"passed": False, "criteria_passed": 0, "scores": {}, "reasons": {},
                                             "rule_check": rule_check}
            return dspy.Prediction(scores={}, reasons={}, passed=False, rule_check=rule_check, dialogue=judged)
        prediction = invoke(
            self.judge,
            role=ROLE,
            attempts=self.attempts,
            validate=_check_verdicts,
            transcript=dialogue.transcript(strategies=True),
            language=dialogue.language or "en",
        )
        verdicts: dict[str, CriterionVerdict] = {name: getattr(prediction, name) for name in JUDGE_CRITERIA}
        scores = {name: verdict.passed for name, verdict in verdicts.items()}
        reasons = {name: verdict.reason.strip() for name, verdict in verdicts.items()}
        passed = all(scores.values())
        record: dict[str, Any] = {
            "passed": passed,
            "criteria_passed": sum(scores.values()),
            "scores": scores,
            "reasons": reasons,
            "rule_check": rule_check,
        }
        judged = dialogue.model_copy(deep=True)
        judged.metadata[METADATA_KEY] = record
        return dspy.Prediction(scores=scores, reasons=reasons, passed=passed, rule_check=rule_check, dialogue=judged)

    def filter_passing(self, dialogues: Iterable[Dialogue]) -> tuple[list[Dialogue], list[Dialogue]]:
        """Judge every dialogue and split them: ``(kept, rejected)``, each in input order.

        Kept dialogues met all five criteria. Rejected ones failed at least one, or could not be judged
        (``metadata["judge"]["failure"]`` says why). All returned dialogues are copies carrying their verdict.

        Example:
            ```python
            kept, rejected = judge.filter_passing(dialogues)
            unjudged = sum("failure" in d.metadata["judge"] for d in rejected)
            ```
        """

        def run(dialogue: Dialogue) -> tuple[bool, Dialogue]:
            if dialogue.turns:
                try:
                    result = self(dialogue)
                    return result.passed, result.dialogue
                except GenerationFailure as error:
                    reason, raw = error.reason, error.raw_text
            else:
                reason, raw = "the dialogue has no turns", None
            logger.warning("dialogue %s: not judged: %s", dialogue.id, reason)
            rejected = dialogue.model_copy(deep=True)
            rejected.metadata[METADATA_KEY] = {"passed": False, "failure": reason, "raw_text": raw}
            return False, rejected

        outcomes = map_in_threads(run, list(dialogues), run_concurrency(self.concurrency))
        kept = [dialogue for passed, dialogue in outcomes if passed]
        rejected = [dialogue for passed, dialogue in outcomes if not passed]
        failed = sum(METADATA_KEY in d.metadata and "failure" in d.metadata[METADATA_KEY] for d in rejected)
        logger.info("judge: kept %d, rejected %d (%d not judged)", len(kept), len(rejected), failed)
        return kept, rejected
