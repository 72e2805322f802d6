"""Role-play signatures: fields and types, the flow rules in the supporter assistant's instructions, taxonomy
adaptation, and the customer's `finished` flag parsed as a real bool from chat and JSON replies."""

from __future__ import annotations

import json
from typing import get_args

import dspy
import pytest
from cscprog.signatures import (
    ChooseStrategy,
    DescribeProfile,
    DirectCustomer,
    PlanScenario,
    WriteCustomerTurn,
    WriteSupporterTurn,
    choose_strategy_for,
    flow_rules_text,
)
from dspy.utils.exceptions import AdapterParseError

from cscprog.framework import load_taxonomy
from cscprog.testing import scripted_lm

CSC = load_taxonomy("csc")

FIELDS = {
    DescribeProfile: (["facts", "language"], ["description"]),
    PlanScenario: (["profile", "topic", "language"], ["goal", "scenario"]),
    ChooseStrategy: (["scenario", "history", "language"], ["strategy"]),
    WriteSupporterTurn: (["scenario", "strategy", "history", "language"], ["reply"]),
    DirectCustomer: (["scenario", "goal", "profile", "history", "language"], ["direction"]),
    WriteCustomerTurn: (["profile", "scenario", "history", "direction", "language"], ["utterance", "finished"]),
}


@pytest.mark.parametrize("signature", list(FIELDS), ids=lambda s: s.__name__)
def test_fields_and_instructions(signature):
    inputs, outputs = FIELDS[signature]
    assert list(signature.input_fields) == inputs and list(signature.output_fields) == outputs
    assert len(signature.instructions) > 150  # real instructions, not the field-name default


def test_types_strategies_and_a_real_bool():
    assert get_args(ChooseStrategy.output_fields["strategy"].annotation) == CSC.names
    assert get_args(WriteSupporterTurn.input_fields["strategy"].annotation) == CSC.names
    assert WriteCustomerTurn.output_fields["finished"].annotation is bool


def test_supporter_assistant_instructions_carry_the_flow_rules():
    text = ChooseStrategy.instructions
    assert text.endswith(flow_rules_text(CSC))
    for expected in (
        "starts in the Connecting stage",
        "nothing has been said yet, the choice is Greeting",
        "Identity Verification early",
        "with Appreciation and Closure",
        "more than 2 supporter turns in a row",
        "Information Delivery or Providing Suggestions",
    ):
        assert expected in text


def test_choose_strategy_follows_another_taxonomy():
    esconv = load_taxonomy("esconv")
    adapted = choose_strategy_for(esconv)
    assert get_args(adapted.output_fields["strategy"].annotation) == esconv.names
    assert flow_rules_text(esconv) in adapted.instructions
    assert "Identity Verification" not in flow_rules_text(esconv)
    assert esconv.strategies[0].definition in adapted.instructions  # the strategy guide is appended
    csc = choose_strategy_for(CSC)
    assert csc.instructions.startswith(ChooseStrategy.instructions)


@pytest.mark.parametrize(
    ("adapter", "raw", "expected"),
    [
        (None, "false", False),
        (None, "true", True),
        (None, "False", False),
        ("json", "false", False),
        ("json", '"false"', False),
        ("json", '"true"', True),
    ],
)
def test_finished_parses_to_a_bool(adapter, raw, expected):
    def answer(field, request):
        return raw if field == "finished" else "Fine, thanks, bye."

    with dspy.context(lm=scripted_lm(answer, cache=False), adapter=dspy.JSONAdapter() if adapter else None):
        prediction = dspy.Predict(WriteCustomerTurn)(
            profile="You are a nurse.", scenario="A fee dispute.", history="Supporter: Hello!", direction="Say bye.",
            language="en",
        )
    assert prediction.finished is expected


def test_finished_that_is_not_a_bool_does_not_parse():
    lm = scripted_lm(
        lambda field, request: "true|false" if field == "finished" else "Hmm.",
        cache=False,
        script=[
            "[[ ## utterance ## ]]\nHmm.\n\n[[ ## finished ## ]]\ntrue|false\n\n[[ ## completed ## ]]",
            json.dumps({"utterance": "Hmm.", "finished": "true|false"}),
        ],
    )
    with dspy.context(lm=lm), pytest.raises(AdapterParseError):
        dspy.Predict(WriteCustomerTurn)(profile="p", scenario="s", history="h", direction="d", language="en")
