"""The Rewriter: every filter decision path with scripted engines, per-role backends over loopback HTTP, real SGD
banking dialogues, and one run on the embedded model."""

from __future__ import annotations

import json
import re
from typing import Any

import dspy
import pytest

from cscprog.config import config_from_dict
from cscprog.csconv.anchored import ORIGINS
from cscprog.csconv.prefilter import PrefilterRules, prefilter
from cscprog.csconv.rewriter import RewriteDecision, Rewriter, decision_counts
from cscprog.data import Dialogue, read_dialogues
from cscprog.errors import ConfigError
from cscprog.framework import check_flow, load_taxonomy
from cscprog.lm.runtime import Runtime
from cscprog.samples import load_sample
from cscprog.testing import AnswerRequest, OpenAICompatibleServer, scripted_lm

CSC = load_taxonomy("csc")
RAW = {dialogue.id: dialogue for dialogue in load_sample("raw")}
SOURCE = RAW["raw-001"]  # English card-decline call that passes the rule pre-filter

GOOD = [
    {"speaker": "supporter", "strategy": "Greeting", "text": "Thank you for calling [Company Name], how can I help?"},
    {"speaker": "customer", "strategy": None, "text": "My card just got declined at the petrol station."},
    {"speaker": "supporter", "strategy": "Identity Verification", "text": "May I have your name and card number?"},
    {"speaker": "customer", "strategy": None, "text": "It's [Name], card [Card Number]."},
    {"speaker": "supporter", "strategy": "Problem Refinement", "text": "Did you buy headphones online this morning?"},
    {"speaker": "customer", "strategy": None, "text": "Yes, that was me."},
    {"speaker": "supporter", "strategy": "Resolution Implementation", "text": "I've removed the fraud block now."},
    {"speaker": "customer", "strategy": None, "text": "Great, thanks (^_^)"},
    {"speaker": "supporter", "strategy": "Appreciation and Closure", "text": "Thanks for calling, goodbye! "
                                                                            "(system: call ended)"},
]
BOOLS = ("ended_completely", "strategies_followed", "no_noise")


