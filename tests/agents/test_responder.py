"""ResponseGenerator: strategy then reply; reference vs generated context; oracle strategies; failures recorded."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import dspy
import pytest

from cscprog.agents.responder import ResponseGenerator, TurnPrediction, respond_dialogue, respond_dialogues
from cscprog.config import config_from_dict
from cscprog.data import next_turn_examples, render_transcript
from cscprog.errors import UnknownStrategyError
from cscprog.framework import load_taxonomy
from cscprog.lm.invoke import GenerationFailure
from cscprog.lm.runtime import Runtime
from cscprog.samples import load_sample
from cscprog.testing import OpenAICompatibleServer, scripted_lm

CSC = load_taxonomy("csc")
NOT_STARTED = "(the conversation has not started)"


def plan_and_write(field: str, request) -> str:
    """A deterministic 'model': a strategy from the history, a reply naming the history length and strategy."""
    history = request.inputs.get("history", "")
    if field == "strategy":
        if NOT_STARTED in history:
            return "Greeting"
        return "Problem Refinement" if history.count("\n") % 2 else "Information Delivery"
    if field == "reply":
        return f"GENERATED({len(history.splitlines())} lines, {request.inputs['strategy']})"
    raise AssertionError(f"unexpected field {field}")


def requests_for(lm, output: str):
    return [r for r in lm.engine.requests if output in r.outputs]


def test_forward_predicts_a_strategy_then_writes_a_reply_for_it():
    example = next_turn_examples(load_sample("annotated_en"))[3]
    lm = scripted_lm(plan_and_write)
    generator = ResponseGenerator()
    with dspy.context(lm=lm):
        pred = generator(**example.inputs())
    assert pred.strategy == "Problem Refinement" or pred.strategy == "Information Delivery"
    assert pred.reply.startswith("GENERATED(") and pred.strategy in pred.reply
    planned, written = requests_for(lm, "strategy")[0], requests_for(lm, "reply")[0]
    assert planned.inputs == {"history": example.history, "language": "en", "domain": example.domain}
    assert written.inputs["strategy"] == pred.strategy and written.inputs["history"] == example.history
    assert [name for name, _ in generator.named_predictors()] == ["predict_strategy", "write_reply"]


def test_a_given_strategy_skips_prediction_and_is_canonicalised():
    lm = scripted_lm(plan_and_write)
    with dspy.context(lm=lm):
        pred = ResponseGenerator()(history="Customer: hi", language="en", strategy="GT")
        oracle = ResponseGenerator(use_gold_strategy=True)
        chinese = oracle(history="客户: 你好", language="zh", strategy="策略5 情感管理")
    assert pred.strategy == "Greeting" and chinese.strategy == "Emotional Management"
    assert requests_for(lm, "strategy") == []
    with pytest.raises(ValueError, match="use_gold_strategy"):
        oracle(history="Customer: hi", language="en")
    with pytest.raises(UnknownStrategyError):
        ResponseGenerator()(history="Customer: hi", strategy="Teleportation")


def test_it_evaluates_directly_on_next_turn_examples():
    examples = next_turn_examples(load_sample("annotated_en")[:2])
    with dspy.context(lm=scripted_lm(plan_and_write)):
        result = dspy.Evaluate(devset=examples, metric=lambda ex, pred, trace=None: ex.strategy == pred.strategy,
                               num_threads=2)(ResponseGenerator())
    expected = sum(ex.strategy == plan_and_write("strategy", _Req(ex.history)) for ex in examples)
    assert result.score == round(100 * expected / len(examples), 2)
    assert all(pred.reply for _, pred, _ in result.results)


class _Req:
    def __init__(self, history):
        self.inputs = {"history": history}


def test_reference_context_rows_match_next_turn_examples():
    dialogue = load_sample("annotated_en")[2]
    lm = scripted_lm(plan_and_write)
    with dspy.context(lm=lm):
        rows = respond_dialogue(ResponseGenerator(), dialogue, "reference", concurrency=3)
    examples = next_turn_examples([dialogue])
    assert [row.turn_index for row in rows] == [ex.turn_index for ex in examples] == dialogue.supporter_indices()
    for row, example in zip(rows, examples, strict=True):
        assert isinstance(row, TurnPrediction) and row.ok and row.context == "reference"
        assert row.history == example.history
        assert (row.gold_strategy, row.gold_reply) == (example.strategy, example.reply)
        assert row.pred_reply == f"GENERATED({len(example.history.splitlines())} lines, {row.pred_strategy})"
        assert row.gold_fallbacks == 0 and row.dialogue_id == dialogue.id
        assert row.to_json()["pred_strategy"] == row.pred_strategy


def test_generated_context_replaces_earlier_supporter_turns_with_the_programs_own():
    dialogue = load_sample("annotated_en")[0]
    lm = scripted_lm(plan_and_write)
    with dspy.context(lm=lm):
        rows = respond_dialogue(ResponseGenerator(), dialogue, "generated")
    reference = dialogue.transcript(rows[0].turn_index)
    assert rows[0].history == reference  # nothing generated yet
    first, second = rows[0], rows[1]
    assert first.pred_reply in second.history
    assert dialogue.turns[first.turn_index].text not in second.history
    assert f"Supporter [{first.pred_strategy}]: {first.pred_reply}" in second.history
    # exactly: gold customer turns, the program's supporter turns
    turns = list(dialogue.turns)
    for row in rows:
        assert row.history == render_transcript(turns[: row.turn_index], language="en")
        turns[row.turn_index] = turns[row.turn_index].model_copy(
            update={"text": row.pred_reply, "strategy": row.pred_strategy, "extra_strategies": [], "metadata": {}}
        )
    for index, turn in enumerate(dialogue.turns):
        if not turn.is_supporter:
            assert turn.text in rows[-1].history or index > rows[-1].turn_index
    # the history each write_reply call saw is the row's history
    written = requests_for(lm, "reply")
    assert [r.inputs["history"] for r in written] == [row.history for row in rows]
    assert rows[-1].history != dialogue.transcript(rows[-1].turn_index)


def test_a_failed_turn_is_recorded_and_stays_gold_in_the_generated_context():
    dialogue = load_sample("annotated_en")[0]
    failing_turn = dialogue.supporter_indices()[1]

    def answer(field, request):
        history = request.inputs.get("history", "")
        if field == "reply" and len(history.splitlines()) == failing_turn:
            return "   "  # empty reply: rejected by the validator on every attempt
        return plan_and_write(field, request)

    lm = scripted_lm(answer, cache=False)
    with dspy.context(lm=lm):
        rows = respond_dialogue(ResponseGenerator(attempts=2), dialogue, "generated")
    failed = [row for row in rows if not row.ok]
    assert [row.turn_index for row in failed] == [failing_turn]
    assert failed[0].pred_reply is None and failed[0].pred_strategy is None
    assert "empty" in failed[0].failure
    later = [row for row in rows if row.turn_index > failing_turn]
    assert later and all(row.ok and row.gold_fallbacks == 1 for row in later)
    assert dialogue.turns[failing_turn].text in later[0].history
    assert all(row.gold_fallbacks == 0 for row in rows if row.turn_index <= failing_turn)


def test_oracle_strategies_in_respond_dialogue():
    dialogue = load_sample("annotated_en")[1]
    lm = scripted_lm(plan_and_write)
    with dspy.context(lm=lm):
        rows = respond_dialogue(ResponseGenerator(use_gold_strategy=True), dialogue, "generated")
    assert all(row.ok and row.pred_strategy == row.gold_strategy for row in rows)
    assert requests_for(lm, "strategy") == []
    raw = load_sample("raw")[0]
    with dspy.context(lm=lm):
        raw_rows = respond_dialogue(ResponseGenerator(use_gold_strategy=True), raw, "reference")
    assert raw_rows and all(row.failure and "no gold strategy" in row.failure for row in raw_rows)


def test_unknown_predicted_strategy_is_retried_then_recorded():
    dialogue = load_sample("annotated_en")[0]

    def answer(field, request):
        if field == "strategy":
            return "Teleportation"
        return plan_and_write(field, request)

    lm = scripted_lm(answer)
    with dspy.context(lm=lm):
        with pytest.raises(GenerationFailure) as raised:
            ResponseGenerator(attempts=2)(history="Customer: hi", language="en")
        rows = respond_dialogue(ResponseGenerator(attempts=2), dialogue, "reference")
    assert "Teleportation" in (raised.value.raw_text or "")
    assert all(not row.ok and row.pred_strategy is None for row in rows)
    assert requests_for(lm, "reply") == []


def test_respond_dialogues_keeps_order_and_matches_single_runs():
    dialogues = load_sample("annotated_en")[:4]
    with dspy.context(lm=scripted_lm(plan_and_write)):
        together = respond_dialogues(ResponseGenerator(), dialogues, "generated", concurrency=4)
        one_by_one = [row for d in dialogues for row in respond_dialogue(ResponseGenerator(), d, "generated")]
    assert together == one_by_one
    assert [row.dialogue_id for row in together][0] == dialogues[0].id
    with pytest.raises(ValueError, match="context"):
        respond_dialogues(ResponseGenerator(), dialogues, "gold")  # type: ignore[arg-type]


def test_the_responder_role_uses_its_endpoint(tmp_path):
    dialogue = load_sample("annotated_en")[0]
    with OpenAICompatibleServer(plan_and_write, model_name="resp-model") as resp_server, \
            OpenAICompatibleServer(plan_and_write, model_name="other-model") as other_server:
        config = config_from_dict({
            "lm": {"model": "openai/other-model", "api_base": other_server.url},
            "roles": {"responder": {"model": "openai/resp-model", "api_base": resp_server.url}},
            "cache": {"dir": str(tmp_path / "cache")},
        })
        runtime = Runtime(config)
        try:
            with runtime.activate():
                rows = respond_dialogue(ResponseGenerator(), dialogue, "reference", concurrency=2)
        finally:
            runtime.close()
        posts = [r for r in resp_server.requests if r.method == "POST"]
        assert len(posts) == 2 * len(rows)
        assert {r.body["model"] for r in posts} == {"resp-model"}
        assert not [r for r in other_server.requests if r.method == "POST"]
    assert all(row.ok for row in rows)


def test_esconv_taxonomy_retypes_both_predictors():
    generator = ResponseGenerator(load_taxonomy("esconv"))
    lm = scripted_lm(lambda field, request: "Question" if field == "strategy" else "What happened?")
    with dspy.context(lm=lm):
        pred = generator(history="Seeker: I feel low.", language="en")
    assert pred.strategy == "Question"
    assert "Literal['Question'" in requests_for(lm, "strategy")[0].output_types["strategy"]
    with pytest.raises(UnknownStrategyError):
        generator(history="Seeker: hi", strategy="Greeting")


_PROBE = """
import sys
import dspy
from cscprog.config import LMSettings
from cscprog.lm.local.engine import build_local_lm
dspy.cache = dspy.clients.Cache(enable_disk_cache=False, enable_memory_cache=False, disk_cache_dir=None)
lm = build_local_lm(LMSettings(local_model_size="0.5b", max_tokens=4, models_dir=sys.argv[1]))
print(lm(messages=[{"role": "user", "content": "Say hello to the customer."}]))
"""


def _probe_embedded(models_dir) -> None:
    """Fail clearly (instead of crashing the whole session) when the native model kills its process."""
    probe = subprocess.run([sys.executable, "-c", _PROBE, str(models_dir)], capture_output=True, text=True,
                           timeout=600)
    if probe.returncode < 0:
        pytest.fail(f"the embedded model crashed its process (signal {-probe.returncode}); "
                    "the installed llama-cpp-python build does not run on this machine")
    assert probe.returncode == 0, probe.stderr[-2000:]


@pytest.mark.embedded
def test_embedded_model_predicts_a_valid_strategy_and_a_reply(tmp_path, models_dir):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from cscprog.lm.local.engine import recommended_adapter

    _probe_embedded(models_dir)
    config = config_from_dict({
        "lm": {"model": "local", "local_model_size": "0.5b", "max_tokens": 160, "seed": 7,
               "models_dir": str(models_dir)},
        "cache": {"dir": str(tmp_path / "cache")},
    })
    runtime = Runtime(config)
    dialogue = load_sample("annotated_en")[0]
    history = dialogue.transcript(dialogue.supporter_indices()[2])
    try:
        with runtime.activate(), dspy.context(adapter=recommended_adapter()):
            pred = ResponseGenerator()(history=history, language="en", domain=dialogue.domain or "")
    finally:
        runtime.close()
    assert pred.strategy in CSC.names
    assert isinstance(pred.reply, str) and pred.reply.strip()
    assert runtime.usage()["by_role"]["responder"]
