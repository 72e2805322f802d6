"""The embedded local model engine.

Tests marked ``embedded`` load the real 0.5B model (llama-cpp-python plus the ``cscprog[local]`` weight
packages) and skip with a reason when either is missing. The others check request translation, the
missing-extra message and the model string without loading anything.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Literal

import dspy
import pydantic
import pytest
from dspy.lm15 import Config, FunctionTool, Message, Request, TextPart, UnsupportedFeatureError

from cscprog.cache import ResponseCache, activate
from cscprog.cache.truncation import OutputTruncated
from cscprog.config import LMSettings
from cscprog.errors import ConfigError
from cscprog.lm.local.engine import (
    AsyncLlamaEngine,
    LlamaEngine,
    build_local_lm,
    chat_messages,
    json_schema_of,
    recommended_adapter,
)
from cscprog.lm.local.llama import LLAMA_MISSING


@pytest.fixture
def fake_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "Tiny-Chat.Q4_K_M.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    return path


def test_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch, fake_gguf: Path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what Python does when the package is absent
    with pytest.raises(ConfigError) as caught:
        build_local_lm(LMSettings(local_model_path=str(fake_gguf)))
    assert str(caught.value) == LLAMA_MISSING
    assert 'pip install "cscprog[local]"' in LLAMA_MISSING and "10 minutes" in LLAMA_MISSING


def test_custom_file_gives_the_model_string_and_advertises_schemas(fake_gguf: Path):
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    lm = build_local_lm(LMSettings(local_model_path=str(fake_gguf), temperature=0.3, seed=5))
    assert lm.model == "local/Tiny-Chat.Q4_K_M"
    assert lm.kwargs["temperature"] == 0.3 and lm.kwargs["seed"] == 5 and lm.kwargs["max_tokens"] == 512
    assert "response_format" in lm.supported_params and lm.supports_response_schema
    assert isinstance(recommended_adapter(), dspy.JSONAdapter)


def test_engines_over_one_file_share_one_model(fake_gguf: Path):
    first, second = (
        LlamaEngine(fake_gguf),
        LlamaEngine(fake_gguf.parent / ".." / fake_gguf.parent.name / fake_gguf.name),
    )
    assert first._model is second._model


def test_request_translation():
    request = Request(
        model="local/x",
        system=(TextPart("Be brief."), TextPart(" Answer in English.")),
        messages=(
            Message.developer("Rule: no emojis."),
            Message.user("hi"),
            Message.assistant("hello"),
            Message.user("?"),
        ),
    )
    assert chat_messages(request) == [
        {"role": "system", "content": "Be brief. Answer in English."},
        {"role": "system", "content": "Rule: no emojis."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "?"},
    ]
    tool = FunctionTool(name="lookup", description="Look up", parameters={"type": "object", "properties": {}})
    with pytest.raises(UnsupportedFeatureError, match="tool calling"):
        chat_messages(Request(model="local/x", messages=(Message.user("hi"),), tools=(tool,)))


def test_response_format_shapes():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert json_schema_of(None) == (False, None)
    assert json_schema_of({"type": "text"}) == (False, None)
    assert json_schema_of({"type": "json_object"}) == (True, None)
    assert json_schema_of({"type": "json_schema", "schema": schema, "name": "X", "strict": True}) == (True, schema)
    assert json_schema_of({"type": "json_schema", "json_schema": {"name": "X", "schema": schema}}) == (True, schema)
    with pytest.raises(UnsupportedFeatureError):
        json_schema_of({"type": "grammar"})


# ---------------------------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def local_lm(models_dir: Path) -> dspy.LM:
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    from cscprog.lm.local.weights import find_chunks

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    settings = LMSettings(local_model_size="0.5b", local_context=2048, max_tokens=48, models_dir=str(models_dir))
    return build_local_lm(settings, cache=False)


class Triage(dspy.Signature):
    """Classify the customer's message."""

    message: str = dspy.InputField()
    topic: Literal["card", "loan", "account", "other"] = dspy.OutputField()
    urgent: bool = dspy.OutputField()


