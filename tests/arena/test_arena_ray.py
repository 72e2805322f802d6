"""``cscprog arena --engine ray`` on a local 2-CPU Ray: the same conversations, pairs and result as a local run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from cscprog.cli import main  # noqa: E402
from cscprog.testing import OpenAICompatibleServer  # noqa: E402
from tests.arena.support import ArenaScript  # noqa: E402


@pytest.mark.slow
def test_a_ray_arena_writes_the_bytes_of_a_local_one(tmp_path: Path, ray_cluster: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSCPROG_CACHE_DIR")  # each run its own cache: both really call the server
    prompt = tmp_path / "agent.txt"
    prompt.write_text("You are a bank's support agent.\n", encoding="utf-8")
    with OpenAICompatibleServer(answer=ArenaScript(), latency=0.001) as server:
        outputs = {}
        for engine in ("local", "ray"):
            config = tmp_path / f"{engine}.toml"
            config.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                              f'[cache]\ndir = "{tmp_path / ("cache-" + engine)}"\n[run]\nconcurrency = 2\nseed = 7\n')
            outputs[engine] = tmp_path / engine
            assert main(["arena", "-C", "base=program", "-C", f"plain=chat:{prompt}", "-n", "2", "--turn-cap", "6",
                         "-o", str(outputs[engine]), "--config", str(config), "--progress", "off",
                         "--resamples", "100", "--engine", engine]) == 0
    for name in ("customers.jsonl", "conversations.jsonl", "pairs.jsonl"):
        assert (outputs["ray"] / name).read_bytes() == (outputs["local"] / name).read_bytes(), name
    manifest = json.loads((outputs["ray"] / "conversations.jsonl.manifest.json").read_text())
    assert manifest["run"]["engine"]["name"] == "ray" and manifest["run"]["done"] == 4
    local, remote = (json.loads((outputs[e] / "result.json").read_text()) for e in ("local", "ray"))
    assert remote["summary"] == local["summary"] and remote["pairwise"] == local["pairwise"]
