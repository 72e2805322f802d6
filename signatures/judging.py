"""Signature for the quality judge of a (synthesized) support dialogue: five yes/no criteria with reasons.

Each criterion is a :class:`CriterionVerdict`: a short ``reason`` and ``passed``, a real ``bool``. Parsing goes
through pydantic, so a model that answers ``"false"`` (the string) gets ``False``, and an answer that is no
boolean at all (``"maybe"``) is a parse failure to retry, never a truthy string.

Example:
    ```python
    import dspy
    from cscprog.signatures import JUDGE_CRITERIA, JudgeDialogue

    verdict = dspy.Predict(JudgeDialogue)(transcript="Supporter [Greeting]: Hello!...", language="en")
    scores = {name: getattr(verdict, name).passed for name in JUDGE_CRITERIA}
    ```
"""

from __future__ import annotations

import dspy
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["JUDGE_CRITERIA", "CriterionVerdict", "JudgeDialogue"]


class CriterionVerdict(BaseModel):
    """The judge's decision on one criterion.

    Attributes:
        reason: One short sentence justifying the decision.
        passed: True when the dialogue meets the criterion.
    """

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="One short sentence justifying the decision")
    passed: bool = Field(description="true when the dialogue meets the criterion, false otherwise")


JUDGE_CRITERIA: tuple[str, ...] = (
    "strategy_adherence",
    "unreasonable_requests",
    "natural_replies",
    "varied_expression",
    "role_consistency",
)
"""The five criteria, in the order the judge answers them (output field names of :class:`JudgeDialogue`)."""


class JudgeDialogue(dspy.Signature):
    """You review customer-support conversations between an agent (the supporter) and a customer, for use as
    training data. Each supporter line is tagged in brackets with the support strategy it was meant to carry
    out. Decide for each criterion below whether the whole conversation meets it, giving a one-sentence reason
    first. Be strict: a single clear violation fails the criterion."""

    transcript: str = dspy.InputField(
        desc="The whole conversation, one 'Speaker [strategy]: text' line per turn"
    )
    language: str = dspy.InputField(desc="Language of the conversation: 'en' (English) or 'zh' (Chinese)")
    strategy_adherence: CriterionVerdict = dspy.OutputField(
        desc="Does every supporter line actually do what its strategy tag says?"
    )
    unreasonable_requests: CriterionVerdict = dspy.OutputField(
        desc="When the customer asks for something unreasonable, impossible or against policy, does the supporter "
        "notice and say so instead of simply agreeing? Passes when no such request occurs."
    )
    natural_replies: CriterionVerdict = dspy.OutputField(
        desc="Do both sides sound like real people in a real support call (fluent, coherent, fitting replies)?"
    )
    varied_expression: CriterionVerdict = dspy.OutputField(
        desc="Does the wording vary, without stock phrases or sentences repeated across turns?"
    )
    role_consistency: CriterionVerdict = dspy.OutputField(
        desc="Does each side keep its role throughout (the customer never acts as the agent or reveals being "
        "simulated; the agent never acts as the customer)?"
    )
