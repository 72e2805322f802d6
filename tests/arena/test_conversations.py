"""One conversation end to end on a scripted model: the loop, strategy labels, verdicts and scores."""

from __future__ import annotations

import dspy
import pytest

from cscprog.agents.classifier import StrategyClassifier
from cscprog.agents.responder import ResponseGenerator
from cscprog.arena.candidates import ChatCandidate, ModuleCandidate, chat_messages, import_module_attr
from cscprog.arena.customers import ArenaCustomer, CustomerPlanner
from cscprog.arena.judges import ResolutionJudge, SatisfactionSurvey
from cscprog.arena.scores import label_strategies, repetition, score_conversation
from cscprog.arena.simulate import ArenaSimulator
from cscprog.data import Turn
from cscprog.errors import ConfigError
from cscprog.framework import load_taxonomy
from cscprog.testing import scripted_lm
from tests.arena.support import FLOW, AlwaysCloses, ArenaScript, NeverResolves, make_profiles

CSC = load_taxonomy("csc")


@pytest.fixture
def lm_script():
    script = ArenaScript()
    with dspy.context(lm=scripted_lm(script)):
        yield script


def customer() -> ArenaCustomer:
    return CustomerPlanner()("rp-1", make_profiles(1)[0], "risk management and security", language="en")


def scored(candidate, turn_cap: int = 12):
    dialogue = ArenaSimulator(CSC, turn_cap=turn_cap)(candidate, customer(), trial=0)
    labelled, source, adherence, failures = label_strategies(dialogue, StrategyClassifier(CSC, concurrency=1))
    has_agent = any(turn.speaker == "supporter" for turn in labelled.turns)
    rating = SatisfactionSurvey()(labelled) if has_agent else None
    scores = score_conversation(labelled, CSC, ResolutionJudge()(labelled), rating, strategy_source=source,
                                adherence=adherence, label_failures=failures)
    return labelled, scores


def test_the_response_generator_follows_the_flow_and_resolves(lm_script):
    dialogue, scores = scored(ModuleCandidate("base", ResponseGenerator(CSC), CSC))
    assert dialogue.supporter_strategies() == FLOW
    assert dialogue.metadata["finish_reason"] == "customer_finished"  # it answered the customer's goodbye
    assert dialogue.id == "base/rp-1/t0"
    assert scores.resolved and scores.flow_ok and scores.strategy_source == "emitted"
    assert scores.strategy_adherence == 1.0  # the classifier reads back every strategy the replies name
    assert scores.turns_to_resolution == 5 and scores.satisfaction == 5
    assert scores.stage_coverage == pytest.approx(4 / 5)  # Connecting, Exploring, Resolving, Maintaining
    assert scores.stages_visited[0] == "Connecting" and scores.stages_visited[-1] == "Maintaining"


def test_a_candidate_that_never_resolves_is_never_resolved(lm_script):
    dialogue, scores = scored(NeverResolves(), turn_cap=6)
    assert dialogue.metadata["finish_reason"] == "cap" and len(dialogue.turns) == 6
    assert not scores.resolved and scores.turns_to_resolution is None and scores.satisfaction == 2
    assert scores.strategy_source == "classifier" and scores.strategy_adherence is None
    assert all(turn.metadata["strategy_source"] == "classifier" for turn in dialogue.turns[::2])
    assert scores.repetition == 1.0  # the same sentence every time


def test_a_candidate_that_closes_at_once_fails_the_flow_rules(lm_script):
    dialogue, scores = scored(AlwaysCloses())
    assert dialogue.metadata["finish_reason"] == "agent_closed" and len(dialogue.turns) == 1
    assert not scores.flow_ok
    assert {v["rule"] for v in scores.flow_violations} == {"opening", "verification"}
    assert not scores.resolved


def test_a_plain_chat_endpoint_is_labelled_by_the_classifier(lm_script):
    dialogue, scores = scored(ChatCandidate("plain", "You are a bank's support agent."))
    assert dialogue.metadata["finish_reason"] == "customer_finished"
    assert scores.strategy_source == "classifier" and scores.resolved
    assert all(turn.strategy is not None for turn in dialogue.turns if turn.speaker == "supporter")


def test_chat_messages_start_with_a_cue_and_alternate():
    turns = [Turn(speaker="supporter", text="Hello"), Turn(speaker="customer", text="Hi"),
             Turn(speaker="customer", text="My card")]
    messages = chat_messages(turns, "en")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[-1]["content"] == "Hi\nMy card"
    assert chat_messages([Turn(speaker="customer", text="Hi")], "en") == [{"role": "user", "content": "Hi"}]


def test_repetition_counts_turns_that_repeat_an_earlier_one():
    assert repetition(["How can I help?", "How can I help you today?", "Your card is unblocked."]) == 0.5
    assert repetition(["one"]) is None


def test_import_module_attr_builds_classes_and_reports_bad_paths():
    assert isinstance(import_module_attr("cscprog.agents.responder:ResponseGenerator"), ResponseGenerator)
    for bad in ("nocolon", "no_such_module_xyz:Thing", "cscprog.agents.responder:Missing"):
        with pytest.raises(ConfigError):
            import_module_attr(bad)
