"""StrategyClassifier: every supporter turn labelled, concurrently and in order; failures recorded, never filled in."""

from __future__ import annotations

import hashlib
import threading
import time

import dspy
import pytest

from cscprog.agents.classifier import FAILURE_KEY, RATIONALE_KEY, StrategyClassifier, TurnFailure
from cscprog.concurrency import map_in_threads
from cscprog.config import config_from_dict
from cscprog.data import Dialogue, Turn, read_dialogues
from cscprog.framework import load_taxonomy
from cscprog.lm.invoke import GenerationFailure
from cscprog.lm.runtime import Runtime
from cscprog.samples import load_sample
from cscprog.testing import OpenAICompatibleServer, scripted_lm

CSC = load_taxonomy("csc")


def keyword_label(utterance: str) -> str:
    """A deterministic 'model': a CSC label from the words of the utterance."""
    text = utterance.lower()
    rules = [
        (("hello", "welcome", "thank you for calling", "您好"), "Greeting"),
        (("name", "date of birth", "card number", "姓名"), "Identity Verification"),
        (("sorry", "understand how", "抱歉"), "Emotional Management"),
        (("thank", "goodbye", "great day", "再见"), "Appreciation and Closure"),
        (("?", "？"), "Problem Refinement"),
    ]
    for words, label in rules:
        if any(word in text for word in words):
            return label
    return "Information Delivery"


def slow_keyword_answer(field: str, request) -> str:
    """Answers after a small delay that depends on the prompt, so concurrent calls finish out of order."""
    utterance = request.inputs.get("utterance", "")
    time.sleep(int(hashlib.sha256(utterance.encode()).hexdigest()[:2], 16) / 20000)
    if field == "rationale":
        return f"The agent says: {utterance[:30]}"
    return keyword_label(utterance)


def test_every_supporter_turn_is_labelled_and_the_input_is_untouched():
    dialogue = load_sample("annotated_en")[0]
    before = dialogue.model_dump()
    lm = scripted_lm(slow_keyword_answer, cache=False)
    with dspy.context(lm=lm):
        result = StrategyClassifier(concurrency=4)(dialogue)
    annotated = result.dialogue
    assert result.failures == []
    assert dialogue.model_dump() == before  # a copy was annotated
    assert [t.text for t in annotated.turns] == [t.text for t in dialogue.turns]
    for index in dialogue.supporter_indices():
        assert annotated.turns[index].strategy == keyword_label(dialogue.turns[index].text)
    assert all(t.strategy is None for t in annotated.turns if not t.is_supporter)
    assert lm.engine.calls == len(dialogue.supporter_indices())
    assert {request.inputs["language"] for request in lm.engine.requests} == {"en"}


def test_result_order_does_not_depend_on_concurrency():
    dialogues = load_sample("annotated_en")[:3]
    runs = []
    for concurrency in (1, 6):
        with dspy.context(lm=scripted_lm(slow_keyword_answer, cache=False)):
            classifier = StrategyClassifier(concurrency=concurrency)
            runs.append([classifier(d).dialogue.supporter_strategies() for d in dialogues])
    assert runs[0] == runs[1]


def test_context_is_the_preceding_turns_without_tags_by_default():
    dialogue = load_sample("annotated_en")[1]
    lm = scripted_lm(slow_keyword_answer)
    with dspy.context(lm=lm):
        StrategyClassifier(context_turns=2, concurrency=1)(dialogue)
    by_utterance = {request.inputs["utterance"]: request.inputs["context"] for request in lm.engine.requests}
    for index in dialogue.supporter_indices():
        context = by_utterance[dialogue.turns[index].text]
        if index == 0:
            assert context == "(the conversation has not started)"
            continue
        shown = dialogue.turns[max(0, index - 2) : index]
        assert context == "\n".join(f"{t.speaker.capitalize()}: {t.text}" for t in shown)
        assert "[" not in context.split(":", 1)[0]  # no strategy tag on the speaker


def test_tagged_context_shows_existing_labels():
    dialogue = load_sample("annotated_en")[0]
    lm = scripted_lm(slow_keyword_answer)
    with dspy.context(lm=lm):
        StrategyClassifier(tagged_context=True, concurrency=1)(dialogue)
    contexts = [request.inputs["context"] for request in lm.engine.requests]
    assert any(f"Supporter [{dialogue.turns[0].strategy}]:" in context for context in contexts)


