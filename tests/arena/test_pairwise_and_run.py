"""Pairs judged in both orders, trials, and a whole arena run through the runner (resume, outputs, report)."""

from __future__ import annotations

import json

import dspy
import pytest

from cscprog.agents.responder import ResponseGenerator
from cscprog.arena import ArenaSettings, ModuleCandidate, run_arena
from cscprog.framework import load_taxonomy
from cscprog.rolecs.plan import synthesis_plan
from cscprog.testing import scripted_lm
from tests.arena.support import AlwaysCloses, ArenaScript, NeverResolves, make_profiles

CSC = load_taxonomy("csc")


def run(tmp_path, script, candidates, **options):
    plan = synthesis_plan(make_profiles(2), ["risk management and security"], seed=7)
    settings = ArenaSettings(output_dir=tmp_path / "arena", resamples=200, **options)
    lm = scripted_lm(script)
    with dspy.context(lm=lm):
        return run_arena(candidates, plan, settings, CSC), lm


def test_every_pair_is_judged_in_both_orders_and_a_biased_judge_is_inconsistent(tmp_path):
    script = ArenaScript(pair_mode="first")
    base = ModuleCandidate("base", ResponseGenerator(CSC), CSC)
    outcome, lm = run(tmp_path, script, [base, NeverResolves()])
    pairs = [json.loads(line) for line in (tmp_path / "arena" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 2
    compares = [r for r in lm.engine.requests if "better" in r.outputs]
    assert len(compares) == 4  # two customers x two orders
    for pair in pairs:
        assert (pair["ab"]["better"], pair["ab"]["winner"]) == ("first", "a")
        assert (pair["ba"]["better"], pair["ba"]["winner"]) == ("first", "b")
        assert not pair["consistent"] and pair["outcome"] == "tie"
    # the two orders really showed the two conversations swapped
    firsts = {r.inputs["first"] for r in compares}
    seconds = {r.inputs["second"] for r in compares}
    assert firsts == seconds and len(firsts) == 2
    summary = outcome.result["pairwise"][0]
    assert summary["position_consistency"]["estimate"] == 0.0 and summary["tie"]["estimate"] == 1.0


def test_a_content_judge_prefers_the_resolving_candidate_in_both_orders(tmp_path):
    base = ModuleCandidate("base", ResponseGenerator(CSC), CSC)
    outcome, _ = run(tmp_path, ArenaScript(), [base, NeverResolves()])
    pair = outcome.result["pairwise"][0]
    assert (pair["a"], pair["b"]) == ("base", "stall")
    assert pair["win"]["estimate"] == 1.0 and pair["position_consistency"]["estimate"] == 1.0
    summary = outcome.result["summary"]
    assert summary["base"]["scores"]["resolved"]["estimate"] == 1.0
    assert summary["stall"]["scores"]["resolved"]["estimate"] == 0.0
    assert summary["stall"]["pass_hat_k"]["1"]["estimate"] == 0.0
    report = outcome.report_path.read_text()
    assert "| resolved | 100.0%" in report and "pass^1" in report and "base vs stall" in report
    for name in ("customers.jsonl", "conversations.jsonl", "pairs.jsonl", "result.json",
                 "resolution_by_topic.png", "strategy_flow.png", "conversations.jsonl.manifest.json"):
        assert (tmp_path / "arena" / name).is_file(), name


def test_resume_makes_no_new_call_and_trials_are_fresh_samples(tmp_path):
    script = ArenaScript()
    outcome, lm = run(tmp_path, script, [NeverResolves()], trials=2, pairwise=False, turn_cap=4)
    assert outcome.exit_status == 0
    summary = outcome.result["summary"]["stall"]
    assert summary["trials_per_customer"] == 2 and set(summary["pass_hat_k"]) == {"1", "2"}
    # the customer's prompts are the same in both trials, yet trial 1 asked the model again (a fresh sample) ...
    directions = [r for r in lm.engine.requests if "direction" in r.outputs]
    assert len(directions) == 2 * 2 * 2  # customers x trials x customer turns
    # ... while the judge, shown the same transcript, answered once per customer (a verdict depends on the text)
    assert len([r for r in lm.engine.requests if "resolved" in r.outputs]) == 2
    again, lm2 = run(tmp_path, script, [NeverResolves()], trials=2, pairwise=False, turn_cap=4, resume=True)
    assert lm2.engine.calls == 0 and again.result["summary"] == outcome.result["summary"]


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(Exception, match="unique"):
        run(tmp_path, ArenaScript(), [AlwaysCloses(), AlwaysCloses()])


def test_the_stage_work_pickles_for_ray_workers(tmp_path):
    import cloudpickle

    from cscprog.arena.run import _Stages
    from cscprog.runs import ThreadEngine

    settings = ArenaSettings(output_dir=tmp_path, language="en", engine=ThreadEngine(),
                             progress=lambda stage: None)  # neither travels to a worker
    stages = _Stages(CSC, settings)
    for work in (stages.plan, stages.converse, stages.compare):
        copy = cloudpickle.loads(cloudpickle.dumps(work))
        assert copy.__self__.language == "en" and copy.__self__.taxonomy.name == CSC.name
