"""QualityJudge: five real booleans with reasons, 5/5 to keep, verdicts stored, failures visible."""

from __future__ import annotations

import json

import dspy
import pytest

from cscprog.config import config_from_dict
from cscprog.data import Dialogue
from cscprog.lm.invoke import GenerationFailure
from cscprog.lm.runtime import Runtime
from cscprog.rolecs.judge import JUDGE_CRITERIA, METADATA_KEY, QualityJudge
from cscprog.samples import load_sample
from cscprog.testing import OpenAICompatibleServer, scripted_lm


def verdicts(failing: dict[str, set[str]] | None = None, *, as_string: bool = True):
    """An answer function: every criterion passes, except those listed for a dialogue (matched by a phrase)."""
    failing = failing or {}

    def answer(field, request):
        transcript = request.inputs["transcript"]
        fails = any(field in names and phrase in transcript for phrase, names in failing.items())
        passed = ("false" if fails else "true") if as_string else (not fails)
        return json.dumps({"reason": f"{field}: {'violated' if fails else 'fine'}", "passed": passed})

    return answer


def test_a_good_dialogue_passes_with_real_bools_and_the_verdict_is_stored():
    dialogue = load_sample("annotated_en")[0]
    lm = scripted_lm(verdicts())
    with dspy.context(lm=lm):
        result = QualityJudge()(dialogue)
    assert result.passed is True
    assert set(result.scores) == set(JUDGE_CRITERIA)
    assert all(value is True for value in result.scores.values())
    assert result.reasons["natural_replies"] == "natural_replies: fine"
    record = result.dialogue.metadata[METADATA_KEY]
    assert record == {"passed": True, "criteria_passed": 5, "scores": result.scores, "reasons": result.reasons,
                      "rule_check": result.rule_check}
    assert result.rule_check["kept"] is True and result.rule_check["rule"] is None
    assert METADATA_KEY not in dialogue.metadata  # the input is not modified
    request = lm.engine.requests[0]
    assert request.inputs["transcript"] == dialogue.transcript(strategies=True)
    assert f"Supporter [{dialogue.turns[0].strategy}]:" in request.inputs["transcript"]
    assert request.inputs["language"] == "en"


def test_degenerate_text_fails_whatever_the_judge_would_say():
    # the embedded model's failure seen in the demo: every turn repeats the scenario sentence, and a judge
    # that passes everything
    from cscprog.data import Profile, Scenario, Turn

    scenario = Scenario(topic="complaints and disputes", goal="Get the fee refunded.",
                        text="You were charged an overdraft fee of 35 dollars although your salary arrived that day.")
    turns = [Turn(speaker="supporter" if i % 2 == 0 else "customer", text=f"{scenario.text} {extra}",
                  strategy="Greeting" if i == 0 else ("Others" if i % 2 == 0 else None))
             for i, extra in enumerate(["Hello.", "Yes.", "I see.", "Right.", "Goodbye."])]
    dialogue = Dialogue(id="parrot", turns=turns, language="en", scenario=scenario,
                        profile=Profile(id="p", description="You are a nurse who works night shifts."))
    lm = scripted_lm(verdicts())
    with dspy.context(lm=lm):
        result = QualityJudge()(dialogue)
    assert result.passed is False and lm.engine.calls == 0  # no LLM call
    assert result.rule_check["rule"] == "copied_context" and "turn 0" in result.rule_check["reason"]
    assert result.dialogue.metadata[METADATA_KEY]["rule_check"]["rule"] == "copied_context"
    with dspy.context(lm=lm):
        kept, rejected = QualityJudge().filter_passing([dialogue, load_sample("annotated_en")[0]])
    assert [d.id for d in rejected] == ["parrot"] and len(kept) == 1


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_the_string_false_is_false_never_truthy(adapter):
    dialogue = load_sample("annotated_en")[1]
    phrase = dialogue.turns[1].text[:20]
    lm = scripted_lm(verdicts({phrase: {"varied_expression"}}))
    with dspy.context(lm=lm, adapter=adapter):
        result = QualityJudge()(dialogue)
    assert result.scores["varied_expression"] is False
    assert type(result.scores["varied_expression"]) is bool
    assert result.passed is False
    assert result.dialogue.metadata[METADATA_KEY]["criteria_passed"] == 4
    stored = json.loads(json.dumps(result.dialogue.to_json()))["metadata"]["judge"]
    assert stored["scores"]["varied_expression"] is False


