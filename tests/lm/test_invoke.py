"""invoke/ainvoke: transient retries with backoff, parse/validation retries with fresh rollouts, no silent defaults."""

from __future__ import annotations

import asyncio
import time

import dspy
import pytest
from dspy.utils.exceptions import LMRateLimitError, LMServerError, LMUnexpectedError

import cscprog.lm.invoke as invoke_module
from cscprog.context import current_runtime
from cscprog.errors import CscprogError
from cscprog.lm.invoke import GREEDY_RETRY_TEMPERATURE, GenerationFailure, ainvoke, backoff_delay, invoke
from cscprog.lm.runtime import Runtime
from cscprog.testing import Fault, OpenAICompatibleServer, scripted_lm
from cscprog.testing.faults import GARBAGE_TEXT
from tests.support_lm import make_config, qa, tagged_answer

LABELS = {"Empathy", "Apology"}


def scripted_runtime(tmp_path, lm, **lm_settings):
    return Runtime(make_config(tmp_path / "cache", **lm_settings), lm_factory=lambda role, settings: lm)


def spy_rollouts(runtime):
    """Record the rollout_id of every request the runtime's cache sees."""
    seen = []
    original = runtime.cache.get

    def get(request, ignored=None):
        seen.append(request.get("rollout_id"))
        return original(request, ignored)

    runtime.cache.get = get
    return seen


def label_validator(prediction):
    return None if prediction.answer in LABELS else f"label {prediction.answer!r} is not in the taxonomy"


# --- backoff --------------------------------------------------------------------------------------------------------


def test_backoff_honours_retry_after_and_otherwise_uses_full_jitter(monkeypatch):
    monkeypatch.setattr(invoke_module, "BASE_DELAY", 0.5)
    assert backoff_delay(0, 2.5) == 2.5
    assert backoff_delay(0, 10_000) == invoke_module.MAX_DELAY
    delays = [backoff_delay(3) for _ in range(200)]
    assert all(0.0 <= delay <= 4.0 for delay in delays) and max(delays) > 2.0 and min(delays) < 2.0
    assert all(backoff_delay(30) <= invoke_module.MAX_DELAY for _ in range(50))


# --- without a runtime ---------------------------------------------------------------------------------------------


def test_plain_dspy_configuration_works_without_a_runtime():
    lm = scripted_lm(lambda field, request: "Empathy")
    with dspy.context(lm=lm):
        assert current_runtime() is None
        assert invoke(qa(), role="classifier", question="hi").answer == "Empathy"
    assert lm.engine.calls == 1


# --- transient errors ----------------------------------------------------------------------------------------------


def test_transient_errors_are_retried_then_succeed(tmp_path):
    lm = scripted_lm(
        lambda field, request: "Apology",
        script=[LMRateLimitError("slow down", retry_after=0.01), LMServerError("boom", status=503)],
    )
    runtime = scripted_runtime(tmp_path, lm)
    with runtime.activate():
        assert invoke(qa(), role="classifier", question="q").answer == "Apology"
    assert lm.engine.calls == 3
    assert runtime.usage()["by_role"]["classifier"]["transient_retries"] == 2


def test_retry_after_is_honoured(tmp_path):
    lm = scripted_lm(script=[LMRateLimitError("slow down", retry_after=0.3)])
    runtime = scripted_runtime(tmp_path, lm)
    began = time.monotonic()
    with runtime.activate():
        invoke(qa(), role="judge", question="q")
    assert time.monotonic() - began >= 0.3


def test_transient_errors_beyond_num_retries_are_raised(tmp_path):
    lm = scripted_lm(script=[LMServerError("down", status=500)] * 3)
    runtime = scripted_runtime(tmp_path, lm, num_retries=2)
    with runtime.activate(), pytest.raises(LMServerError):
        invoke(qa(), role="judge", question="q")
    assert lm.engine.calls == 3


def test_non_transient_errors_are_not_retried(tmp_path):
    lm = scripted_lm(script=[ValueError("engine bug")])
    runtime = scripted_runtime(tmp_path, lm)
    with runtime.activate(), pytest.raises(LMUnexpectedError):
        invoke(qa(), role="judge", question="q")
    assert lm.engine.calls == 1


@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_http_429_500_and_timeout_are_retried_then_succeed(tmp_path, key, engine):
    faults = [Fault("429", retry_after=0.05), "500", Fault("timeout", delay=2.0)]
    with OpenAICompatibleServer(answer=tagged_answer("srv"), faults=faults) as server:
        config = make_config(tmp_path / "cache", api_base=server.url, engine=engine, timeout=0.5)
        runtime = Runtime(config)
        with runtime.activate():
            assert invoke(qa(), role="customer", question="hello").answer == "srv:hello"
        assert [request.fault for request in server.requests] == ["429", "500", "timeout", None]
        assert runtime.usage()["by_role"]["customer"]["transient_retries"] == 3
        assert runtime.usage()["by_role"]["customer"]["live_calls"] == 1
        runtime.close()


# --- parse failures and validation ---------------------------------------------------------------------------------


