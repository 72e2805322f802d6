"""Trials: from trial 1 on every call is a fresh sample with its own cache entry; trial 0 is the plain call."""

from __future__ import annotations

import dspy
import pytest

from cscprog.context import current_trial, trial_context
from cscprog.lm.invoke import TRIAL_STRIDE, invoke
from cscprog.lm.runtime import Runtime
from cscprog.testing import scripted_lm
from tests.support_lm import make_config

QA = "question -> answer"


def ask(question: str = "Where is my card?", role: str = "responder") -> str:
    return invoke(dspy.Predict(QA), role=role, question=question).answer


def test_trial_zero_is_the_plain_call_and_later_trials_are_fresh_and_cached():
    lm = scripted_lm(lambda field, request: f"answer {request.index}", temperature=0.7)
    with dspy.context(lm=lm):
        plain = ask()
        with trial_context(0):
            assert current_trial() == 0 and ask() == plain
        assert lm.engine.calls == 1
        with trial_context(1):
            first = ask()
            assert ask() == first  # a trial's calls are cached like any other
        with trial_context(2):
            second = ask()
    assert lm.engine.calls == 3 and len({plain, first, second}) == 3
    assert current_trial() == 0
    with pytest.raises(ValueError):
        with trial_context(-1):
            pass


def test_on_the_embedded_model_a_trial_also_shifts_the_seed(tmp_path):
    lm = scripted_lm()
    config = make_config(tmp_path / "cache", model="local", roles={"judge": {"model": "openai/test-model"}})
    runtime = Runtime(config, lm_factory=lambda role, settings: lm)
    with runtime.activate():
        with trial_context(3):
            ask("a", role="responder")  # local: seed shifted by the trial
            ask("b", role="judge")  # a remote endpoint: no seed is sent
        ask("c", role="responder")
    seeds = [request.seed for request in lm.engine.requests]
    assert seeds == [3, None, None]
    assert TRIAL_STRIDE > 1000  # retries of one trial never reach the next trial's rollout ids
    runtime.close()
