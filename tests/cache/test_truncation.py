"""A structured output cut off by its budget is cached like any response and raised as OutputTruncated, replayed too."""

from __future__ import annotations

import json

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage

from cscprog.cache.truncation import OutputTruncated, structured_truncation
from cscprog.lm.invoke import invoke
from cscprog.lm.runtime import Runtime
from cscprog.testing import ScriptedEngine
from tests.support_lm import make_config, qa

SCHEMA = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}}


def native(response_format=SCHEMA, max_tokens=64):
    config = {"max_tokens": max_tokens}
    if response_format is not None:
        config["response_format"] = response_format
    return {"_fn_identifier": "dspy.clients.lm15.complete", "request": {"model": "local/m", "config": config}}


def record(finish_reason, output_tokens=64):
    return {"_dspy_format": 1, "responses": [{"finish_reason": finish_reason,
                                               "usage": {"output_tokens": output_tokens}}]}


def test_a_structured_response_stopped_at_its_budget_is_a_truncation():
    error = structured_truncation(native(max_tokens=64), record("length"))
    assert isinstance(error, OutputTruncated) and error.max_tokens == 64 and error.model == "local/m"


def test_a_complete_or_unstructured_response_is_not():
    assert structured_truncation(native(), record("stop")) is None
    assert structured_truncation(native(response_format=None), record("length")) is None


def test_litellm_shaped_requests_and_records_are_read_too():
    request = {"model": "openai/x", "response_format": {"type": "json_object"}, "max_tokens": 32}
    stored = {"choices": [{"finish_reason": "length"}], "usage": {"completion_tokens": 32}}
    error = structured_truncation(request, stored)
    assert error is not None and error.max_tokens == 32 and error.model == "openai/x"
    assert structured_truncation({**request, "max_tokens": None}, stored).max_tokens == 32


class CutOffEngine(ScriptedEngine):
    """Answers the JSON schema it is sent; a request with fewer than 100 tokens gets half an object at "length"."""

    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "seed", "response_format"})

    def complete(self, request):
        response = super().complete(request)
        if request.config.max_tokens is not None and request.config.max_tokens < 100:
            text = response.message.text
            usage = Usage(input_tokens=10, output_tokens=request.config.max_tokens)
            return Response(id=None, model=request.model, message=Message.assistant([TextPart(text[:5])]),
                            finish_reason="length", usage=usage)
        return response


def runtime_on(cache_dir, engine, mode="readwrite"):
    lm = dspy.LM("scripted/cut", engine=engine, num_retries=0)
    return Runtime(make_config(cache_dir, mode=mode), lm_factory=lambda role, settings: lm)


def ask(runtime):
    with runtime.activate(), dspy.context(adapter=dspy.JSONAdapter()):
        return invoke(qa(), role="classifier", max_tokens=64, question="Where is my card?")


def test_the_cut_off_call_is_cached_and_a_replay_retries_without_calling_the_lm(tmp_path):
    engine = CutOffEngine(lambda field, request: "It ships today.")
    runtime = runtime_on(tmp_path / "cache", engine)
    first = ask(runtime)
    usage = runtime.usage()["by_role"]["classifier"]
    runtime.close()
    assert first.answer == "It ships today."
    assert [request.max_tokens for request in engine.requests] == [64, 128]
    sent = engine.requests[0].extra["request"].config.response_format
    assert sent is not None and "json_schema" in json.dumps(sent)
    assert usage["truncated_retries"] == 1

    fresh = CutOffEngine(lambda field, request: "never asked")
    replay = runtime_on(tmp_path / "cache", fresh, mode="replay")
    again = ask(replay)
    replay_usage = replay.usage()["by_role"]["classifier"]
    replay.close()
    assert again.answer == first.answer
    assert fresh.calls == 0
    assert replay_usage["truncated_retries"] == 1
