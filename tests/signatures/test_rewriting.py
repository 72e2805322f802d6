"""The rewriting signatures: fields and types, the lenient turn model, taxonomy adaptation, parsing in both adapters."""

from __future__ import annotations

import json
import typing

import dspy
import pydantic
import pytest
from cscprog.signatures import (
    PLACEHOLDERS,
    CscStrategy,
    JudgeRewrite,
    RewriteDialogue,
    RewrittenTurn,
    ScreenCall,
    judge_signature,
    rewrite_flow_rules,
    rewrite_signature,
    turn_model,
)
from dspy.utils.exceptions import AdapterParseError

from cscprog.framework import load_taxonomy
from cscprog.testing import scripted_lm

CSC = load_taxonomy("csc")
ESCONV = load_taxonomy("esconv")


def test_screen_call_fields():
    assert list(ScreenCall.input_fields) == ["transcript"]
    assert list(ScreenCall.output_fields) == ["abusive_language", "poor_agent_attitude", "reason"]
    annotations = {name: field.annotation for name, field in ScreenCall.output_fields.items()}
    assert annotations == {"abusive_language": bool, "poor_agent_attitude": bool, "reason": str}
    assert "impatient" in ScreenCall.instructions and "disrespectful" in ScreenCall.instructions


def test_rewrite_dialogue_fields_and_instructions():
    assert list(RewriteDialogue.input_fields) == ["transcript", "language", "domain"]
    assert RewriteDialogue.output_fields["rewritten"].annotation == list[RewrittenTurn]
    text = RewriteDialogue.instructions
    for placeholder in [*PLACEHOLDERS["en"].values(), *PLACEHOLDERS["zh"].values()]:
        assert placeholder in text
    assert "alternate" in text and "exactly one strategy" in text and "end completely" in text


def test_judge_rewrite_fields():
    assert list(JudgeRewrite.output_fields) == [
        "quality", "ended_completely", "strategies_followed", "no_noise", "reason"
    ]
    assert JudgeRewrite.output_fields["quality"].annotation == typing.Literal["high", "medium", "low"]
    assert all(JudgeRewrite.output_fields[n].annotation is bool for n in ("ended_completely", "no_noise"))


def test_turn_model_types_and_schema():
    assert RewrittenTurn.model_fields["strategy"].annotation == CscStrategy | None
    schema = RewrittenTurn.model_json_schema()
    assert list(schema["properties"]) == ["speaker", "strategy", "text"]  # extra_strategies is hidden
    assert schema["description"] == "One turn of the rewritten dialogue."  # not the developer docstring
    assert schema["properties"]["strategy"]["anyOf"][0]["enum"] == list(CSC.names)


@pytest.mark.parametrize(
    ("raw", "speaker", "strategy", "extra"),
    [
        ({"speaker": "supporter", "strategy": "Greeting", "text": "Hi"}, "supporter", "Greeting", []),
        ({"speaker": "客服", "strategy": "策略1 礼貌问候", "text": "您好"}, "supporter", "Greeting", []),
        ({"speaker": "Agent", "strategy": "IV", "text": "Name?"}, "supporter", "Identity Verification", []),
        ({"speaker": "客户", "strategy": "", "text": "好的"}, "customer", None, []),
        ({"speaker": "Customer", "strategy": None, "text": "ok"}, "customer", None, []),
        ({"speaker": "customer", "text": "ok"}, "customer", None, []),
        (
            {"speaker": "supporter", "strategy": "Emotional Management+Information Delivery", "text": "Sorry."},
            "supporter", "Emotional Management", ["Information Delivery"],
        ),
        (
            {"speaker": "supporter", "strategy": ["策略5 情感管理", "ID"], "text": "抱歉"},
            "supporter", "Emotional Management", ["Information Delivery"],
        ),
    ],
)
def test_turn_model_reads_common_variants(raw, speaker, strategy, extra):
    turn = RewrittenTurn.model_validate(raw)
    assert (turn.speaker, turn.strategy, turn.extra_strategies) == (speaker, strategy, extra)
    assert "extra_strategies" not in turn.model_dump()


