"""Pairwise judging of two candidates' conversations with the same customer, in both orders.

LLM judges favour a position (often the first answer shown). :class:`ConversationPairJudge` therefore asks
:class:`~cscprog.signatures.CompareConversations` twice, once with candidate A's conversation first and once
with B's first, and maps both answers back to the candidates. The pair's outcome is the candidate both orders
agree on, or a tie when both say tie or when the two orders disagree (the verdict did not survive the swap):
the rule every pairwise judge shares (:func:`cscprog.evaluation.verdicts.combine_orders`). ``consistent``
records whether the two orders agreed; its rate over pairs is the position consistency.

Example:
    ```python
    judge = ConversationPairJudge()
    verdict = judge(dialogue_a, dialogue_b)
    verdict.outcome, verdict.consistent    # 'a' | 'b' | 'tie', True | False
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dspy

from cscprog.data import Dialogue
from cscprog.evaluation.verdicts import PAIR_ROLE, combine_orders
from cscprog.lm.invoke import invoke
from cscprog.signatures import PAIR_VERDICTS, CompareConversations

__all__ = ["OUTCOMES", "PAIR_ROLE", "ConversationPairJudge", "OrderVerdict", "PairVerdict"]

OUTCOMES = ("a", "b", "tie")
"""A pair's outcome, from the side of the candidates given as A and B."""


@dataclass(frozen=True)
class OrderVerdict:
    """The judge's answer for one presentation order.

    Attributes:
        order: ``ab`` (A shown first) or ``ba`` (B shown first).
        better: What the judge said: ``first``, ``second`` or ``tie``.
        winner: That answer mapped to the candidates: ``a``, ``b`` or ``tie``.
        reason: The judge's reason.
    """

    order: str
    better: str
    winner: str
    reason: str


@dataclass(frozen=True)
class PairVerdict:
    """Both orders and the pair's outcome."""

    ab: OrderVerdict
    ba: OrderVerdict

    @property
    def consistent(self) -> bool:
        """True when both orders name the same winner (or both a tie)."""
        return combine_orders(self.ab.winner, self.ba.winner)[1]

    @property
    def outcome(self) -> str:
        """``a``, ``b`` or ``tie``: the agreed winner, else a tie."""
        return combine_orders(self.ab.winner, self.ba.winner)[0]

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``pairs.jsonl``."""
        return {"ab": vars(self.ab), "ba": vars(self.ba), "consistent": self.consistent, "outcome": self.outcome}


def _check_verdict(prediction: dspy.Prediction) -> str | None:
    if getattr(prediction, "better", None) not in PAIR_VERDICTS:
        return f"better must be one of {', '.join(PAIR_VERDICTS)}, got {getattr(prediction, 'better', None)!r}"
    return None


class ConversationPairJudge(dspy.Module):
    """Compares two conversations with the same customer, in both orders (role ``pair_judge``).

    Args:
        attempts: Attempts per order at a valid verdict.

    Example:
        ```python
        ConversationPairJudge()(base_dialogue, compiled_dialogue).to_json()
        ```
    """

    def __init__(self, *, attempts: int = 3) -> None:
        super().__init__()
        self.attempts = attempts
        self.compare = dspy.Predict(CompareConversations)

    def _ask(self, order: str, first: Dialogue, second: Dialogue, goal: str, scenario: str) -> OrderVerdict:
        prediction = invoke(self.compare, role=PAIR_ROLE, attempts=self.attempts, validate=_check_verdict,
                            goal=goal, scenario=scenario, first=first.transcript(strategies=False),
                            second=second.transcript(strategies=False), language=first.language or "en")
        better = prediction.better
        first_side, second_side = ("a", "b") if order == "ab" else ("b", "a")
        winner = {"first": first_side, "second": second_side, "tie": "tie"}[better]
        return OrderVerdict(order=order, better=better, winner=winner, reason=str(prediction.reason).strip())

    def forward(self, a: Dialogue, b: Dialogue) -> PairVerdict:
        """Judge ``a`` against ``b`` in both orders.

        Raises:
            ValueError: the two conversations are not with the same customer goal, or one has no goal.
            GenerationFailure: no valid verdict for an order after the retries.
        """
        if a.scenario is None or b.scenario is None or not (a.scenario.goal or "").strip():
            raise ValueError(f"conversations {a.id!r} and {b.id!r} need the customer's goal")
        if (a.scenario.goal, a.scenario.text) != (b.scenario.goal, b.scenario.text):
            raise ValueError(f"conversations {a.id!r} and {b.id!r} are not with the same customer")
        goal, scenario = a.scenario.goal or "", a.scenario.text or ""
        return PairVerdict(ab=self._ask("ab", a, b, goal, scenario), ba=self._ask("ba", b, a, goal, scenario))
