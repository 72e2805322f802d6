"""Turn checks of the role-play: a new turn is judged on its own, with its strategy, whatever came before it."""

from __future__ import annotations

import dspy
import pytest

from cscprog.csconv.degenerate import check_degenerate
from cscprog.data import Dialogue, Turn
from cscprog.rolecs.checks import fresh_turn

SCENARIO = "Your new debit card has not arrived ten days after you ordered it."
GOAL = "Find out where the card is and get a replacement sent to your new address."


def test_a_label_for_a_reply_is_refused_when_the_turn_carries_its_strategy():
    validate = fresh_turn([], "supporter", "reply", [SCENARIO, GOAL], strategy="Greeting")
    assert validate(dspy.Prediction(reply="Greeting")).startswith("label_as_text")
    assert validate(dspy.Prediction(reply="Good morning, you're through to card services. How can I help?")) is None


def test_an_earlier_faulty_turn_does_not_hide_the_new_ones_fault():
    history = [Turn(speaker="supporter", text="Greeting", strategy="Greeting")]
    validate = fresh_turn(history, "customer", "utterance", [SCENARIO, GOAL])
    assert validate(dspy.Prediction(utterance=f"Well, {GOAL.lower()}")).startswith("copied_context")
    assert validate(dspy.Prediction(utterance="Supporter: hello there")).startswith("speaker_label")
    assert validate(dspy.Prediction(utterance="Hi, my new card still hasn't come.")) is None


def test_a_refusal_is_asked_for_again():
    validate = fresh_turn([], "supporter", "reply", [SCENARIO], strategy="Greeting")
    assert validate(dspy.Prediction(reply="I'm sorry, but I can't assist with that request.")).startswith("refusal")


def test_turn_mode_checks_only_that_turn():
    turns = [Turn(speaker="supporter", text="Greeting", strategy="Greeting"),
             Turn(speaker="customer", text="Hello, I'm calling about my card that never arrived.")]
    assert check_degenerate(Dialogue(id="d", turns=turns)).rule == "label_as_text"
    assert check_degenerate(Dialogue(id="d", turns=turns), turn=1).kept
    with pytest.raises(ValueError, match="turn 2"):
        check_degenerate(Dialogue(id="d", turns=turns), turn=2)