def test_json_booleans_work_too():
    lm = scripted_lm(verdicts(as_string=False))
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        assert QualityJudge()(load_sample("annotated_zh")[0]).passed is True
    assert lm.engine.requests[0].inputs["language"] == "zh"


def test_a_non_boolean_verdict_is_retried_then_a_failure():
    dialogue = load_sample("annotated_en")[0]

    def answer(field, request):
        passed = "true" if request.index >= 2 else "maybe"  # the first attempt's chat and JSON calls fail
        return json.dumps({"reason": "hmm", "passed": passed})

    lm = scripted_lm(answer)
    with dspy.context(lm=lm):
        assert QualityJudge()(dialogue).passed is True  # the retry's clean answer is used
    stubborn = scripted_lm(lambda field, request: json.dumps({"reason": "hmm", "passed": "maybe"}), cache=False)
    with dspy.context(lm=stubborn), pytest.raises(GenerationFailure) as raised:
        QualityJudge(attempts=2)(dialogue)
    assert raised.value.role == "judge" and "maybe" in (raised.value.raw_text or "")
    assert stubborn.engine.calls == 4  # two attempts, each with DSPy's JSON fallback


def test_filter_passing_splits_in_order_and_records_failures():
    dialogues = load_sample("annotated_en")[:5]
    bad_phrase = dialogues[1].turns[1].text[:25]
    unjudgeable = dialogues[3].turns[1].text[:25]

    def answer(field, request):
        if unjudgeable in request.inputs["transcript"]:
            return "not json at all"
        return verdicts({bad_phrase: {"role_consistency"}})(field, request)

    empty = Dialogue(id="empty", turns=[])
    lm = scripted_lm(answer)
    with dspy.context(lm=lm):
        kept, rejected = QualityJudge(concurrency=3, attempts=2).filter_passing([*dialogues, empty])
    assert [d.id for d in kept] == [dialogues[i].id for i in (0, 2, 4)]
    assert [d.id for d in rejected] == [dialogues[1].id, dialogues[3].id, "empty"]
    assert all(d.metadata[METADATA_KEY]["passed"] is True for d in kept)
    failed_criterion = rejected[0].metadata[METADATA_KEY]
    assert failed_criterion["scores"]["role_consistency"] is False and "failure" not in failed_criterion
    assert rejected[1].metadata[METADATA_KEY]["passed"] is False
    assert rejected[1].metadata[METADATA_KEY]["failure"]
    assert rejected[2].metadata[METADATA_KEY]["failure"] == "the dialogue has no turns"
    assert all(METADATA_KEY not in d.metadata for d in dialogues)
    with pytest.raises(ValueError, match="no turns"):
        QualityJudge()(empty)


def test_the_judge_role_uses_its_endpoint(tmp_path):
    dialogues = load_sample("annotated_en")[:3]
    with OpenAICompatibleServer(verdicts(), model_name="judge-model") as judge_server, \
            OpenAICompatibleServer(verdicts(), model_name="main-model") as main_server:
        config = config_from_dict({
            "lm": {"model": "openai/main-model", "api_base": main_server.url},
            "roles": {"judge": {"model": "openai/judge-model", "api_base": judge_server.url}},
            "cache": {"dir": str(tmp_path / "cache")},
        })
        runtime = Runtime(config)
        try:
            with runtime.activate():
                kept, rejected = QualityJudge(concurrency=2).filter_passing(dialogues)
        finally:
            runtime.close()
        posts = [r for r in judge_server.requests if r.method == "POST"]
        assert len(posts) == 3 and {r.body["model"] for r in posts} == {"judge-model"}
        assert not [r for r in main_server.requests if r.method == "POST"]
    assert len(kept) == 3 and not rejected
    assert all(type(v) is bool for d in kept for v in d.metadata[METADATA_KEY]["scores"].values())


def test_judge_exposes_one_predictor_and_refuses_bad_arguments():
    assert [name for name, _ in QualityJudge().named_predictors()] == ["judge"]
    with pytest.raises(ValueError):
        QualityJudge(attempts=0)
    with pytest.raises(ValueError):
        QualityJudge(concurrency=0)