def test_only_missing_keeps_existing_labels():
    dialogue = load_sample("annotated_en")[0]
    supporter = dialogue.supporter_indices()
    turns = [t.model_copy() for t in dialogue.turns]
    for index in supporter[1::2]:
        turns[index] = turns[index].model_copy(update={"strategy": None})
    partial = dialogue.model_copy(update={"turns": turns})
    lm = scripted_lm(lambda field, request: "Others")
    with dspy.context(lm=lm):
        result = StrategyClassifier()(partial, only_missing=True)
    for index in supporter:
        expected = "Others" if index in supporter[1::2] else dialogue.turns[index].strategy
        assert result.dialogue.turns[index].strategy == expected
    assert lm.engine.calls == len(supporter[1::2])


def test_an_unknown_label_is_retried_then_recorded_as_a_failure():
    dialogue = load_sample("annotated_en")[0]
    bad = dialogue.turns[dialogue.supporter_indices()[2]].text

    def answer(field, request):
        return "Teleportation" if request.inputs["utterance"] == bad else keyword_label(request.inputs["utterance"])

    lm = scripted_lm(answer, cache=False)
    with dspy.context(lm=lm):
        result = StrategyClassifier(attempts=3, concurrency=3)(dialogue)
    bad_index = dialogue.supporter_indices()[2]
    assert result.failures == [result.failures[0]] and isinstance(result.failures[0], TurnFailure)
    failure = result.failures[0]
    assert failure.turn_index == bad_index
    assert "Teleportation" in (failure.raw_text or "")
    assert failure.reason
    turn = result.dialogue.turns[bad_index]
    assert turn.strategy is None and turn.metadata[FAILURE_KEY] == failure.reason
    others = [i for i in dialogue.supporter_indices() if i != bad_index]
    assert all(result.dialogue.turns[i].strategy is not None for i in others)
    bad_requests = [r for r in lm.engine.requests if r.inputs.get("utterance") == bad]
    # three attempts (each: ChatAdapter, then DSPy's JSON fallback), the retries at the configured temperature
    assert len(bad_requests) == 6
    assert [r.temperature for r in bad_requests] == [None] * 6
    assert failure.to_json()["turn_index"] == bad_index


def test_a_retry_that_gives_a_valid_label_is_used():
    dialogue = load_sample("annotated_en")[0]

    def answer(field, request):
        return "Greeting" if request.seed != 7 else "Teleportation"   # a retry gets seed 7 + rollout

    lm = scripted_lm(answer, seed=7)
    with dspy.context(lm=lm):
        result = StrategyClassifier(concurrency=2)(dialogue)
    assert result.failures == []
    assert set(result.dialogue.supporter_strategies()) == {"Greeting"}


def test_classify_turn_raises_generation_failure_and_gives_a_rationale():
    lm = scripted_lm(lambda field, request: "because it greets" if field == "rationale" else "Greeting")
    with dspy.context(lm=lm):
        classifier = StrategyClassifier(rationale=True)
        pred = classifier.classify_turn("", "Hello and welcome!", "en")
        assert (pred.strategy, pred.rationale) == ("Greeting", "because it greets")
        assert lm.engine.requests[0].outputs == ("rationale", "strategy")
        result = classifier(load_sample("annotated_en")[0])
    assert result.dialogue.turns[0].metadata[RATIONALE_KEY] == "because it greets"
    with dspy.context(lm=scripted_lm(lambda field, request: "Nonsense")), pytest.raises(GenerationFailure):
        StrategyClassifier(attempts=2).classify_turn("", "Hello", "en")
    plain = StrategyClassifier()
    with dspy.context(lm=scripted_lm(lambda field, request: "Greeting")):
        assert plain.classify_turn("", "Hi", "en").rationale is None


def test_esconv_taxonomy_adapts_the_label_type():
    esconv = load_taxonomy("esconv")
    classifier = StrategyClassifier(esconv)
    dialogue = Dialogue(
        id="es-1",
        language="en",
        turns=[
            Turn(speaker="customer", text="I failed my exam and feel awful."),
            Turn(speaker="supporter", text="What happened during the exam?"),
            Turn(speaker="customer", text="I froze."),
            Turn(speaker="supporter", text="That sounds really frightening."),
        ],
    )

    def answer(field, request):
        return "Question" if "?" in request.inputs["utterance"] else "Greeting"  # Greeting is not an ESConv label

    lm = scripted_lm(answer)
    with dspy.context(lm=lm):
        result = classifier(dialogue)
    assert "Literal['Question'" in lm.engine.requests[0].output_types["strategy"]
    assert "Greeting" not in lm.engine.requests[0].output_types["strategy"]
    assert result.dialogue.turns[1].strategy == "Question"
    assert [f.turn_index for f in result.failures] == [3] and result.dialogue.turns[3].strategy is None


