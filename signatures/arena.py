"""Signatures of the arena: judging whole conversations between a support agent and a simulated customer.

* :class:`JudgeResolution` (role ``arena_judge``): did the conversation settle the customer's goal? A reason
  first, then a real ``bool``.
* :class:`RateCall` (role ``customer``): the simulated customer's own satisfaction with the call, 1 to 5.
* :class:`CompareConversations` (role ``arena_judge``): which of two conversations with the same customer was
  handled better, or a tie. The arena asks it in both orders to measure position consistency.

Example:
    ```python
    import dspy
    from cscprog.signatures import JudgeResolution

    verdict = dspy.Predict(JudgeResolution)(
        goal="Unblock the card before a trip tomorrow.", scenario="The card was blocked after a wrong PIN.",
        transcript="Supporter: Hello...\\nCustomer: ...", language="en")
    verdict.resolved, verdict.reason
    ```
"""

from __future__ import annotations

from typing import Literal

import dspy

__all__ = ["PAIR_VERDICTS", "CompareConversations", "JudgeResolution", "RateCall"]

PAIR_VERDICTS: tuple[str, ...] = ("first", "second", "tie")
"""The answers of :class:`CompareConversations`."""

_LANGUAGE_DESC = "language of the conversation: 'en' (English) or 'zh' (Simplified Chinese)"
_TRANSCRIPT_DESC = "the whole conversation, one 'Speaker: text' line per utterance"


class JudgeResolution(dspy.Signature):
    """You audit recorded calls between a bank's support agent (the supporter) and a customer.

    Decide from the customer's goal whether the call resolved the customer's matter. It is resolved when, by
    the end of the call, the customer got what the goal asks for, or a correct and final answer to it: a
    concrete fix carried out or clearly set in motion, the information they needed, or, for a request the bank
    cannot grant, a plain explanation of why together with what can be done instead. It is not resolved when
    the call ends with the goal still open: questions left unanswered, vague promises, the agent going in
    circles, or a goodbye before anything was settled. Politeness alone resolves nothing. Give a one-sentence
    reason first, then the decision.
    """

    goal: str = dspy.InputField(desc="what the customer wanted to achieve with the call")
    scenario: str = dspy.InputField(desc="the situation behind the call")
    transcript: str = dspy.InputField(desc=_TRANSCRIPT_DESC)
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    reason: str = dspy.OutputField(desc="one sentence on what the call achieved for the goal")
    resolved: bool = dspy.OutputField(desc="true when the customer's matter was resolved, else false")


class RateCall(dspy.Signature):
    """You are the customer in the profile, and your call with the bank's support agent has just ended.

    Looking back at the call as this person, say how satisfied you are with how the agent handled it, on a
    scale from 1 (very dissatisfied) to 5 (very satisfied). Weigh what you came for against what you got, how
    well the agent understood you, and how the agent treated you. Answer in character, with one short sentence
    of why, then the score.
    """

    profile: str = dspy.InputField(desc="who you are, in the second person")
    goal: str = dspy.InputField(desc="what you wanted from the call")
    transcript: str = dspy.InputField(desc=_TRANSCRIPT_DESC)
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    reason: str = dspy.OutputField(desc="one sentence, in your own voice, on why you give this score")
    satisfaction: int = dspy.OutputField(desc="your satisfaction with the call, a whole number from 1 to 5")


class CompareConversations(dspy.Signature):
    """You compare two recorded calls in which a bank's support agent served the same customer with the same goal.

    Decide which call was handled better by the agent, judging the agent only: whether the customer's matter was
    resolved, whether the agent understood the problem before acting, how it dealt with the customer's feelings,
    whether it stayed accurate and honest about what the bank can do, and whether it kept the call efficient and
    natural, without repeating itself. The customer may behave differently in the two calls because the agents
    differ; do not reward or punish the agent for the customer's manner. The order in which the calls are shown
    says nothing about their quality. Answer "tie" only when neither call is clearly better. Give a short reason
    first, then the verdict.
    """

    goal: str = dspy.InputField(desc="what the customer wanted to achieve")
    scenario: str = dspy.InputField(desc="the situation behind the call")
    first: str = dspy.InputField(desc="the first call, " + _TRANSCRIPT_DESC)
    second: str = dspy.InputField(desc="the second call, " + _TRANSCRIPT_DESC)
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    reason: str = dspy.OutputField(desc="one or two sentences comparing how the agent handled the two calls")
    better: Literal["first", "second", "tie"] = dspy.OutputField(
        desc="'first' or 'second' for the better-handled call, or 'tie'"
    )
