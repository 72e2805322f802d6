"""Verdicts on one finished arena conversation: was it resolved, and how satisfied was the customer?

* :class:`ResolutionJudge` (role ``arena_judge``) reads the customer's goal, the scenario and the transcript
  (without strategy tags, so a candidate that names strategies gains nothing from them) and answers with a
  reason and a real ``bool``.
* :class:`SatisfactionSurvey` (role ``customer``) asks the simulated customer, in character, for a score from
  1 to 5 with a reason, once the call is over.

Both validate what they parse (a non-boolean verdict or a score outside 1..5 is retried, then a
:class:`~cscprog.lm.invoke.GenerationFailure`), so no default value ever stands in for a missing verdict.

Example:
    ```python
    verdict = ResolutionJudge()(dialogue)
    verdict.resolved, verdict.reason
    SatisfactionSurvey()(dialogue).satisfaction   # 1..5
    ```
"""

from __future__ import annotations

from dataclasses import dataclass

import dspy

from cscprog.data import Dialogue
from cscprog.lm.invoke import invoke
from cscprog.roles import Role
from cscprog.signatures import JudgeResolution, RateCall

__all__ = ["JUDGE_ROLE", "ResolutionJudge", "ResolutionVerdict", "SatisfactionRating", "SatisfactionSurvey"]

JUDGE_ROLE = Role.ARENA_JUDGE
"""The role of the arena's judges."""

SURVEY_ROLE = Role.CUSTOMER
"""The role that answers the end-of-call survey: the customer itself."""


@dataclass(frozen=True)
class ResolutionVerdict:
    """Whether a conversation resolved the customer's matter, and why."""

    resolved: bool
    reason: str


@dataclass(frozen=True)
class SatisfactionRating:
    """The customer's end-of-call satisfaction (1..5) and its reason."""

    satisfaction: int
    reason: str


def _check_resolution(prediction: dspy.Prediction) -> str | None:
    if type(getattr(prediction, "resolved", None)) is not bool:
        return f"resolved must be a boolean, got {getattr(prediction, 'resolved', None)!r}"
    if not str(getattr(prediction, "reason", "") or "").strip():
        return "empty reason"
    return None


def _check_rating(prediction: dspy.Prediction) -> str | None:
    score = getattr(prediction, "satisfaction", None)
    if type(score) is not int or not 1 <= score <= 5:
        return f"satisfaction must be a whole number from 1 to 5, got {score!r}"
    return None


def _goal_and_scenario(dialogue: Dialogue) -> tuple[str, str]:
    if dialogue.scenario is None or not (dialogue.scenario.goal or "").strip():
        raise ValueError(f"conversation {dialogue.id!r} has no customer goal to judge against")
    return dialogue.scenario.goal or "", dialogue.scenario.text or ""


class ResolutionJudge(dspy.Module):
    """Judges from the customer's goal whether a conversation resolved the matter.

    Args:
        attempts: Attempts at a parseable verdict.

    Example:
        ```python
        ResolutionJudge()(dialogue).resolved
        ```
    """

    def __init__(self, *, attempts: int = 3) -> None:
        super().__init__()
        self.attempts = attempts
        self.judge = dspy.Predict(JudgeResolution)

    def forward(self, dialogue: Dialogue) -> ResolutionVerdict:
        """The verdict on ``dialogue`` (it must carry a scenario with a goal).

        Raises:
            ValueError: no goal, or no turns.
            GenerationFailure: no valid verdict after the retries.
        """
        goal, scenario = _goal_and_scenario(dialogue)
        if not dialogue.turns:
            raise ValueError(f"conversation {dialogue.id!r} has no turns")
        prediction = invoke(self.judge, role=JUDGE_ROLE, attempts=self.attempts, validate=_check_resolution,
                            goal=goal, scenario=scenario, transcript=dialogue.transcript(strategies=False),
                            language=dialogue.language or "en")
        return ResolutionVerdict(resolved=prediction.resolved, reason=str(prediction.reason).strip())


class SatisfactionSurvey(dspy.Module):
    """Asks the simulated customer how satisfied it is with the finished call.

    Args:
        attempts: Attempts at a score from 1 to 5.

    Example:
        ```python
        SatisfactionSurvey()(dialogue).satisfaction
        ```
    """

    def __init__(self, *, attempts: int = 3) -> None:
        super().__init__()
        self.attempts = attempts
        self.rate = dspy.Predict(RateCall)

    def forward(self, dialogue: Dialogue) -> SatisfactionRating:
        """The customer's rating of ``dialogue`` (it must carry its profile and goal).

        Raises:
            ValueError: no profile or no goal.
            GenerationFailure: no valid score after the retries.
        """
        goal, _ = _goal_and_scenario(dialogue)
        if dialogue.profile is None or not dialogue.profile.as_prompt():
            raise ValueError(f"conversation {dialogue.id!r} has no customer profile")
        prediction = invoke(self.rate, role=SURVEY_ROLE, attempts=self.attempts, validate=_check_rating,
                            profile=dialogue.profile.as_prompt(), goal=goal,
                            transcript=dialogue.transcript(strategies=False), language=dialogue.language or "en")
        return SatisfactionRating(satisfaction=prediction.satisfaction, reason=str(prediction.reason).strip())
