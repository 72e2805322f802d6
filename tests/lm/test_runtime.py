"""Runtime: LMs per role from config, provider swap by config, record/replay, endpoints apart, rate limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import dspy
import pytest

from cscprog.cache import CacheMissError
from cscprog.config import ROLES
from cscprog.context import current_runtime
from cscprog.errors import ConfigError
from cscprog.lm.invoke import invoke
from cscprog.lm.runtime import Runtime
from cscprog.testing import OpenAICompatibleServer, scripted_lm
from tests.support_lm import KEY_ENV, SENTINEL_KEY, make_config, qa, tagged_answer


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)


@pytest.fixture
def servers():
    with (
        OpenAICompatibleServer(answer=tagged_answer("A")) as first,
        OpenAICompatibleServer(answer=tagged_answer("B")) as second,
    ):
        yield first, second


def ask(runtime, questions, role="supporter"):
    with runtime.activate():
        return [invoke(qa(), role=role, question=question).answer for question in questions]


# --- LMs per role --------------------------------------------------------------------------------------------------


def test_lms_are_built_lazily_per_role_and_shared_when_settings_are_equal(tmp_path, key):
    config = make_config(tmp_path / "c", api_base="http://127.0.0.1:9/v1", roles={"judge": {"temperature": 0.7}})
    runtime = Runtime(config)
    assert runtime.roles_used() == {}
    customer, supporter, judge = runtime.lm("customer"), runtime.lm("supporter"), runtime.lm("judge")
    assert customer is supporter and customer is runtime.lm("customer")
    assert judge is not customer and judge.kwargs["temperature"] == 0.7
    assert set(runtime.roles_used()) == {"customer", "supporter", "judge"}
    assert runtime.roles_used()["judge"]["endpoint"] == "http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match="unknown role"):
        runtime.lm("narrator")


def test_lm_factory_is_called_once_per_role(tmp_path):
    built = []

    def factory(role, settings):
        built.append((role, settings.model))
        return scripted_lm(lambda field, request, role=role: role, model=f"scripted/{role}")

    runtime = Runtime(make_config(tmp_path / "c"), lm_factory=factory)
    with runtime.activate():
        assert current_runtime() is runtime
        assert dspy.settings.lm is runtime.lm("responder")
        answers = {role: invoke(qa(), role=role, question="q").answer for role in ("customer", "supporter")}
        with runtime.role("judge") as lm:
            assert dspy.settings.get("cscprog_role") == "judge" and dspy.settings.lm is lm
    assert current_runtime() is None
    assert answers == {"customer": "customer", "supporter": "supporter"}
    assert built == [
        ("responder", "openai/test-model"),
        ("customer", "openai/test-model"),
        ("supporter", "openai/test-model"),
        ("judge", "openai/test-model"),
    ]
    assert set(runtime.usage()["by_role"]) == {"customer", "supporter"}


def test_from_config_reads_a_toml_file(tmp_path, monkeypatch):
    path = tmp_path / "cscprog.toml"
    path.write_text(
        '[lm]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "TEST_LLM_API_KEY"\n'
        f'[cache]\ndir = "{tmp_path / "cache"}"\nmode = "off"\n'
        '[roles.judge]\nmodel = "anthropic/claude-3-5-haiku-latest"\n',
        encoding="utf-8",
    )
    monkeypatch.delenv("CSCPROG_CACHE_DIR", raising=False)
    runtime = Runtime.from_config(path)
    assert runtime.cache.mode == "off"
    assert runtime.settings("judge").model == "anthropic/claude-3-5-haiku-latest"
    assert runtime.settings("customer").model == "openai/gpt-4o-mini"
    assert all(runtime.settings(role).api_key_env == "TEST_LLM_API_KEY" for role in ROLES)


# --- real HTTP on 127.0.0.1 ----------------------------------------------------------------------------------------


def test_provider_swap_is_a_config_edit(tmp_path, key, servers):
    first, second = servers
    config = make_config(tmp_path / "cache", api_base=first.url)
    assert ask(Runtime(config), ["hello"]) == ["A:hello"]
    edited = config.model_copy(update={"lm": config.lm.model_copy(update={"api_base": second.url})})
    assert ask(Runtime(edited), ["hello"]) == ["B:hello"]
    assert (first.count, second.count) == (1, 1)


def test_two_endpoints_with_the_same_model_name_are_kept_apart(tmp_path, key, servers):
    first, second = servers
    cache_dir = tmp_path / "shared-cache"
    on_first = Runtime(make_config(cache_dir, api_base=first.url))
    on_second = Runtime(make_config(cache_dir, api_base=second.url))
    assert ask(on_first, ["same prompt"]) == ["A:same prompt"]
    assert ask(on_second, ["same prompt"]) == ["B:same prompt"]  # not A's cached answer
    assert ask(on_first, ["same prompt"]) == ["A:same prompt"]  # A's entry still there
    assert (first.count, second.count) == (1, 1)
    assert on_first.usage()["total"]["cache_hits"] == 1


def test_record_then_replay_with_the_server_stopped(tmp_path, key):
    questions = [f"question {index}" for index in range(5)]
    cache_dir = tmp_path / "cache"
    with OpenAICompatibleServer(answer=tagged_answer("srv")) as server:
        url = server.url
        recorder = Runtime(make_config(cache_dir, api_base=url))
        recorded = ask(recorder, questions, role="customer")
        recorder.close()
        served = server.count
    assert served == 5
    replayer = Runtime(make_config(cache_dir, api_base=url, mode="replay"))
    assert ask(replayer, questions, role="customer") == recorded
    assert server.count == served  # zero new requests (the server is gone anyway)
    usage = replayer.usage()["by_role"]["customer"]
    assert usage["cache_hits"] == 5 and usage["live_calls"] == 0
    assert usage["saved_prompt_tokens"] > 0 and usage["saved_completion_tokens"] > 0
    with pytest.raises(CacheMissError, match="customer"):
        ask(replayer, ["a question never recorded"], role="customer")
    replayer.close()


def test_rate_limit_is_shared_by_all_threads(tmp_path, key):
    with OpenAICompatibleServer(answer=tagged_answer("srv")) as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url, requests_per_minute=600))  # 10/s

        def worker(index):
            with runtime.activate():
                return invoke(qa(), role="supporter", question=f"q{index}").answer

        began = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(worker, range(25)))
        elapsed = time.monotonic() - began
        assert answers == [f"srv:q{index}" for index in range(25)]
        assert elapsed >= (25 - 10) / 10 - 0.05  # a full bucket (one second: 10 calls) at once, then 10/s
        arrivals = sorted(request.time for request in server.requests)
        # The bucket holds 10 calls and refills at 10/s, so calls i and i + 20 are at least a second apart at the
        # server, however late the machine lets either of them start (a late start only spreads them further).
        assert min(later - earlier for earlier, later in zip(arrivals, arrivals[20:], strict=False)) >= 0.9
        assert runtime.limiter("supporter") is runtime.limiter("customer")  # same endpoint + model
        assert runtime.gate.waited_seconds > 0
        runtime.close()
