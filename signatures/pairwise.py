"""Signature for the pairwise judge: which of two supporter replies is better, per criterion, or a tie.

The judge sees the conversation so far, the strategy the supporter was meant to use next (with its definition),
and two candidate replies labelled ``1`` and ``2``. For each criterion it gives a one-sentence reason and a
choice: ``"1"``, ``"2"`` or ``"tie"``. The choice is a ``Literal``, so any other answer is a parse failure to
retry, never a guessed winner.

Example:
    ```python
    import dspy
    from cscprog.signatures import PAIR_CRITERIA, ComparePair

    verdict = dspy.Predict(ComparePair)(history="Customer: my card is blocked", strategy="Emotional Management: ...",
                                        reply_1="I understand how worrying that is.", reply_2="OK.", language="en")
    {name: getattr(verdict, name).choice for name in PAIR_CRITERIA}
    ```
"""

from __future__ import annotations

from typing import Literal

import dspy
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PAIR_CRITERIA", "ComparePair", "PairChoice"]


class PairChoice(BaseModel):
    """The judge's decision on one criterion.

    Attributes:
        reason: One short sentence justifying the decision.
        choice: ``"1"``, ``"2"`` or ``"tie"``.
    """

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="One short sentence comparing the two replies on this criterion")
    choice: Literal["1", "2", "tie"] = Field(description="'1' or '2' for the better reply, 'tie' when neither is")


PAIR_CRITERIA: dict[str, str] = {
    "strategy_adherence": "Which reply better carries out the expected strategy shown above the replies?",
    "problem_resolution": "Which reply does more to resolve the customer's problem (correct, concrete, moves it "
                          "forward)?",
    "empathy": "Which reply better acknowledges the customer's situation and feelings, where that is called for?",
    "naturalness": "Which reply reads more like a natural, polite, human support agent?",
}
"""The criteria of pairwise judging, name -> question, in the order the judge answers them. The names are the
output fields of :class:`ComparePair`; the same questions are asked of human raters (``cscprog human-eval``), so
judge and raters are compared criterion by criterion."""


class ComparePair(dspy.Signature):
    """You compare two candidate replies of a customer-support agent at the same point of a conversation. Read
    the conversation so far and the strategy the agent should use next, then decide for each criterion which
    reply is better, or call it a tie when neither is clearly better. Give a one-sentence reason first. Judge
    the replies only on the criterion asked; their order and length are no reason to prefer one."""

    history: str = dspy.InputField(desc="The conversation so far, one 'Speaker: text' line per turn")
    strategy: str = dspy.InputField(desc="The expected strategy of the agent's next reply, with its definition")
    reply_1: str = dspy.InputField(desc="Candidate reply 1")
    reply_2: str = dspy.InputField(desc="Candidate reply 2")
    language: str = dspy.InputField(desc="Language of the conversation: 'en' (English) or 'zh' (Chinese)")
    strategy_adherence: PairChoice = dspy.OutputField(desc=PAIR_CRITERIA["strategy_adherence"])
    problem_resolution: PairChoice = dspy.OutputField(desc=PAIR_CRITERIA["problem_resolution"])
    empathy: PairChoice = dspy.OutputField(desc=PAIR_CRITERIA["empathy"])
    naturalness: PairChoice = dspy.OutputField(desc=PAIR_CRITERIA["naturalness"])
