"""One arena conversation: a candidate agent in front of a planned, simulated customer.

The loop follows RoleCS with the candidate in the supporter's seat. The agent speaks first; each round is

1. the candidate's turn (its strategy, when it names one, is kept on the turn),
2. the customer assistant gives the customer one next step (role ``customer_assistant``),
3. the customer says one sentence and whether it is done (role ``customer``, a real ``bool``).

The conversation ends when the agent closes (it names the taxonomy's closing strategy), right after the agent's
answer to a customer who said it was done, when the agent fails (no usable reply after its retries: the
conversation is kept, ends with ``agent_failed`` and counts against the candidate), or at the turn cap
(utterances of both sides). A customer-side call that fails after its retries raises: that is the simulator's
failure, not the candidate's, and the run records it and re-runs the conversation on resume.

Trials: trial ``t`` runs inside :func:`cscprog.context.trial_context`, so every call of the conversation is a
fresh sample (its own rollout, its own cache entry) while trial 0 keeps the plain cache keys. What the customer
wants never changes between trials or candidates: it comes from the planned :class:`ArenaCustomer`.

Example:
    ```python
    simulator = ArenaSimulator(turn_cap=12)
    dialogue = simulator(candidate, customer, trial=0)
    dialogue.metadata["finish_reason"], len(dialogue.turns)
    ```
"""

from __future__ import annotations

import logging

import dspy

from cscprog.arena.candidates import Candidate
from cscprog.arena.customers import ArenaCustomer
from cscprog.context import trial_context
from cscprog.data import CUSTOMER, SUPPORTER, Dialogue, Scenario, Turn, render_transcript
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.rolecs.checks import check_customer_turn, require_fields
from cscprog.roles import Role
from cscprog.signatures import DirectCustomer, WriteCustomerTurn

__all__ = ["FINISH_REASONS", "ArenaSimulator", "conversation_id"]

logger = logging.getLogger(__name__)

FINISH_REASONS = ("agent_closed", "customer_finished", "agent_failed", "cap")
"""Why an arena conversation ended."""

STRATEGY_SOURCE_KEY = "strategy_source"
"""Supporter-turn metadata key: ``emitted`` (the candidate named it) or ``classifier``."""


def conversation_id(candidate: str, customer_id: str, trial: int) -> str:
    """The id of one conversation: ``<candidate>/<customer id>/t<trial>``.

    Example:
        ```python
        conversation_id("base", "rp-0a1b2c3d4e5f", 0)   # 'base/rp-0a1b2c3d4e5f/t0'
        ```
    """
    return f"{candidate}/{customer_id}/t{trial}"


class ArenaSimulator(dspy.Module):
    """Runs conversations between candidates and planned customers.

    Args:
        taxonomy: The strategy taxonomy (its closing strategy ends a conversation).
        turn_cap: The most utterances of a conversation, both sides counted (at least 2).
        attempts: Attempts per customer-side call at a usable output.

    Attributes:
        customer_assistant: scenario + goal + profile + history -> the customer's next step.
        customer: profile + scenario + history + direction -> utterance + finished.

    Example:
        ```python
        dialogue = ArenaSimulator(turn_cap=8)(candidate, customer, trial=1)
        ```
    """

    def __init__(self, taxonomy: Taxonomy | None = None, *, turn_cap: int = 12, attempts: int = 3) -> None:
        super().__init__()
        if turn_cap < 2:
            raise ValueError(f"turn_cap must be >= 2, got {turn_cap}")
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
        self.turn_cap = turn_cap
        self.attempts = attempts
        self.customer_assistant = dspy.Predict(DirectCustomer)
        self.customer = dspy.Predict(WriteCustomerTurn)

    def forward(self, candidate: Candidate, customer: ArenaCustomer, *, trial: int = 0) -> Dialogue:
        """One conversation of ``candidate`` with ``customer`` in trial ``trial``.

        Returns:
            The dialogue (id :func:`conversation_id`), its profile and scenario, supporter turns with the
            candidate's strategies (``metadata["strategy_source"] = "emitted"``) where it named one, customer turns
            with their direction and ``finished`` flag, and ``metadata`` with ``candidate``, ``customer_id``,
            ``topic``, ``trial``, ``finish_reason``, ``turn_cap`` and ``agent_failure`` (or None).

        Raises:
            GenerationFailure: a customer-side call failed after its retries.
            ValueError: a negative trial.
        """
        if trial < 0:
            raise ValueError(f"trial must be >= 0, got {trial}")
        with trial_context(trial):
            turns, reason, failure = self._talk(candidate, customer)
        return Dialogue(
            id=conversation_id(candidate.name, customer.id, trial),
            turns=turns,
            domain=customer.domain,
            language=customer.language,
            profile=customer.profile,
            scenario=Scenario(topic=customer.topic, goal=customer.goal, text=customer.scenario),
            metadata={"source": "arena", "candidate": candidate.name, "customer_id": customer.id,
                      "topic": customer.topic, "trial": trial, "finish_reason": reason, "turn_cap": self.turn_cap,
                      "agent_failure": failure},
        )

    def _talk(self, candidate: Candidate, customer: ArenaCustomer) -> tuple[list[Turn], str, str | None]:
        language = customer.language
        profile_text = customer.profile.as_prompt()
        closing = self.taxonomy.flow.closing
        turns: list[Turn] = []
        customer_finished = False
        while True:
            try:
                said = candidate.respond(list(turns), language=language, domain=customer.domain)
            except GenerationFailure as error:
                logger.warning("%s with %s: the agent failed: %s", candidate.name, customer.id, error.reason)
                return turns, "agent_failed", error.reason
            metadata = {STRATEGY_SOURCE_KEY: "emitted"} if said.strategy is not None else {}
            turns.append(Turn(speaker=SUPPORTER, text=said.text, strategy=said.strategy, metadata=metadata))
            if customer_finished:
                return turns, "customer_finished", None
            if closing is not None and said.strategy == closing:
                return turns, "agent_closed", None
            if len(turns) >= self.turn_cap:
                return turns, "cap", None
            history = render_transcript(turns, strategies=False, language=language)
            direction = invoke(
                self.customer_assistant, role=Role.CUSTOMER_ASSISTANT, attempts=self.attempts,
                validate=require_fields("direction"), scenario=customer.scenario, goal=customer.goal,
                profile=profile_text, history=history, language=language,
            ).direction.strip()
            reply = invoke(
                self.customer, role=Role.CUSTOMER, attempts=self.attempts, validate=check_customer_turn,
                profile=profile_text, scenario=customer.scenario, history=history, direction=direction,
                language=language,
            )
            customer_finished = reply.finished
            turns.append(Turn(speaker=CUSTOMER, text=reply.utterance.strip(),
                              metadata={"direction": direction, "finished": customer_finished}))
            if len(turns) >= self.turn_cap:
                return turns, "cap", None
