"""The turn-level pairwise judge on the embedded model: both orders, every criterion, a summary with intervals."""

from __future__ import annotations

import importlib.util

import dspy
import pytest
from cscprog.signatures import PAIR_CRITERIA

from cscprog.config import config_from_dict
from cscprog.evaluation.pairwise import PairTurn, PairwiseJudge, judge_pairs, read_pair_records, summarize_pairs
from cscprog.framework import load_taxonomy
from cscprog.lm.runtime import Runtime
from cscprog.samples import load_sample
from tests.agents.test_responder import _probe_embedded

CSC = load_taxonomy("csc")


@pytest.mark.embedded
def test_embedded_model_judges_two_turns_in_both_orders(tmp_path):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from cscprog.lm.local.engine import recommended_adapter

    _probe_embedded(tmp_path / "cache")
    dialogue = load_sample("annotated_en")[0]
    turns = []
    for index in dialogue.supporter_indices()[1:3]:
        gold = dialogue.turns[index]
        turns.append(PairTurn(dialogue.id, index, dialogue.transcript(index, strategies=False),
                              CSC.strategy(gold.strategy).describe("en"), "en", "OK.", gold.text))
    config = config_from_dict({
        "lm": {"model": "local", "local_model_size": "0.5b", "max_tokens": 400, "seed": 7},
        "cache": {"dir": str(tmp_path / "cache")},
    })
    runtime = Runtime(config)
    output = tmp_path / "pairs.jsonl"
    try:
        with runtime.activate(), dspy.context(adapter=recommended_adapter()):
            result = judge_pairs(PairwiseJudge(CSC), turns, output=output, concurrency=1, runtime=runtime)
    finally:
        runtime.close()
    assert result.exit_status == 0, result.summary()
    records = read_pair_records(output)
    assert [r["turn_id"] for r in records] == [t.turn_id for t in turns]
    for record in records:
        assert set(record["verdicts"]) == set(PAIR_CRITERIA)
        for verdict in record["verdicts"].values():
            assert {verdict["ab"], verdict["ba"], verdict["final"]} <= {"A", "B", "tie"}
            assert verdict["consistent"] == (verdict["ab"] == verdict["ba"])
    summary = summarize_pairs(records, resamples=200)
    assert summary["n"] == 2 and 0.0 <= summary["position_consistency"]["estimate"] <= 1.0
    assert runtime.usage()["by_role"]["pair_judge"]
