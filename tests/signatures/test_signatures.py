"""The classification, response and judging signatures: fields, types, taxonomy adaptation, real booleans."""

from __future__ import annotations

import json
import typing

import dspy
import pydantic
import pytest
from cscprog.signatures import (
    JUDGE_CRITERIA,
    ClassifyStrategy,
    ClassifyStrategyWithRationale,
    CriterionVerdict,
    JudgeDialogue,
    PredictStrategy,
    WriteReply,
    for_taxonomy,
)
from dspy.utils.exceptions import AdapterParseError

from cscprog.data import next_turn_examples, turn_examples
from cscprog.framework import load_taxonomy
from cscprog.samples import load_sample
from cscprog.testing import scripted_lm

CSC = load_taxonomy("csc")
ESCONV = load_taxonomy("esconv")


def _labels(annotation) -> tuple[str, ...]:
    assert typing.get_origin(annotation) is typing.Literal
    return typing.get_args(annotation)


def test_classification_fields_match_the_turn_examples():
    example = turn_examples(load_sample("annotated_en"))[0]
    for signature in (ClassifyStrategy, ClassifyStrategyWithRationale):
        assert list(signature.input_fields) == ["context", "utterance", "language"]
        assert set(signature.input_fields) == set(example.inputs().keys())
        assert _labels(signature.output_fields["strategy"].annotation) == CSC.names
    assert list(ClassifyStrategy.output_fields) == ["strategy"]
    assert list(ClassifyStrategyWithRationale.output_fields) == ["rationale", "strategy"]  # rationale first


def test_response_signatures_are_two_steps_on_the_next_turn_inputs():
    example = next_turn_examples(load_sample("annotated_en"))[0]
    assert set(PredictStrategy.input_fields) == set(example.inputs().keys()) == {"history", "language", "domain"}
    assert list(PredictStrategy.output_fields) == ["strategy"]
    assert _labels(PredictStrategy.output_fields["strategy"].annotation) == CSC.names
    assert list(WriteReply.input_fields) == ["history", "strategy", "language"]
    assert _labels(WriteReply.input_fields["strategy"].annotation) == CSC.names
    assert list(WriteReply.output_fields) == ["reply"]


def test_judge_has_the_five_criteria_as_verdicts():
    assert tuple(JudgeDialogue.output_fields) == JUDGE_CRITERIA
    assert len(JUDGE_CRITERIA) == 5
    assert all(field.annotation is CriterionVerdict for field in JudgeDialogue.output_fields.values())
    assert list(JudgeDialogue.input_fields) == ["transcript", "language"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(False, False), (True, True), ("false", False), ("False", False), ("true", True), ("no", False), (0, False)],
)
def test_criterion_verdict_is_a_real_bool(raw, expected):
    verdict = CriterionVerdict.model_validate({"reason": "r", "passed": raw})
    assert verdict.passed is expected


@pytest.mark.parametrize("raw", ["maybe", "", "yes and no", None, [True]])
def test_criterion_verdict_refuses_non_booleans(raw):
    with pytest.raises(pydantic.ValidationError):
        CriterionVerdict.model_validate({"reason": "r", "passed": raw})


def test_esconv_taxonomy_retypes_every_strategy_field_and_appends_its_guide():
    for signature, kind in (
        (ClassifyStrategy, "output"),
        (ClassifyStrategyWithRationale, "output"),
        (PredictStrategy, "output"),
        (WriteReply, "input"),
    ):
        adapted = for_taxonomy(signature, ESCONV)
        fields = adapted.output_fields if kind == "output" else adapted.input_fields
        assert _labels(fields["strategy"].annotation) == ESCONV.names
        assert "Reflection of feelings" in adapted.instructions
        assert adapted.instructions.startswith(signature.instructions.strip()[:40])
    judge = for_taxonomy(JudgeDialogue, ESCONV)
    assert tuple(judge.output_fields) == JUDGE_CRITERIA and "Self-disclosure" in judge.instructions


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_false_string_from_the_model_becomes_false(adapter):
    def answer(field, request):
        passed = "false" if field in ("natural_replies", "role_consistency") else "true"
        return json.dumps({"reason": f"{field} checked", "passed": passed})

    lm = scripted_lm(answer)
    with dspy.context(lm=lm, adapter=adapter):
        verdict = dspy.Predict(JudgeDialogue)(transcript="Supporter [Greeting]: Hello!", language="en")
    scores = {name: getattr(verdict, name).passed for name in JUDGE_CRITERIA}
    assert all(type(value) is bool for value in scores.values())
    assert scores["natural_replies"] is False and scores["role_consistency"] is False
    assert scores["strategy_adherence"] is True
    assert lm.engine.calls == 1


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_signatures_render_and_parse_in_both_adapters(adapter):
    def answer(field, request):
        return {"strategy": "Question", "rationale": "asks", "reply": "How are you feeling?"}[field]

    lm = scripted_lm(answer)
    with dspy.context(lm=lm, adapter=adapter):
        classified = dspy.Predict(for_taxonomy(ClassifyStrategyWithRationale, ESCONV))(
            context="Seeker: I feel low.", utterance="What happened?", language="en"
        )
        reply = dspy.Predict(for_taxonomy(WriteReply, ESCONV))(history="Seeker: hi", strategy="Question", language="en")
    assert classified.strategy == "Question" and classified.rationale == "asks"
    assert reply.reply == "How are you feeling?"
    first = lm.engine.requests[0]
    assert first.outputs == ("rationale", "strategy")
    assert "Literal['Question'" in first.output_types["strategy"] or first.format == "json"
    assert first.inputs["utterance"] == "What happened?"


def test_csc_literal_rejects_an_unknown_label():
    lm = scripted_lm(lambda field, request: "Teleportation")
    with dspy.context(lm=lm), pytest.raises(AdapterParseError):
        dspy.Predict(ClassifyStrategy)(context="", utterance="Sorry!", language="en")
