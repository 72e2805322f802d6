"""Role -> rate limiter routing, and limiters and a budget handed to the Runtime at construction."""

from __future__ import annotations

import pytest

from cscprog.cache import CallInfo
from cscprog.config import config_from_dict
from cscprog.lm.budget import Budget, BudgetExceeded
from cscprog.lm.routing import LimiterPlan, LimiterRouter, limiter_name
from cscprog.lm.runtime import Runtime


def _config(tmp_path):
    return config_from_dict({
        "lm": {"model": "openai/m", "api_base": "http://h:1/v1/", "requests_per_minute": 600},
        "roles": {"judge": {"requests_per_minute": 60, "tokens_per_minute": 1000},
                  "customer": {"model": "openai/other", "requests_per_minute": None}},
        "cache": {"dir": str(tmp_path / "cache")},
    })


def _call(role, model="openai/m", endpoint="http://h:1/v1"):
    return CallInfo(key="k", model=model, endpoint=endpoint, role=role, prompt_chars=40, max_tokens=10, n=1)


def test_the_plan_groups_roles_by_endpoint_and_model_with_the_smallest_limits(tmp_path):
    plan = LimiterPlan.from_config(_config(tmp_path))
    shared = limiter_name("openai/m", "http://h:1/v1")
    assert plan.specs == {shared: (60, 1000)}
    assert plan.by_role["judge"] == plan.by_role["supporter"] == shared
    assert "customer" not in plan.by_role


def test_the_router_answers_by_role_then_by_backend(tmp_path):
    plan = LimiterPlan.from_config(_config(tmp_path))
    router = LimiterRouter(plan, plan.local_limiters())
    shared = router.for_role("judge")
    assert shared is router.for_role("responder") and router(_call("supporter")) is shared
    assert router(_call("customer", model="openai/other")) is None  # a role without a limit
    assert router(_call(None)) is shared and router(_call(None, endpoint="http://elsewhere")) is None
    with pytest.raises(ValueError, match="no limiter given"):
        LimiterRouter(plan, {})


class _CountingLimiter:
    def __init__(self):
        self.acquired = 0

    def acquire(self, tokens=0, requests=1):
        self.acquired += requests
        return 0.0

    def reconcile(self, estimated, actual):
        pass


def test_the_runtime_takes_limiters_and_budget_at_construction(tmp_path):
    plan = LimiterPlan.from_config(_config(tmp_path))
    limiter = _CountingLimiter()
    budget = Budget(max_calls=1)
    runtime = Runtime(_config(tmp_path), limiters={name: limiter for name in plan.specs}, budget=budget)
    try:
        assert runtime.limiter("judge") is limiter and runtime.budget is budget and runtime.gate.budget is budget
        runtime.gate.before_call(_call("judge"))
        assert limiter.acquired == 1
        with pytest.raises(BudgetExceeded):
            runtime.gate.before_call(_call("judge"))
    finally:
        runtime.close()