def test_parse_failures_retry_with_distinct_rollouts_then_fail_with_the_raw_text(tmp_path, key):
    with OpenAICompatibleServer(answer=tagged_answer("srv"), faults=lambda index, body: "garbage") as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url))
        rollouts = spy_rollouts(runtime)
        with runtime.activate(), pytest.raises(GenerationFailure) as caught:
            invoke(qa(), role="classifier", attempts=3, question="q")
        failure = caught.value
        assert isinstance(failure, CscprogError)
        assert failure.role == "classifier" and failure.attempts == 3
        assert failure.raw_text == GARBAGE_TEXT
        assert "did not parse" in failure.reason and "classifier" in str(failure)
        # each attempt = the ChatAdapter call + DSPy's JSONAdapter fallback, each attempt its own cache entry
        assert rollouts == [None, None, 1, 1, 2, 2]
        temperatures = [request.body["temperature"] for request in server.requests]
        assert temperatures == [0.0, 0.0] + [GREEDY_RETRY_TEMPERATURE] * 4  # a greedy role's retries sample
        usage = runtime.usage()["by_role"]["classifier"]
        assert usage["parse_retries"] == 2 and usage["failures"] == 1
        # the failed attempts are cached, yet a rerun neither succeeds silently nor calls the server again
        with runtime.activate(), pytest.raises(GenerationFailure):
            invoke(qa(), role="classifier", attempts=3, question="q")
        assert server.count == 6
        runtime.close()


def test_parse_failure_then_success_on_a_new_rollout(tmp_path, key):
    with OpenAICompatibleServer(answer=tagged_answer("srv"), faults=["garbage", "garbage"]) as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url))
        with runtime.activate():
            assert invoke(qa(), role="judge", question="q").answer == "srv:q"
        assert server.count == 3
        runtime.close()


def test_validation_rejections_retry_until_a_valid_label(tmp_path):
    # the retry keeps the temperature and varies the rollout (and the seed: 1 + rollout)
    lm = scripted_lm(lambda field, request: "Empathy" if request.seed == 2 else "Shrug", seed=1)
    runtime = scripted_runtime(tmp_path, lm)
    with runtime.activate():
        prediction = invoke(qa(), role="classifier", validate=label_validator, question="q")
    assert prediction.answer == "Empathy"
    assert lm.engine.calls == 2
    assert runtime.usage()["by_role"]["classifier"]["invalid_retries"] == 1


def test_validation_failure_is_never_a_silent_default(tmp_path):
    lm = scripted_lm(lambda field, request: "Shrug")
    runtime = scripted_runtime(tmp_path, lm)
    with runtime.activate(), pytest.raises(GenerationFailure) as caught:
        invoke(qa(), role="classifier", attempts=2, validate=label_validator, question="q")
    assert "'Shrug' is not in the taxonomy" in caught.value.reason
    assert caught.value.raw_text == "[[ ## answer ## ]]\nShrug\n\n[[ ## completed ## ]]"
    assert lm.engine.calls == 2


def test_raw_text_is_kept_with_dspy_history_off(tmp_path):
    lm = scripted_lm(lambda field, request: "Shrug")
    runtime = scripted_runtime(tmp_path, lm)
    with runtime.activate(), dspy.context(disable_history=True), pytest.raises(GenerationFailure) as caught:
        invoke(qa(), role="classifier", attempts=2, validate=label_validator, question="q")
    assert caught.value.raw_text == "[[ ## answer ## ]]\nShrug\n\n[[ ## completed ## ]]"


def test_raw_text_is_truncated(tmp_path):
    lm = scripted_lm(lambda field, request: "x" * 10_000)
    runtime = scripted_runtime(tmp_path, lm)
    with runtime.activate(), pytest.raises(GenerationFailure) as caught:
        invoke(qa(), role="judge", attempts=1, validate=lambda prediction: "too long", question="q")
    assert len(caught.value.raw_text) < invoke_module.RAW_TEXT_LIMIT + 20
    assert len(str(caught.value)) < 500


def test_attempts_must_be_positive():
    with pytest.raises(ValueError):
        invoke(qa(), role="judge", attempts=0, question="q")


# --- async ---------------------------------------------------------------------------------------------------------


def test_ainvoke_retries_like_invoke(tmp_path):
    lm = scripted_lm(
        lambda field, request: "Empathy" if request.seed == 2 else "Shrug",
        seed=1,
        script=[LMRateLimitError("slow down", retry_after=0.01)],
    )
    runtime = scripted_runtime(tmp_path, lm)

    async def main():
        with runtime.activate():
            return await ainvoke(qa(), role="classifier", validate=label_validator, question="q")

    assert asyncio.run(main()).answer == "Empathy"
    usage = runtime.usage()["by_role"]["classifier"]
    assert usage["transient_retries"] == 1 and usage["invalid_retries"] == 1


def test_ainvoke_over_http(tmp_path, key):
    with OpenAICompatibleServer(answer=tagged_answer("srv"), faults=["500"]) as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url))

        async def main():
            with runtime.activate():
                return await asyncio.gather(*(ainvoke(qa(), role="judge", question=f"q{i}") for i in range(4)))

        answers = [prediction.answer for prediction in asyncio.run(main())]
        assert answers == [f"srv:q{i}" for i in range(4)]
        assert server.count == 5
        runtime.close()


def test_a_truncated_output_is_retried_with_twice_the_budget_never_parsed(tmp_path):
    from cscprog.cache.truncation import OutputTruncated

    lm = scripted_lm(lambda field, request: "Empathy",
                     script=[OutputTruncated("cut off", max_tokens=300), OutputTruncated("cut off", max_tokens=600)])
    runtime = scripted_runtime(tmp_path, lm)
    with runtime.activate():
        prediction = invoke(qa(), role="classifier", max_tokens=300, question="q")
    assert prediction.answer == "Empathy"
    assert [request.max_tokens for request in lm.engine.requests] == [300, 600, 1200]
    assert runtime.usage()["by_role"]["classifier"]["truncated_retries"] == 2
