"""``cscprog arena`` on the embedded model: a plain chat candidate (system prompt + messages) meets one customer."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from cscprog.cli import main
from tests.agents.test_responder import _probe_embedded

PROMPT = Path(__file__).resolve().parents[2] / "examples" / "arena_agent.txt"


@pytest.mark.embedded
def test_a_chat_candidate_talks_to_one_customer_on_the_embedded_model(tmp_path: Path) -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    _probe_embedded(tmp_path / "cache")
    config = tmp_path / "embedded.toml"
    config.write_text(f'[lm]\nmodel = "local"\nlocal_model_size = "0.5b"\ntemperature = 0.0\nmax_tokens = 96\n'
                      f'[cache]\ndir = "{tmp_path / "cache"}"\n[run]\nseed = 1234\nconcurrency = 1\n')
    out = tmp_path / "arena"
    assert main(["arena", "-C", f"plain=chat:{PROMPT}", "-n", "1", "--topics", "risk management and security",
                 "--language", "en", "--turn-cap", "2", "--no-pairwise", "-o", str(out), "--config", str(config),
                 "--progress", "off", "--resamples", "100"]) == 0
    record = json.loads((out / "conversations.jsonl").read_text().splitlines()[0])
    agent, customer = record["dialogue"]["turns"]
    assert agent["speaker"] == "supporter" and agent["text"].strip() and customer["speaker"] == "customer"
    assert agent["metadata"]["strategy_source"] == "classifier"
    scores = record["scores"]
    assert scores["finish_reason"] == "cap" and isinstance(scores["resolved"], bool) and scores["resolution_reason"]
    assert scores["satisfaction"] in (1, 2, 3, 4, 5)
    result = json.loads((out / "result.json").read_text())
    assert result["counts"]["conversations"] == {"plain": 1} and (out / "report.md").is_file()
    manifest = json.loads((out / "conversations.jsonl.manifest.json").read_text())
    assert {"arena_agent", "customer", "arena_judge", "classifier"} <= set(manifest["roles"])
