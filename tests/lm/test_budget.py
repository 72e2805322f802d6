"""Budget: a clear stop once calls, tokens or dollars are spent; results finished before are kept."""

from __future__ import annotations

import threading

import pytest

from cscprog.errors import CscprogError
from cscprog.lm.budget import Budget, BudgetExceeded
from cscprog.lm.invoke import invoke
from cscprog.lm.runtime import Runtime
from cscprog.runs.manifest import build_manifest
from cscprog.testing import OpenAICompatibleServer
from tests.support_lm import KEY_ENV, SENTINEL_KEY, make_config, qa, tagged_answer


def test_max_calls_stops_with_a_clear_message():
    budget = Budget(max_calls=2)
    budget.before_call()
    budget.record({"prompt_tokens": 10, "completion_tokens": 5}, None)
    budget.before_call()
    with pytest.raises(BudgetExceeded) as caught:
        budget.before_call()
    error = caught.value
    assert isinstance(error, CscprogError)
    assert (error.limit, error.spent, error.maximum) == ("max_calls", 2, 2)
    message = str(error)
    assert "max_calls = 2 reached" in message and "2 live call(s) started" in message
    assert "15 tokens" in message and "1 call(s) of unknown cost" in message
    assert "results finished so far are kept" in message
    with pytest.raises(BudgetExceeded):  # stays stopped
        budget.before_call()
    assert budget.summary()["refused_calls"] == 2 and budget.summary()["exceeded"] == "max_calls"


def test_max_tokens_counts_finished_calls():
    budget = Budget(max_tokens=100)
    budget.before_call()
    budget.record({"prompt_tokens": 80, "completion_tokens": 30}, 0.001)
    with pytest.raises(BudgetExceeded, match=r"max_tokens = 100 reached .*110 tokens"):
        budget.before_call()


def test_max_usd_counts_known_costs_and_reports_unknown_ones():
    budget = Budget(max_usd=0.01)
    for cost in (0.004, None, 0.004, None):
        budget.before_call()
        budget.record({"prompt_tokens": 1}, cost)
    budget.before_call()  # $0.008 known: still under
    budget.record({}, 0.003)
    with pytest.raises(BudgetExceeded) as caught:
        budget.before_call()
    assert caught.value.limit == "max_usd"
    assert "$0.0100" in str(caught.value) and "2 call(s) of unknown cost" in str(caught.value)
    spent = budget.summary()["spent"]
    assert spent["unknown_cost_calls"] == 2 and spent["usd"] == pytest.approx(0.011)


def test_concurrent_callers_never_exceed_max_calls():
    budget = Budget(max_calls=50)
    allowed = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            try:
                budget.before_call()
            except BudgetExceeded:
                continue
            with lock:
                allowed.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 50 and budget.calls == 50


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError):
        Budget(max_calls=0)


def test_runtime_stops_a_run_at_the_budget_and_keeps_earlier_results(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
    with OpenAICompatibleServer(answer=tagged_answer("srv")) as server:
        runtime = Runtime(make_config(tmp_path / "cache", api_base=server.url, budget={"max_calls": 3}))
        results = []
        with runtime.activate(), pytest.raises(BudgetExceeded, match="max_calls = 3 reached") as caught:
            for index in range(6):
                results.append(invoke(qa(), role="supporter", question=f"q{index}").answer)
        assert results == ["srv:q0", "srv:q1", "srv:q2"]
        assert server.count == 3
        assert caught.value.limit == "max_calls"
        # cached answers stay free: the same questions are served without touching the budget
        with runtime.activate():
            again = [invoke(qa(), role="supporter", question=f"q{index}").answer for index in range(3)]
        assert again == results and server.count == 3
        assert build_manifest(runtime, command="test")["budget"]["exceeded"] == "max_calls"
        runtime.close()
