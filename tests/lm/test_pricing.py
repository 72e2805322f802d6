from __future__ import annotations

import pytest
from dspy.clients import costs, model_metadata

from cscprog.lm import pricing


@pytest.fixture
def shipped():
    """DSPy's own lookup for the test; whatever was installed before is put back after."""
    was = pricing.installed()
    pricing.uninstall()
    yield model_metadata.model_info
    if was:
        pricing.install()


def test_memoized_lookup_answers_exactly_like_dspy(shipped):
    queries = [("openai", "gpt-4o-mini", None), ("openai", "no-such-model", None), ("vllm", "my/model", None),
               ("openai", "gpt-4o-mini", ("openai",)), ("openai", "gpt-4o-mini", ())]
    expected = [shipped(provider, model, namespaces=ns) for provider, model, ns in queries]
    assert expected[0] and not expected[1]  # a priced model and an unknown one
    assert pricing.install() and pricing.installed()
    assert costs.model_info is not shipped and model_metadata.model_info is not shipped
    for _ in range(2):  # the second round comes from the memo
        assert [costs.model_info(p, m, namespaces=ns) for p, m, ns in queries] == expected


def test_each_caller_gets_its_own_copy(shipped):
    pricing.install()
    first = costs.model_info("openai", "gpt-4o-mini")
    first["input_cost_per_token"] = 123.0
    assert costs.model_info("openai", "gpt-4o-mini")["input_cost_per_token"] != 123.0


def test_install_is_idempotent_and_uninstall_restores_dspy(shipped):
    assert pricing.install() and pricing.install()
    memoized = costs.model_info
    pricing.uninstall()
    assert costs.model_info is shipped and model_metadata.model_info is shipped and not pricing.installed()
    pricing.install()
    assert getattr(costs.model_info, "cscprog_memoized", False) and costs.model_info is not memoized


def test_a_runtime_installs_it(shipped, tmp_path):
    from cscprog.config import config_from_dict
    from cscprog.lm.runtime import Runtime

    runtime = Runtime(config_from_dict({"cache": {"dir": str(tmp_path / "cache")}}, environ={}))
    try:
        assert pricing.installed() and getattr(costs.model_info, "cscprog_memoized", False)
    finally:
        runtime.close()