@pytest.mark.parametrize(
    "raw",
    [
        {"speaker": "supporter", "strategy": "Upselling", "text": "Sorry"},
        {"speaker": "narrator", "strategy": None, "text": "The call ends"},
        {"speaker": "supporter", "strategy": "Greeting"},
    ],
)
def test_turn_model_rejects_unknown_labels_speakers_and_missing_text(raw):
    with pytest.raises(pydantic.ValidationError):
        RewrittenTurn.model_validate(raw)


def test_turn_model_for_another_taxonomy():
    model = turn_model(ESCONV)
    assert model is not RewrittenTurn and issubclass(model, RewrittenTurn)
    assert model.model_validate({"speaker": "supporter", "strategy": "QU", "text": "How?"}).strategy == "Question"
    with pytest.raises(pydantic.ValidationError):
        model.model_validate({"speaker": "supporter", "strategy": "Greeting", "text": "Hi"})
    assert turn_model(CSC) is RewrittenTurn
    assert RewrittenTurn.model_validate({"speaker": "s", "strategy": "Greeting", "text": "Hi"}).strategy == "Greeting"


def test_flow_rules_come_from_the_taxonomy():
    text = rewrite_flow_rules(CSC)
    assert "first supporter turn uses Greeting" in text
    assert "Identity Verification comes within the first 3 supporter turns after Greeting" in text
    assert "last supporter turn uses Appreciation and Closure" in text and "more than 2" in text
    assert rewrite_flow_rules(ESCONV) == ""


def test_rewrite_signature_adapts_labels_guide_and_flow():
    csc = rewrite_signature(CSC)
    assert csc.output_fields["rewritten"].annotation == list[RewrittenTurn]
    assert "Identity Verification (IV" in csc.instructions and rewrite_flow_rules(CSC) in csc.instructions
    esconv = rewrite_signature(ESCONV)
    (item,) = typing.get_args(esconv.output_fields["rewritten"].annotation)
    assert item.taxonomy is ESCONV and "Conversation-flow rules" not in esconv.instructions
    assert "Reflection of feelings" in esconv.instructions
    assert "Affirmation and Reassurance" in judge_signature(ESCONV).instructions


TURNS = [
    {"speaker": "supporter", "strategy": "Greeting", "text": "Hello, [Company Name], how can I help?"},
    {"speaker": "customer", "strategy": None, "text": "My card is blocked."},
    {"speaker": "supporter", "strategy": "策略2 确认身份", "text": "May I have your [Card Number]?"},
]


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_rewrite_parses_json_turns_in_both_adapters(adapter):
    def answer(field, request):
        return json.dumps(TURNS, ensure_ascii=False) if field == "rewritten" else "unused"

    lm = scripted_lm(answer)
    with dspy.context(lm=lm, adapter=adapter):
        out = dspy.Predict(rewrite_signature(CSC))(transcript="Customer: hi", language="en", domain="other")
    assert [(t.speaker, t.strategy) for t in out.rewritten] == [
        ("supporter", "Greeting"), ("customer", None), ("supporter", "Identity Verification")
    ]
    request = lm.engine.requests[0]
    assert request.inputs == {"transcript": "Customer: hi", "language": "en", "domain": "other"}
    assert "One turn of the rewritten dialogue." in request.system


def test_an_unknown_label_is_a_parse_failure():
    bad = [{"speaker": "supporter", "strategy": "Upselling", "text": "Sorry"}]
    lm = scripted_lm(lambda field, request: json.dumps(bad))
    with dspy.context(lm=lm), pytest.raises(AdapterParseError):
        dspy.Predict(rewrite_signature(CSC))(transcript="x", language="en", domain="other")


def test_screen_and_judge_give_real_booleans():
    answers = {"abusive_language": "false", "poor_agent_attitude": "true", "reason": "curt", "quality": "medium",
               "ended_completely": "false", "strategies_followed": "true", "no_noise": "false"}
    lm = scripted_lm(lambda field, request: answers[field])
    with dspy.context(lm=lm):
        screened = dspy.Predict(ScreenCall)(transcript="Supporter: what.")
        judged = dspy.Predict(judge_signature(CSC))(transcript="Supporter [Greeting]: hi")
    assert screened.abusive_language is False and screened.poor_agent_attitude is True
    assert judged.quality == "medium" and judged.ended_completely is False and judged.no_noise is False