def variant(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """GOOD with turns replaced (``t4={...}``), or removed (``t4=None``)."""
    turns = [dict(turn) for turn in GOOD]
    for key, value in sorted(changes.items(), reverse=True):
        index = int(key[1:])
        if value is None:
            del turns[index]
        else:
            turns[index] = {**turns[index], **value}
    return turns


def answers(rewritten: Any = GOOD, *, abusive=False, poor=False, quality="high", reason="checked", criteria=None):
    """A scripted answer function for the three predictors of the Rewriter."""

    def answer(field: str, request: AnswerRequest) -> str:
        if field == "rewritten":
            value = rewritten(request) if callable(rewritten) else rewritten
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if field == "abusive_language":
            return str(abusive)
        if field == "poor_agent_attitude":
            return str(poor)
        if field == "quality":
            return quality
        if field in BOOLS:
            return str(quality == "high" if criteria is None else criteria.get(field, True))
        if field == "reason":
            return reason
        raise AssertionError(f"unexpected field {field}")

    return answer


def kind(request: AnswerRequest) -> str:
    outputs = set(request.outputs)
    return "screen" if "abusive_language" in outputs else "judge" if "quality" in outputs else "rewrite"


def run(rewriter: Rewriter, source: Dialogue = SOURCE, **kwargs: Any) -> tuple[dspy.Prediction, list[AnswerRequest]]:
    lm = scripted_lm(answers(**kwargs))
    with dspy.context(lm=lm):
        result = rewriter(dialogue=source)
    return result, lm.engine.requests


# -- kept -----------------------------------------------------------------------------------------------------------


def test_a_good_rewrite_is_kept_with_its_records():
    result, requests = run(Rewriter())
    assert [kind(r) for r in requests] == ["screen", "rewrite", "judge"]
    decision = result.decision
    assert decision == RewriteDecision(True, "judge", None, "passed every filter")
    kept = result.dialogue
    assert (kept.id, kept.domain, kept.language) == ("raw-001", "account_transactions", "en")
    assert kept.is_alternating() and kept.is_annotated and len(kept.turns) == 9
    assert check_flow(kept.supporter_strategies(), CSC) == []
    assert kept.turns[-1].text == "Thanks for calling, goodbye!"  # the system note is stripped
    assert kept.turns[7].text == "Great, thanks (^_^)"  # the emoticon is not
    meta = kept.metadata
    assert meta["source_id"] == "raw-001" and meta["rewrite"]["kept"] is True
    assert meta["rewrite"]["details"]["notes"] == [{"turn": 8, "note": "system: call ended", "rule": "note_keyword"}]
    assert meta["judge"] == {"quality": "high", "ended_completely": True, "strategies_followed": True,
                             "no_noise": True, "reason": "checked"}
    assert meta["screen"] == {"abusive_language": False, "poor_agent_attitude": False, "reason": "checked"}
    assert result.candidate == kept.model_copy(update={"metadata": SOURCE.metadata})


def test_the_llm_stages_see_the_merged_raw_transcript_and_the_labelled_rewrite():
    _, requests = run(Rewriter())
    screen, rewrite, judge = requests
    raw_transcript = SOURCE.merged().transcript(strategies=False)
    assert screen.inputs == {"transcript": raw_transcript}
    assert rewrite.inputs == {"transcript": raw_transcript, "language": "en", "domain": "account_transactions"}
    assert judge.inputs["transcript"].splitlines()[0] == (
        "Supporter [Greeting]: Thank you for calling [Company Name], how can I help?"
    )
    assert "Appreciation and Closure (AC" in rewrite.system and "Conversation-flow rules" in rewrite.system
    assert "Appreciation and Closure (AC" in judge.system


def test_screen_and_judge_can_be_switched_off():
    result, requests = run(Rewriter(use_screen=False, use_judge=False))
    assert [kind(r) for r in requests] == ["rewrite"]
    assert result.decision.kept and result.decision.stage == "postfilter"
    assert result.dialogue.metadata["judge"] is None and result.dialogue.metadata["screen"] is None


# -- dropped ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "rule"), [("raw-004", "min_pairs"), ("raw-011", "customer_share")])
def test_prefilter_drops_before_any_llm_call(name, rule):
    result, requests = run(Rewriter(), RAW[name])
    assert requests == []
    assert (result.dialogue, result.candidate) == (None, None)
    assert (result.decision.kept, result.decision.stage, result.decision.rule) == (False, "prefilter", rule)
    assert result.decision.details["pairs"] >= 2


def test_prefilter_thresholds_are_passed_through():
    result, requests = run(Rewriter(rules=PrefilterRules(min_pairs=2)), RAW["raw-004"])
    assert result.decision.kept and len(requests) == 3


@pytest.mark.parametrize(("flags", "rule"), [({"abusive": True}, "abusive_language"),
                                              ({"poor": True}, "poor_agent_attitude")])
def test_screen_drops_abuse_and_poor_attitude(flags, rule):
    result, requests = run(Rewriter(), reason="the agent says 'whatever'", **flags)
    assert [kind(r) for r in requests] == ["screen"]
    assert (result.decision.stage, result.decision.rule) == ("screen", rule)
    assert result.decision.reason.endswith("the agent says 'whatever'")
    assert result.screen[rule] is True and result.dialogue is None


def test_an_unparsable_rewrite_is_a_recorded_failure():
    result, requests = run(Rewriter(), rewritten="Sure! Here is the dialogue you asked for, nicely rewritten.")
    decision = result.decision
    assert (decision.kept, decision.stage, decision.rule) == (False, "rewrite", "generation_failure")
    assert decision.reason.startswith("rewriter: no usable output after 3 attempt(s)")
    assert decision.details["attempts"] == 3 and "nicely rewritten" in decision.details["raw_text"]
    # each attempt costs a ChatAdapter call and DSPy's JSONAdapter fallback; retries keep the role's temperature
    assert [(kind(r), r.temperature, r.format) for r in requests] == [
        ("screen", None, "chat"),
        *[("rewrite", None, fmt) for _ in range(3) for fmt in ("chat", "json")],
    ]


@pytest.mark.parametrize(
    ("rewritten", "reason"),
    [
        (variant(t2={"strategy": None}), "supporter turn 2 has no strategy"),
        (variant(t3={"strategy": "Greeting"}), "customer turn 3 carries a strategy (Greeting)"),
        (variant(t4={"text": "  "}), "turn 4 has no text"),
        ([], "the rewrite has no turns"),
        (variant(t4={"strategy": "Upselling"}), "did not parse"),
    ],
)
def test_invalid_rewrites_are_retried_then_recorded(rewritten, reason):
    result, requests = run(Rewriter(attempts=2), rewritten=rewritten)
    assert (result.decision.stage, result.decision.rule) == ("rewrite", "generation_failure")
    assert "after 2 attempt(s)" in result.decision.reason and reason in result.decision.reason
    assert "judge" not in [kind(r) for r in requests]


def test_a_rewrite_fixed_on_retry_is_kept():
    rewrites: list[int] = []

    def first_bad(request: AnswerRequest):
        rewrites.append(request.index)
        return GOOD if len(rewrites) > 1 else variant(t3={"strategy": "Greeting"})

    result, requests = run(Rewriter(), rewritten=first_bad)
    assert result.decision.kept
    assert [kind(r) for r in requests] == ["screen", "rewrite", "rewrite", "judge"]


@pytest.mark.parametrize(
    ("rewritten", "rule", "reason"),
    [
        (variant(t3=None), "alternation", "turns 2 and 3 are both by the supporter"),
        (variant(t6={"strategy": "Emotional Management+Resolution Implementation"}), "multi_label",
         "Emotional Management + Resolution Implementation"),
        (variant(t8={"strategy": "Feedback Request"}), "required_strategies", "Appreciation and Closure"),
        (variant(t0=None, t1=None), "required_strategies", "missing required strategy: Greeting"),
    ],
)
def test_rule_postfilters_drop_without_a_judge_call(rewritten, rule, reason):
    result, requests = run(Rewriter(), rewritten=rewritten)
    assert [kind(r) for r in requests] == ["screen", "rewrite"]
    assert (result.decision.kept, result.decision.stage, result.decision.rule) == (False, "postfilter", rule)
    assert reason in result.decision.reason
    assert result.dialogue is None and result.candidate is not None and result.candidate.id == "raw-001"


@pytest.mark.parametrize("quality", ["medium", "low"])
def test_the_judge_keeps_high_quality_only(quality):
    result, requests = run(Rewriter(), quality=quality, reason="the call is cut off")
    assert [kind(r) for r in requests] == ["screen", "rewrite", "judge"]
    assert (result.decision.stage, result.decision.rule) == ("judge", "quality")
    assert result.decision.reason == f"judged {quality!r}: the call is cut off"
    assert result.judge["quality"] == quality and result.judge["ended_completely"] is False
    assert result.dialogue is None and result.candidate.turns[-1].text == "Thanks for calling, goodbye!"


def test_a_high_verdict_that_fails_its_own_criteria_is_dropped():
    # seen on a real call: quality "high" with ended_completely and no_noise false
    result, _ = run(Rewriter(), quality="high", reason="mixed", criteria={"ended_completely": False, "no_noise": False})
    assert not result.decision.kept and (result.decision.stage, result.decision.rule) == ("judge", "criteria")
    assert result.decision.reason == "judged 'high' but not ended_completely, no_noise: mixed"


def test_an_unparsable_verdict_is_a_recorded_judge_failure():
    result, _ = run(Rewriter(attempts=1), quality="excellent")
    assert (result.decision.stage, result.decision.rule) == ("judge", "generation_failure")
    assert result.decision.reason.startswith("judge: no usable output after 1 attempt(s)")


# -- language and taxonomy -------------------------------------------------------------------------------------------


def test_language_follows_the_input_or_the_option():
    zh_turns = [
        {"speaker": "客服", "strategy": "策略1 礼貌问候", "text": "您好，这里是[公司名称]客服。"},
        {"speaker": "客户", "strategy": "", "text": "我的工资还没到账。"},
        {"speaker": "客服", "strategy": "策略2 确认身份", "text": "请提供您的[姓名]和[卡号]。"},
        {"speaker": "客户", "strategy": "", "text": "[姓名]，[卡号]。"},
        {"speaker": "客服", "strategy": "策略11 感谢与告别",
         "text": "已为您查到入账，感谢来电，再见（系统提示：通话已结束）"},
    ]
    result, requests = run(Rewriter(), RAW["raw-009"], rewritten=zh_turns)
    assert requests[1].inputs["language"] == "zh" and result.dialogue.language == "zh"
    assert result.dialogue.turns[-1].text == "已为您查到入账，感谢来电，再见"
    assert result.dialogue.turns[0].strategy == "Greeting"
    result, requests = run(Rewriter(language="zh"), SOURCE)
    assert requests[1].inputs["language"] == "zh" and result.dialogue.language == "zh"
    with pytest.raises(ValueError, match="language"):
        Rewriter(language="fr")


def test_another_taxonomy_changes_labels_and_required_strategies():
    esconv = load_taxonomy("esconv")
    turns = [
        {"speaker": "supporter", "strategy": "Question", "text": "What happened with your card?"},
        {"speaker": "customer", "strategy": None, "text": "It was declined and I felt embarrassed."},
        {"speaker": "supporter", "strategy": "Reflection of feelings", "text": "That sounds stressful."},
        {"speaker": "customer", "strategy": None, "text": "It was."},
    ]
    result, requests = run(Rewriter(esconv), rewritten=turns)
    assert result.decision.kept and result.dialogue.supporter_strategies() == ["Question", "Reflection of feelings"]
    assert "Reflection of feelings" in requests[1].system and "Greeting" not in requests[1].system
    result, _ = run(Rewriter(esconv), RAW["raw-002"], rewritten=GOOD)  # CSC labels are unknown to ESConv
    assert result.decision.rule == "generation_failure"


def test_decision_counts_and_predictors():
    decisions = [RewriteDecision(True, "judge"), RewriteDecision(False, "prefilter", "min_pairs"),
                 RewriteDecision(False, "prefilter", "min_pairs"), RewriteDecision(False, "judge", "quality")]
    assert decision_counts(decisions) == {"judge:quality": 1, "kept": 1, "prefilter:min_pairs": 2}
    assert [name for name, _ in Rewriter().named_predictors()] == [
        "screen", "rewrite", "rewrite_exchanges", "rewrite_steps.supporter_turn", "rewrite_steps.write_turn",
        "rewrite_anchored.rewrite_line", "rewrite_anchored.rewrite_fixed", "rewrite_anchored.write_missing",
        "judge_rewrite",
    ]


# -- per-role backends over HTTP ---------------------------------------------------------------------------------


def _kind_of_body(body: dict[str, Any]) -> str:
    system = " ".join(str(m.get("content")) for m in body["messages"] if m.get("role") == "system")
    return "screen" if "`abusive_language`" in system else "judge" if "`quality`" in system else "rewrite"


def test_rewriter_and_judge_roles_use_their_own_servers(tmp_path):
    with OpenAICompatibleServer(answers(), model_name="rewriter-model") as rewriting, \
            OpenAICompatibleServer(answers(), model_name="judge-model") as judging:
        config = config_from_dict(
            {
                "lm": {"model": "openai/unused", "api_base": "http://127.0.0.1:9/v1"},
                "roles": {
                    "rewriter": {"model": "openai/rewriter-model", "api_base": rewriting.url},
                    "judge": {"model": "openai/judge-model", "api_base": judging.url},
                },
                "cache": {"dir": str(tmp_path / "cache")},
            },
            environ={},
        )
        runtime = Runtime(config)
        try:
            with runtime.activate():
                result = Rewriter()(dialogue=SOURCE)
            usage = runtime.usage()["by_role"]
        finally:
            runtime.close()
    assert result.decision.kept and result.dialogue.turns[0].strategy == "Greeting"
    assert [_kind_of_body(r.body) for r in rewriting.requests] == ["screen", "rewrite"]
    assert [_kind_of_body(r.body) for r in judging.requests] == ["judge"]
    assert {r.body["model"] for r in rewriting.requests} == {"rewriter-model"}
    assert {r.body["model"] for r in judging.requests} == {"judge-model"}
    assert set(usage) == {"rewriter", "judge"}


# -- real dialogues nobody here wrote ------------------------------------------------------------------------------

_LINE = re.compile(r"^(Supporter|Customer): (.*)$")
_MIDDLE = ("Problem Refinement", "Information Delivery", "Resolution Implementation", "Providing Suggestions")
_POLITE = re.compile(r"\b(please|thank|thanks|welcome|sorry|certainly|sure|glad|happy)\b", re.IGNORECASE)
OPENING = "Hello, thank you for contacting [Company Name]. How can I help you today?"
CLOSING = "Thank you for contacting us. Goodbye!"


def label_by_position(transcript: str) -> list[dict[str, Any]]:
    """A deterministic 'rewrite': Greeting first (inserted when the customer opens), Identity Verification next,
    Appreciation and Closure last (inserted when the customer ends), the middle cycling through four strategies."""
    turns = []
    for line in transcript.splitlines():
        who, text = _LINE.match(line).groups()
        turns.append({"speaker": who.lower(), "strategy": None, "text": text})
    if turns[0]["speaker"] == "customer":
        turns.insert(0, {"speaker": "supporter", "strategy": None, "text": OPENING})
    if turns[-1]["speaker"] == "customer":
        turns.append({"speaker": "supporter", "strategy": None, "text": CLOSING})
    supporter = [i for i, turn in enumerate(turns) if turn["speaker"] == "supporter"]
    for k, index in enumerate(supporter):
        if k == 0:
            label = "Greeting"
        elif k == len(supporter) - 1:
            label = "Appreciation and Closure"
        elif k == 1:
            label = "Identity Verification"
        else:
            label = _MIDDLE[(k - 2) % len(_MIDDLE)]
        turns[index]["strategy"] = label
    return turns


def sgd_answer(field: str, request: AnswerRequest) -> str:
    """Screen: a supporter who never says please/thanks/sorry/sure... counts as cold. Judge: a rewrite with more
    than 9 supporter turns is 'medium'. Rewrite: :func:`label_by_position`."""
    transcript = request.inputs["transcript"]
    if field == "rewritten":
        return json.dumps(label_by_position(transcript))
    if field == "abusive_language":
        return "False"
    if field == "poor_agent_attitude":
        supporter = [line for line in transcript.splitlines() if line.startswith("Supporter")]
        return str(not any(_POLITE.search(line) for line in supporter))
    if field == "quality":
        return "medium" if transcript.count("Supporter [") > 9 else "high"
    return "True" if field in BOOLS else "scripted verdict"


def test_sgd_banking_dialogues_through_the_pipeline(shared_data):
    dialogues = read_dialogues(shared_data / "sgd_banking" / "dialogues.jsonl").dialogues[:20]
    lm = scripted_lm(sgd_answer)
    rewriter = Rewriter()
    with dspy.context(lm=lm):
        results = [rewriter(dialogue=dialogue) for dialogue in dialogues]
    counts = decision_counts(r.decision for r in results)
    # independent expectations from the raw data and the scripted rules above
    cold = [d for d in dialogues
            if not any(_POLITE.search(t.text) for t in d.merged().turns if t.speaker == "supporter")]
    screened = [d for d in dialogues if d not in cold]
    long = [d for d in screened
            if sum(t.speaker == "supporter" for t in d.merged().turns) + (d.turns[0].speaker == "customer")
            + (d.turns[-1].speaker == "customer") > 9]
    assert all(prefilter(d).kept for d in dialogues)
    assert counts == {"kept": 20 - len(cold) - len(long), "screen:poor_agent_attitude": len(cold),
                      "judge:quality": len(long)}
    assert counts == {"kept": 8, "screen:poor_agent_attitude": 7, "judge:quality": 5}
    assert [kind(r) for r in lm.engine.requests].count("rewrite") == 13
    for source, result in zip(dialogues, results, strict=True):
        if not result.decision.kept:
            continue
        kept = result.dialogue
        assert (kept.id, kept.domain, kept.language) == (source.id, source.domain, "en")
        assert kept.metadata["source_id"] == source.id and kept.is_alternating()
        assert check_flow(kept.supporter_strategies(), CSC) == []
        assert kept.turns[0].text == OPENING and len(kept.turns) == len(source.merged().turns) + 1
        assert [t.text for t in kept.turns[1:]] == [t.text for t in source.merged().turns]


# -- the embedded model ----------------------------------------------------------------------------------------------


@pytest.mark.embedded
def test_the_embedded_model_rewrites_or_records_why_not(tmp_path):
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    from cscprog.lm.local.weights import find_chunks

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    config = config_from_dict(
        {"lm": {"model": "local", "local_model_size": "0.5b", "max_tokens": 400, "local_context": 4096},
         "cache": {"dir": str(tmp_path / "cache")}},
        environ={},
    )
    runtime = Runtime(config)
    source = RAW["raw-012"]  # a short Chinese call that passes the rule pre-filter
    try:
        with runtime.activate():  # the structure auto chooses on the embedded model: anchored, one call a line
            rewriter = Rewriter(use_screen=False, use_judge=False, attempts=1)
            assert rewriter.resolved_structure() == "anchored"
            result = rewriter(dialogue=source)
        usage = runtime.usage()["by_role"]["rewriter"]
    finally:
        runtime.close()
    assert isinstance(result, dspy.Prediction) and isinstance(result.decision, RewriteDecision)
    decision = result.decision
    supporter_lines = sum(turn.is_supporter for turn in source.merged().turns)
    if decision.kept:
        assert result.dialogue.id == source.id and result.dialogue.is_alternating() and result.dialogue.is_annotated
        assert {turn.metadata["origin"] for turn in result.dialogue.turns} <= set(ORIGINS)
        assert usage["live_calls"] >= supporter_lines
    else:
        assert decision.stage in ("rewrite", "postfilter") and decision.rule and decision.reason
        assert usage["failures"] == (1 if decision.rule in ("generation_failure", "unfaithful_turn") else 0)


# -- the structures the embedded model uses -------------------------------------------------------------------------


def _structured(field: str, request: AnswerRequest) -> str:
    """Scripted answers for the exchanges and stepwise structures (distinct texts, so no loop rule fires)."""
    from cscprog.signatures.exchanges import draft_of

    if field == "rewritten":
        count = len(draft_of(SOURCE.merged()).exchanges)
        return json.dumps({
            "opening": "Good morning, this is [Company Name] card services, how can I help?",
            "request": "My card was declined at the petrol station just now.",
            "verification": "May I have your full name and the card number, please?",
            "verification_reply": "Sure, it's [Name] and the card is [Card Number].",
            "exchanges": [{"strategy": "Problem Refinement", "supporter": f"Question number {i} about the purchase?",
                           "customer": f"Answer number {i} about the purchase."} for i in range(count)],
            "closing": "Thank you for your patience, goodbye!",
        })
    if field == "strategy":
        return "Problem Refinement"
    if field == "text":
        return f"Written turn number {request.index} about the declined card."
    return answers()(field, request)


@pytest.mark.parametrize("structure", ["exchanges", "stepwise"])
def test_structured_rewrites_place_speakers_and_the_fixed_strategies(structure):
    lm = scripted_lm(_structured)
    with dspy.context(lm=lm):
        result = Rewriter(structure=structure)(dialogue=SOURCE)
    assert result.decision.kept, result.decision.reason
    assert result.decision.details["structure"] == structure
    turns = result.dialogue.turns
    assert [t.speaker for t in turns] == ["supporter", "customer"] * (len(turns) // 2) + ["supporter"]
    assert [t.strategy for t in turns if t.speaker == "customer"] == [None] * (len(turns) // 2)
    labels = [t.strategy for t in turns if t.speaker == "supporter"]
    assert labels[:2] == ["Greeting", "Identity Verification"] and labels[-1] == "Appreciation and Closure"
    assert set(labels[2:-1]) == {"Problem Refinement"}


def test_auto_structure_is_turns_without_the_embedded_model():
    with dspy.context(lm=scripted_lm(answers())):
        assert Rewriter().resolved_structure() == "turns"
    assert Rewriter(structure="stepwise").resolved_structure() == "stepwise"
    with pytest.raises(ValueError, match="structure"):
        Rewriter(structure="free")
