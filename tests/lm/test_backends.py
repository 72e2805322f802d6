"""build_lm: any provider by config, keys from the environment, engine choice, real HTTP on 127.0.0.1."""

from __future__ import annotations

import os

import dspy
import pytest

from cscprog.config import LMSettings
from cscprog.errors import ConfigError
from cscprog.lm.backends import NO_KEY_PLACEHOLDER, build_lm, engine_in_use
from cscprog.testing import OpenAICompatibleServer, scripted_lm
from cscprog.testing.faults import GARBAGE_TEXT
from tests.support_lm import KEY_ENV, SENTINEL_KEY, tagged_answer


@pytest.fixture
def server():
    with OpenAICompatibleServer(answer=tagged_answer("srv")) as running:
        yield running


def test_litellm_cost_map_is_local():
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_openai_compatible_server_gets_the_key_from_the_named_variable(monkeypatch, tmp_path, server):
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    settings = LMSettings(model="openai/test-model", api_base=server.url, api_key_env=KEY_ENV, temperature=0.0)
    lm = build_lm(settings, cache_dir=tmp_path)
    assert lm.num_retries == 0 and lm.cache is True
    assert lm.kwargs["api_base"] == server.url and lm.kwargs["temperature"] == 0.0
    assert engine_in_use(lm) == "native"
    with dspy.context(lm=lm):
        assert dspy.Predict("question -> answer")(question="ping").answer == "srv:ping"
    assert server.requests[-1].headers["authorization"] == f"Bearer {SENTINEL_KEY}"
    assert server.requests[-1].body["model"] == "test-model"


def test_engines_auto_native_litellm_all_reach_the_server(monkeypatch, tmp_path, server):
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    seen = {}
    for engine in ("auto", "native", "litellm"):
        settings = LMSettings(model="openai/test-model", api_base=server.url, api_key_env=KEY_ENV, engine=engine)
        lm = build_lm(settings, cache_dir=tmp_path)
        with dspy.context(lm=lm):
            seen[engine] = (engine_in_use(lm), dspy.Predict("question -> answer")(question=engine).answer)
    assert seen == {
        "auto": ("native", "srv:auto"),
        "native": ("native", "srv:native"),
        "litellm": ("litellm", "srv:litellm"),
    }
    assert server.count == 3


def test_server_without_key_env_gets_a_placeholder_never_an_ambient_key(monkeypatch, tmp_path, server):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient-must-not-leak")
    lm = build_lm(LMSettings(model="openai/test-model", api_base=server.url), cache_dir=tmp_path)
    with dspy.context(lm=lm):
        dspy.Predict("question -> answer")(question="x")
    assert server.requests[-1].headers["authorization"] == f"Bearer {NO_KEY_PLACEHOLDER}"


def test_unset_key_variable_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV):
        build_lm(LMSettings(model="openai/gpt-4o-mini", api_key_env=KEY_ENV), cache_dir=tmp_path)


def test_forced_native_engine_refuses_a_provider_it_cannot_serve(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    settings = LMSettings(model="bedrock/anthropic.claude-3", engine="native", api_key_env=KEY_ENV)
    with pytest.raises(ConfigError, match="native"):
        build_lm(settings, cache_dir=tmp_path)
    auto = build_lm(settings.model_copy(update={"engine": "auto"}), cache_dir=tmp_path)
    assert engine_in_use(auto) == "litellm"


def test_any_litellm_model_string_builds_offline(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    for model in ("openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest", "ollama_chat/qwen2.5", "groq/llama3"):
        lm = build_lm(LMSettings(model=model, api_key_env=KEY_ENV, seed=7, max_tokens=64), cache_dir=tmp_path)
        assert lm.model == model and lm.kwargs["seed"] == 7 and lm.kwargs["max_tokens"] == 64
        assert SENTINEL_KEY not in repr(lm.dump_state())


def test_local_model_is_built_by_the_local_backend(monkeypatch, tmp_path):
    import cscprog.lm.backends.local as embedded

    calls = []

    def fake_build_local_lm(settings, **kwargs):
        calls.append((settings.model, kwargs))
        return "local-lm"

    monkeypatch.setattr(embedded, "build_local_lm", fake_build_local_lm)
    assert build_lm(LMSettings(), cache_dir=tmp_path) == "local-lm"
    assert calls == [("local", {"num_retries": 0, "cache": True})]


# --- the test doubles: one answering code for the scripted engine and the HTTP server ----------------------------


def test_scripted_engine_answers_chat_and_json_adapters_with_typed_fields():
    from typing import Literal

    class Rate(dspy.Signature):
        """Rate a reply."""

        reply: str = dspy.InputField()
        score: int = dspy.OutputField()
        label: Literal["good", "bad"] = dspy.OutputField()
        why: str = dspy.OutputField()

    lm = scripted_lm()
    for adapter in (dspy.ChatAdapter(), dspy.JSONAdapter()):
        with dspy.context(lm=lm, adapter=adapter):
            prediction = dspy.Predict(Rate)(reply="thanks")
        assert isinstance(prediction.score, int) and prediction.label == "good" and prediction.why.startswith("why-")
    formats = [request.format for request in lm.engine.requests]
    assert formats == ["chat", "json"]
    assert lm.engine.requests[0].inputs == {"reply": "thanks"}


def test_server_lists_models_and_injects_faults():
    import httpx

    with OpenAICompatibleServer(model_name="m1", faults=["429", "500", "garbage"], timeout_delay=0.0) as server:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/models").json()["data"][0]["id"] == "m1"
            body = {"model": "m1", "messages": [{"role": "user", "content": "hello"}]}
            limited = client.post("/chat/completions", json=body)
            assert limited.status_code == 429 and float(limited.headers["retry-after"]) > 0
            assert client.post("/chat/completions", json=body).status_code == 500
            garbage = client.post("/chat/completions", json=body).json()
            assert garbage["choices"][0]["message"]["content"] == GARBAGE_TEXT
            normal = client.post("/chat/completions", json=body, headers={"Authorization": "Bearer x"}).json()
            assert normal["usage"]["total_tokens"] > 0
        assert [request.path for request in server.requests][0] == "/v1/models"
        assert server.requests[-1].headers["authorization"] == "Bearer x"
        assert server.requests[-1].body == body
    assert server.count == 5


@pytest.mark.slow
def test_server_handles_100_calls_per_second_at_100ms_latency_and_concurrency_16():
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    local = threading.local()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with OpenAICompatibleServer(latency=0.1) as server:

        def call(_):
            client = getattr(local, "client", None) or httpx.Client(base_url=server.url, timeout=10)
            local.client = client
            assert client.post("/chat/completions", json=body).status_code == 200

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(call, range(16)))  # connections up
            began = time.perf_counter()
            list(pool.map(call, range(320)))
            rate = 320 / (time.perf_counter() - began)
    assert rate >= 100, f"{rate:.0f} calls/s"