@pytest.mark.embedded
def test_predict_with_literal_output_parses(local_lm: dspy.LM):
    with dspy.context(lm=local_lm, adapter=recommended_adapter()):
        prediction = dspy.Predict(Triage)(message="My credit card was stolen an hour ago, please block it now!")
    assert prediction.topic in ("card", "loan", "account", "other")
    assert isinstance(prediction.urgent, bool)
    assert local_lm.model == MODEL
    assert local_lm.history[-1]["usage"]["prompt_tokens"] > 0


@pytest.mark.embedded
def test_sync_and_async_calls(local_lm: dspy.LM):
    sync = local_lm("Say OK.", max_tokens=8)
    asynchronous = asyncio.run(local_lm.acall("Say OK.", max_tokens=8))
    assert sync == asynchronous and sync[0].strip()


MODEL = "local/qwen2.5-coder-0.5b-instruct-q4_k_m"


def _ask(system: str, user: str, **config) -> Request:
    return Request(model=MODEL, system=system, messages=(Message.user(user),), config=Config(**config))


def _text(response) -> str:
    return "".join(part.text for part in response.message.parts)


@pytest.mark.embedded
def test_same_seed_same_output_whatever_ran_before(local_lm: dspy.LM):
    engine = local_lm.engine
    request = _ask("You name things.", "Name a new bank.", temperature=1.0, seed=11, max_tokens=12)
    first = _text(engine.complete(request))  # evaluates the system prefix and saves its state
    engine.complete(_ask("Be terse.", "Hi", max_tokens=2))  # another prompt in between
    hits = engine.stats()["prefix_hits"]
    assert _text(engine.complete(request)) == first  # restores the saved prefix: the same text
    assert engine.stats()["prefix_hits"] == hits + 1
    other_seeds = {_text(engine.complete(replace(request, config=replace(request.config, seed=s)))) for s in (12, 13)}
    assert other_seeds != {first}


class Ticket(pydantic.BaseModel):
    category: Literal["billing", "fraud", "access"]
    priority: int
    escalate: bool


@pytest.mark.embedded
def test_json_schema_output_validates(local_lm: dspy.LM):
    response_format = {"type": "json_schema", "name": "Ticket", "schema": Ticket.model_json_schema()}
    request = _ask(
        "Reply with a JSON support ticket.",
        "Someone used my card abroad.",
        max_tokens=40,
        response_format=response_format,
    )
    response = local_lm(request)
    Ticket.model_validate(json.loads(_text(response)))


@pytest.mark.embedded
def test_async_engine_runs_off_the_event_loop(local_lm: dspy.LM):
    engine = local_lm.engine
    request = Request(model=local_lm.model, messages=(Message.user("Say hi."),), config=Config(max_tokens=4))

    async def both():
        return await asyncio.gather(
            AsyncLlamaEngine(engine).complete(request), asyncio.to_thread(engine.complete, request)
        )

    first, second = asyncio.run(both())
    assert first.message.parts == second.message.parts and first.usage.output_tokens <= 4


def _cut_short() -> Request:
    schema = {"type": "json_schema", "name": "Ticket", "schema": Ticket.model_json_schema()}
    return _ask("Reply with a JSON support ticket.", "Someone used my card abroad.", max_tokens=3,
                response_format=schema)


@pytest.mark.embedded
def test_an_uncached_lm_raises_a_cut_off_structured_output_in_the_engine(local_lm: dspy.LM):
    with pytest.raises(OutputTruncated) as caught:
        local_lm.engine.complete(_cut_short())
    assert caught.value.max_tokens == 3


@pytest.mark.embedded
def test_a_cut_off_structured_output_is_cached_then_raised_again_from_the_cache(tmp_path: Path, models_dir: Path):
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    settings = LMSettings(local_model_size="0.5b", local_context=2048, max_tokens=48, models_dir=str(models_dir))
    lm = build_local_lm(settings)
    with ResponseCache(tmp_path / "cache") as cache, activate(cache):
        with pytest.raises(OutputTruncated):
            lm(_cut_short())
        assert cache.run_stats()["misses"] == 1
    with ResponseCache(tmp_path / "cache", mode="replay") as cache, activate(cache):
        with pytest.raises(OutputTruncated) as caught:
            lm(_cut_short())
        assert cache.run_stats()["hits"] == 1 and caught.value.max_tokens == 3