def test_json_adapter_and_chinese_dialogue():
    dialogue = load_sample("annotated_zh")[0]
    lm = scripted_lm(slow_keyword_answer)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        result = StrategyClassifier(concurrency=3)(dialogue)
    assert result.failures == [] and result.dialogue.is_annotated
    assert {r.format for r in lm.engine.requests} == {"json"}
    assert {r.inputs["language"] for r in lm.engine.requests} == {"zh"}
    assert any("客户:" in r.inputs["context"] for r in lm.engine.requests)


def test_real_sgd_banking_dialogues_are_classified_as_they_are(shared_data):
    raw = read_dialogues(shared_data / "sgd_banking" / "dialogues.jsonl").dialogues[:6]
    assert any(d.turns[0].speaker == "customer" for d in raw)
    lm = scripted_lm(slow_keyword_answer)
    with dspy.context(lm=lm):
        classifier = StrategyClassifier(concurrency=4)
        results = [classifier(d) for d in raw]
    for dialogue, result in zip(raw, results, strict=True):
        assert result.failures == []
        assert len(result.dialogue.turns) == len(dialogue.turns)  # no merging, no dropping
        assert result.dialogue.is_annotated
        assert result.dialogue.supporter_strategies() == [keyword_label(dialogue.turns[i].text)
                                                          for i in dialogue.supporter_indices()]
    first = raw[0]
    first_reply = first.turns[first.supporter_indices()[0]].text
    seen = next(r for r in lm.engine.requests if r.inputs["utterance"] == first_reply)
    assert f"Customer: {first.turns[0].text}" in seen.inputs["context"]


def test_the_classifier_role_uses_its_own_endpoint(tmp_path):
    dialogue = load_sample("raw")[0]
    with OpenAICompatibleServer(slow_keyword_answer, model_name="cls-model") as cls_server, \
            OpenAICompatibleServer(lambda field, request: "Others", model_name="main-model") as main_server:
        config = config_from_dict({
            "lm": {"model": "openai/main-model", "api_base": main_server.url},
            "roles": {"classifier": {"model": "openai/cls-model", "api_base": cls_server.url}},
            "cache": {"dir": str(tmp_path / "cache")},
        })
        runtime = Runtime(config)
        try:
            with runtime.activate():
                result = StrategyClassifier(concurrency=3)(dialogue)
        finally:
            runtime.close()
        chat = [r for r in cls_server.requests if r.method == "POST"]
        assert len(chat) == len(dialogue.supporter_indices())
        assert {r.body["model"] for r in chat} == {"cls-model"}
        assert [r for r in main_server.requests if r.method == "POST"] == []
    assert result.failures == []
    assert result.dialogue.supporter_strategies() == [keyword_label(dialogue.turns[i].text)
                                                      for i in dialogue.supporter_indices()]
    assert "classifier" in runtime.usage()["by_role"]


def test_map_in_threads_keeps_order_context_and_errors():
    seen = []

    def work(item):
        time.sleep((5 - item) / 1000)
        seen.append(threading.current_thread().name)
        return item * 10, dspy.settings.lm

    marker = scripted_lm(lambda field, request: "x")
    with dspy.context(lm=marker):
        results = map_in_threads(work, range(5), concurrency=3)
    assert [value for value, _ in results] == [0, 10, 20, 30, 40]
    assert all(lm is marker for _, lm in results)
    assert any(name.startswith("cscprog") for name in seen)

    def boom(item):
        if item == 2:
            raise RuntimeError("item 2 broke")
        return item

    with pytest.raises(RuntimeError, match="item 2 broke"):
        map_in_threads(boom, range(4), concurrency=2)


@pytest.mark.parametrize("kwargs", [{"context_turns": -1}, {"attempts": 0}, {"concurrency": 0}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        StrategyClassifier(**kwargs)


def test_classifier_exposes_one_predictor():
    assert [name for name, _ in StrategyClassifier().named_predictors()] == ["classify"]
