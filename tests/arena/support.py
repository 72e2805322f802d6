"""Shared pieces of the arena tests (``tests.arena.support``): a scripted model playing every role, candidates.

The script answers each role from the prompt it reads:

* planner: the goal of getting the card unblocked (naming the profile) and a fixed scenario;
* response generator: strategies Greeting, Identity Verification, Problem Refinement, Resolution
  Implementation, then Appreciation and Closure, by the agent's turn number; replies name their strategy;
* strategy classifier: reads the strategy back from the utterance when it names one, else Information Delivery;
* customer assistant and customer: the customer is done once the agent says the card is unblocked;
* resolution judge: resolved exactly when an agent line says the card is unblocked;
* satisfaction: 5 when resolved, else 2;
* pair judge: ``pair_mode`` "content" prefers the call whose agent unblocks the card (tie otherwise),
  "first" always says first (a position-biased judge);
* a plain chat endpoint (no output fields): "Hello, your card is unblocked now." on its second turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dspy

from cscprog.arena.candidates import AgentTurn
from cscprog.data import Profile, Turn
from cscprog.testing import AnswerRequest

FLOW = ["Greeting", "Identity Verification", "Problem Refinement", "Resolution Implementation",
        "Appreciation and Closure"]
FIXED = "your card is unblocked"
AGENT_LINE = re.compile(r"^(Supporter|客服)\b[^:]*:(.*)$", re.MULTILINE)


@dataclass
class ArenaScript:
    """The scripted model (see the module docstring)."""

    pair_mode: str = "content"
    seen: list[str] = field(default_factory=list)

    def __call__(self, field_name: str, request: AnswerRequest) -> str:
        outputs = set(request.outputs)
        inputs = request.inputs
        self.seen.append(",".join(sorted(outputs)) or "text")
        if outputs == {"goal", "scenario"}:
            who = inputs.get("profile", "")[:40]
            return {"goal": f"Get my blocked card unblocked today ({who}).",
                    "scenario": "The card was blocked after three wrong PIN entries."}[field_name]
        if "utterance" in inputs and field_name == "strategy":  # the classifier
            for name in FLOW:
                if name.lower() in inputs["utterance"].lower():
                    return name
            return "Information Delivery"
        if field_name == "strategy":  # the response generator's planner
            turns = len(AGENT_LINE.findall(inputs.get("history", "")))
            return FLOW[min(turns, len(FLOW) - 1)]
        if field_name == "reply":
            strategy = inputs.get("strategy", "")
            text = f"({strategy}) How can I help?"
            if strategy == "Resolution Implementation":
                text = f"({strategy}) Done, {FIXED}."
            return text
        if field_name == "direction":
            return "Say thanks and goodbye." if FIXED in inputs.get("history", "") else "Explain the problem."
        if field_name == "utterance":
            return "Thanks, bye." if FIXED in inputs.get("history", "") else "My card is blocked."
        if field_name == "finished":
            return "true" if FIXED in inputs.get("history", "") else "false"
        if field_name == "resolved":
            agent_text = " ".join(match[1] for match in AGENT_LINE.findall(inputs.get("transcript", "")))
            return "true" if FIXED in agent_text else "false"
        if field_name == "satisfaction":
            return "5" if FIXED in inputs.get("transcript", "") else "2"
        if field_name == "better":
            if self.pair_mode == "first":
                return "first"
            first, second = FIXED in inputs.get("first", ""), FIXED in inputs.get("second", "")
            return "first" if first and not second else "second" if second and not first else "tie"
        if field_name == "reason":
            return "Because of what the agent did."
        if field_name == "text":  # a plain chat endpoint
            agent_turns = sum(1 for role, _ in request.messages if role == "assistant")
            return "Hello, how can I help?" if agent_turns == 0 else f"Thanks for waiting, {FIXED} now."
        raise AssertionError(f"unexpected field {field_name} with outputs {sorted(outputs)}")


class NeverResolves:
    """A candidate that greets, then stalls forever without a strategy for its stalling."""

    name = "stall"

    def respond(self, turns: list[Turn], *, language: str, domain: str) -> AgentTurn:
        return AgentTurn("Please hold while I look into it.", None)

    def describe(self) -> dict:
        return {"name": self.name, "kind": "test"}


class AlwaysCloses:
    """A candidate that says goodbye at once, naming the closing strategy."""

    name = "closer"

    def respond(self, turns: list[Turn], *, language: str, domain: str) -> AgentTurn:
        return AgentTurn("Thank you for calling, goodbye.", "Appreciation and Closure")

    def describe(self) -> dict:
        return {"name": self.name, "kind": "test"}


def make_profiles(count: int = 3) -> list[Profile]:
    """``count`` English customer profiles with descriptions."""
    return [Profile(id=f"p-{index}", description=f"You are customer number {index}, a teacher.", language="en")
            for index in range(count)]


class ReplyOnly(dspy.Module):
    """A DSPy module candidate for ``module:tests.arena.support:ReplyOnly``: one Predict, a reply and no strategy."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = dspy.Predict("history, language, domain -> reply")

    def forward(self, history: str, language: str, domain: str) -> dspy.Prediction:
        """The reply to ``history``."""
        return self.answer(history=history, language=language, domain=domain)
