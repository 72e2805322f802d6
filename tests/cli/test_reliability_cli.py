"""Reliability of the run commands against the real loopback server with injected faults (issue 12).

Circuit breaker, replay without a key, one-command replay of a run that needed --resume, exact re-fetching after
cache loss, URL credentials kept out of every file, output paths that cannot be written.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from cscprog.cache import ResponseCache
from cscprog.cli import main
from cscprog.testing import OpenAICompatibleServer
from tests.cli.test_runs_cli import answer

KEY_VARIABLE = "CSCPROG_RELIABILITY_TEST_KEY"
KEY_VALUE = "sk-reliability-sentinel-42"


def _config(tmp_path: Path, server: OpenAICompatibleServer, *, api_base: str | None = None, key: bool = False,
            retries: int = 1, breaker: int = 10, concurrency: int = 1) -> Path:
    path = tmp_path / "cscprog.toml"
    lines = ["[lm]", 'model = "openai/test-model"', f'api_base = "{api_base or server.url}"', "temperature = 0.0",
             f"num_retries = {retries}", "timeout = 5"]
    if key:
        lines.append(f'api_key_env = "{KEY_VARIABLE}"')
    lines += ["[cache]", f'dir = "{tmp_path / "cache"}"', "[run]", f"concurrency = {concurrency}",
              f"max_consecutive_failures = {breaker}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    import cscprog.lm.invoke as invoke_module

    monkeypatch.setattr(invoke_module, "BASE_DELAY", 0.01)
    monkeypatch.delenv("CSCPROG_CACHE_DIR")  # each test's config names its cache


def _annotate(config: Path, output: Path, *extra: str) -> int:
    return main(["annotate", "sample:annotated_en", "-o", str(output), "--config", str(config), "--progress", "off",
                 *extra])


def _failures(output: Path) -> list[dict]:
    path = output.with_name(output.name + ".failures.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_circuit_breaker_stops_a_run_against_a_dead_provider(tmp_path, capsys):
    with OpenAICompatibleServer(answer=answer, faults=lambda index, body: "500") as server:
        config = _config(tmp_path, server, breaker=3)
        out = tmp_path / "out.jsonl"
        assert _annotate(config, out) == 1
        err = capsys.readouterr().err
        assert "circuit breaker: 3 items in a row failed with LMServerError" in err
        assert "To resume, run: cscprog annotate" in err and "--resume" in err
        failed = len(_failures(out))  # the breaker's 3, plus the item the worker had already taken
        assert 3 <= failed <= 4 and server.count == failed * 2  # one call each, retried once; 20+ items never ran
        manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
        assert manifest["run"]["exit_status"] == 1 and "circuit breaker" in manifest["run"]["stop_reason"]
    with OpenAICompatibleServer(answer=answer) as healthy:  # the provider is back: the resume command finishes
        _config(tmp_path, healthy, breaker=3)
        assert _annotate(config, out, "--resume") == 0


def test_a_rejected_key_stops_the_run_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY_VALUE)
    with OpenAICompatibleServer(answer=answer, faults=lambda index, body: "401") as server:
        config = _config(tmp_path, server, key=True)
        out = tmp_path / "out.jsonl"
        assert _annotate(config, out) == 1
        err = capsys.readouterr().err
        assert "rejected the credentials" in err and KEY_VARIABLE in err and "OPENAI_API_KEY" not in err
        assert server.count == 1 and len(_failures(out)) == 1 and KEY_VALUE not in err


def test_replay_needs_no_api_key(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY_VALUE)
    with OpenAICompatibleServer(answer=answer) as server:
        config = _config(tmp_path, server, key=True)
        first, again = tmp_path / "first.jsonl", tmp_path / "again.jsonl"
        assert _annotate(config, first) == 0
        monkeypatch.delenv(KEY_VARIABLE)
        before = server.count
        assert main(["--cache-mode", "replay", "annotate", "sample:annotated_en", "-o", str(again), "--config",
                     str(config), "--progress", "off"]) == 0
        assert server.count == before and again.read_bytes() == first.read_bytes()
        # the option ended with that command: outside replay the key is required again
        assert _annotate(config, tmp_path / "third.jsonl") == 2


def test_a_run_that_needed_resume_replays_in_one_command(tmp_path):
    broken = {"on": True}

    def faults(index, body):  # one dialogue's calls come back unparsable until the provider is fixed
        return "garbage" if broken["on"] and "Thank you for calling" in json.dumps(body) else None

    with OpenAICompatibleServer(answer=answer, faults=faults) as server:
        config = _config(tmp_path, server, retries=0, concurrency=4)
        out, replayed = tmp_path / "out.jsonl", tmp_path / "replayed.jsonl"
        assert _annotate(config, out) == 1
        failed = {record["item_id"] for record in _failures(out)}
        assert failed
        broken["on"] = False
        assert _annotate(config, out, "--resume") == 0
        manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
        assert manifest["run"]["rounds"] == dict.fromkeys(sorted(failed), 1)  # which round finished each
        before = server.count
        assert main(["--cache-mode", "replay", "annotate", "sample:annotated_en", "-o", str(replayed), "--config",
                     str(config), "--progress", "off"]) == 0
        assert server.count == before and replayed.read_bytes() == out.read_bytes()
        replay_manifest = json.loads(replayed.with_name(replayed.name + ".manifest.json").read_text())
        assert replay_manifest["run"]["rounds"] == manifest["run"]["rounds"]


def test_after_losing_half_the_cache_a_rerun_makes_only_the_missing_requests(tmp_path):
    with OpenAICompatibleServer(answer=answer) as server:
        config = _config(tmp_path, server, concurrency=4)
        first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
        assert _annotate(config, first) == 0
        with ResponseCache(tmp_path / "cache") as cache:
            keys = sorted(cache._store)
            lost = random.Random(12).sample(keys, len(keys) // 2)
            for key in lost:
                cache._store.delete(key)
        before = server.count
        assert _annotate(config, second) == 0
        assert server.count - before == len(lost) and second.read_bytes() == first.read_bytes()


def test_credentials_in_the_api_base_never_reach_a_file_or_the_terminal(tmp_path, capsys):
    with OpenAICompatibleServer(answer=answer, faults=lambda index, body: "500") as server:
        secret_base = server.url.replace("http://", "http://proxyuser:pr0xy-s3cret-pass@")
        config = _config(tmp_path, server, api_base=secret_base, breaker=2)
        out = tmp_path / "out.jsonl"
        assert main(["-v", "annotate", "sample:annotated_en", "-o", str(out), "--config", str(config)]) == 1
        captured = capsys.readouterr()
        written = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file() and path != config)
        assert b"pr0xy-s3cret-pass" not in written and b"proxyuser:" not in written
        assert "pr0xy-s3cret-pass" not in captured.err + captured.out
        manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
        assert "***@127.0.0.1" in manifest["config"]["lm"]["api_base"]
        assert (tmp_path / "cache" / "last_run.json").is_file() and _failures(out)


@pytest.mark.parametrize("kind", ["directory", "unwritable"])
def test_an_output_that_cannot_be_written_is_exit_2(tmp_path, capsys, kind):
    with OpenAICompatibleServer(answer=answer) as server:
        config = _config(tmp_path, server)
        if kind == "directory":
            out = tmp_path / "outdir"
            out.mkdir()
            expected = "is a directory"
        else:
            blocker = tmp_path / "blocker"
            blocker.write_text("a file, not a folder")
            out = blocker / "out.jsonl"
            expected = "cannot write the output"
        assert _annotate(config, out) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and server.count == 0
