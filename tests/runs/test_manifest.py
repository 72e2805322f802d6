"""Run manifests: complete, JSON, atomic, deterministic apart from time, and never holding an API key."""

from __future__ import annotations

import json
import time

import dspy
import pytest

from cscprog.lm.invoke import invoke
from cscprog.lm.runtime import Runtime
from cscprog.runs.manifest import build_manifest, redact, secret_values, write_manifest
from cscprog.testing import OpenAICompatibleServer, scripted_lm
from tests.support_lm import KEY_ENV, SENTINEL_KEY, all_bytes, make_config, qa, tagged_answer

TIME_KEYS = {"started", "finished", "duration_s"}


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)


def scripted_runtime(tmp_path):
    return Runtime(make_config(tmp_path / "cache"), lm_factory=lambda role, settings: scripted_lm())


def test_manifest_describes_the_run(tmp_path):
    runtime = scripted_runtime(tmp_path)
    started = time.time()
    with runtime.activate():
        invoke(qa(), role="judge", question="q1")
        invoke(qa(), role="judge", question="q1")
    manifest = build_manifest(
        runtime, command="cscprog judge", inputs={"data": "dev.jsonl"}, outputs={"n": 1}, seed=7, started=started
    )
    assert manifest["command"] == "cscprog judge" and manifest["seed"] == 7
    assert manifest["inputs"] == {"data": "dev.jsonl"} and manifest["outputs"] == {"n": 1}
    assert set(manifest["versions"]) == {"cscprog", "dspy", "litellm", "python"}
    assert manifest["versions"]["dspy"] == dspy.__version__
    assert manifest["roles"]["judge"]["model"] == "scripted/model"
    assert manifest["roles"]["judge"]["engine"] == "custom"
    cache = manifest["cache"]
    assert cache["mode"] == "readwrite" and cache["dir"] == str(tmp_path / "cache")
    assert (cache["hits"], cache["misses"]) == (1, 1)
    judge = manifest["usage"]["by_role"]["judge"]
    assert judge["live_calls"] == 1 and judge["cache_hits"] == 1 and judge["saved_prompt_tokens"] > 0
    assert manifest["config"]["lm"]["api_key_env"] == KEY_ENV
    assert manifest["started"].endswith("Z") and manifest["duration_s"] >= 0
    runtime.close()


def test_manifests_of_identical_runs_differ_only_in_time(tmp_path):
    first = build_manifest(scripted_runtime(tmp_path / "one"), command="x", seed=1, started=100.0)
    second = build_manifest(scripted_runtime(tmp_path / "one"), command="x", seed=1, started=200.0)
    assert {k: v for k, v in first.items() if k not in TIME_KEYS} == {
        k: v for k, v in second.items() if k not in TIME_KEYS
    }


def test_write_manifest_is_atomic_sorted_json(tmp_path):
    runtime = scripted_runtime(tmp_path)
    path = write_manifest(tmp_path / "out" / "manifest.json", build_manifest(runtime, command="x", extra_note="hello"))
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["extra"] == {"extra_note": "hello"}
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temporary file left behind


def test_redaction_replaces_every_secret_occurrence():
    secrets = secret_values(environ={"SOME_SERVICE_TOKEN": "tok-abcdef123", "HOME": "/root"})
    assert secrets == {"tok-abcdef123"}
    data = {"a": ["x tok-abcdef123 y"], "tok-abcdef123": 1, "n": 3}
    assert redact(data, secrets) == {"a": ["x *** y"], "***": 1, "n": 3}


def test_api_key_reaches_the_server_but_never_the_cache_or_the_manifest(tmp_path, key):
    cache_dir = tmp_path / "cache"
    with OpenAICompatibleServer(answer=tagged_answer("srv")) as server:
        runtime = Runtime(make_config(cache_dir, api_base=server.url, roles={"judge": {"engine": "litellm"}}))
        with runtime.activate():
            answers = [invoke(qa(), role=role, question="q") for role in ("customer", "judge")]
        assert [prediction.answer for prediction in answers] == ["srv:q", "srv:q"]
        assert {request.headers["authorization"] for request in server.requests} == {f"Bearer {SENTINEL_KEY}"}
        # a careless caller puts the key into the manifest: it is redacted anyway
        manifest = build_manifest(runtime, command="test", note=f"key={SENTINEL_KEY}")
        path = write_manifest(tmp_path / "run" / "manifest.json", manifest)
        runtime.close()
    assert manifest["extra"]["note"] == "key=***"
    assert SENTINEL_KEY.encode() not in path.read_bytes()
    stored = all_bytes(cache_dir)
    assert len(stored) > 1000  # the cache has entries, and every byte is scanned
    assert SENTINEL_KEY.encode() not in stored
    assert SENTINEL_KEY[3:].encode() not in stored
    assert any(path.name == "last_run.json" for path in cache_dir.rglob("*"))
