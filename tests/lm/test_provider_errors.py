"""Provider errors against the real loopback server: unusable 200 replies are retried, messages name our settings."""

from __future__ import annotations

import pytest
from dspy.utils.exceptions import LMAuthError, LMInvalidRequestError, LMProviderError, LMServerError

from cscprog.lm.invoke import invoke
from cscprog.lm.provider_errors import is_transient
from cscprog.lm.runtime import Runtime
from cscprog.testing import Fault, OpenAICompatibleServer
from tests.support_lm import KEY_ENV, SENTINEL_KEY, make_config, qa, tagged_answer


def test_unusable_success_replies_are_transient_and_client_errors_are_not():
    assert is_transient(LMProviderError("the reply (HTTP 200, application/json, 0 bytes) is not JSON", status=200))
    assert is_transient(LMServerError("boom", status=500))
    assert not is_transient(LMProviderError("gone", status=404))
    assert not is_transient(LMInvalidRequestError("bad request", status=400))
    assert not is_transient(ValueError("not an LM error"))


@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_malformed_and_empty_200_replies_are_retried_like_a_5xx(tmp_path, key, engine):
    with OpenAICompatibleServer(answer=tagged_answer("srv"), faults=["malformed", "empty", "malformed"]) as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url, engine=engine))
        with runtime.activate():
            assert invoke(qa(), role="judge", question="hello").answer == "srv:hello"
        assert [request.fault for request in server.requests] == ["malformed", "empty", "malformed", None]
        assert runtime.usage()["by_role"]["judge"]["transient_retries"] == 3
        runtime.close()


def test_unusable_replies_beyond_num_retries_fail_the_call(tmp_path, key):
    with OpenAICompatibleServer(faults=lambda index, body: "empty") as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url, num_retries=2))
        with runtime.activate(), pytest.raises(LMProviderError, match="not JSON"):
            invoke(qa(), role="judge", question="hello")
        assert server.count == 3  # the first try and two retries, no more
        runtime.close()


def test_a_rejected_key_names_the_configured_variable_not_openai_api_key(tmp_path, key):
    with OpenAICompatibleServer(faults=["401"]) as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url))
        with runtime.activate(), pytest.raises(LMAuthError) as info:
            invoke(qa(), role="customer", question="hello")
        message = str(info.value)
        assert KEY_ENV in message and "api_key_env" in message and "OPENAI_API_KEY" not in message
        assert "Incorrect API key provided" in message and SENTINEL_KEY not in message
        assert server.count == 1  # a rejected key is not retried
        runtime.close()


def test_a_timeout_names_the_lm_timeout_setting(tmp_path, key):
    with OpenAICompatibleServer(faults=[Fault("timeout", delay=1.5)]) as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url, timeout=0.3, num_retries=0))
        with runtime.activate(), pytest.raises(Exception) as info:
            invoke(qa(), role="judge", question="hello")
        message = str(info.value)
        assert "timeout in [lm]" in message and "0.3 s" in message and "Timeouts(" not in message
        runtime.close()
