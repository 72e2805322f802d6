"""The cache writes in batches off the calling thread; a run reports an item done only once its calls are on disk.

The cache's SQLite shards are held locked by another connection (as a second process writing would), so the
writer cannot store anything until they are released: no item line may appear before that, and a process killed
while its calls are not yet stored recomputes them on ``--resume``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dspy
import pytest

from cscprog.cache import ResponseCache
from cscprog.cache.shards import SHARDS
from cscprog.config import config_from_dict
from cscprog.lm.invoke import invoke
from cscprog.lm.runtime import Runtime
from cscprog.runs import Runner
from cscprog.samples import load_sample, sample_path
from cscprog.testing import AnswerRequest, OpenAICompatibleServer, ScriptedEngine
from cscprog.testing.engines import AsyncScriptedEngine

CSCPROG = str(Path(sys.executable).with_name("cscprog"))


@contextlib.contextmanager
def shards_locked(directory: Path, *, create: bool = True) -> Iterator[None]:
    """Hold a write lock on every shard of the cache in ``directory`` until the block ends."""
    if create:
        ResponseCache(directory).close()  # the shards exist
    connections = []
    try:
        for index in range(SHARDS):
            connection = sqlite3.connect(directory / f"{index:03d}" / "cache.db", timeout=5, isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            connections.append(connection)
        yield
    finally:
        for connection in connections:
            connection.execute("ROLLBACK")
            connection.close()


def _answer(field: str, request: AnswerRequest) -> str:
    return f"{field}: {request.inputs.get('question', '')}"


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_an_item_is_reported_done_only_once_its_calls_are_stored(tmp_path: Path) -> None:
    cache_dir, out = tmp_path / "cache", tmp_path / "out.jsonl"
    engine = ScriptedEngine(_answer)
    config = config_from_dict({"lm": {"model": "offline/echo-v1", "temperature": 0.0},
                               "cache": {"dir": str(cache_dir)}}, environ={})
    runtime = Runtime(config, lm_factory=lambda role, settings: dspy.LM(
        "offline/echo-v1", engine=engine, async_engine=AsyncScriptedEngine(engine), temperature=0.0))
    program = dspy.Predict("question -> answer")

    def work(question: str) -> dict:
        answer = invoke(program, role="responder", question=question).answer
        return {"id": question, "answer": answer}

    items = [(f"q{index}", f"q{index}") for index in range(3)]
    with shards_locked(cache_dir):
        thread = threading.Thread(target=lambda: Runner(work, output=out, concurrency=2, runtime=runtime).run(items))
        thread.start()
        deadline = time.monotonic() + 30
        while engine.calls < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        assert engine.calls >= 2  # the workers made their calls, which wait to be stored ...
        assert _lines(out) == 0  # ... so no item is done while its calls are not on disk
    thread.join(timeout=60)
    runtime.close()
    assert _lines(out) == len(items)
    with ResponseCache(cache_dir, mode="replay") as replay:
        assert len(list(replay._store)) == len(items)


def _stored(cache_dir: Path) -> int:
    with ResponseCache(cache_dir, mode="replay") as replay:
        return len(list(replay._store))


@pytest.mark.slow
def test_a_process_killed_before_its_calls_are_stored_recomputes_them_on_resume(tmp_path: Path) -> None:
    cache_dir, out = tmp_path / "cache", tmp_path / "out.jsonl"
    with OpenAICompatibleServer(answer=lambda field, request: "Greeting", latency=0.2) as server:
        config = tmp_path / "cscprog.toml"
        config.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                          f'api_key_env = "TEST_DURABLE_KEY"\n[cache]\ndir = "{cache_dir}"\n[run]\nconcurrency = 1\n')
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TEST_DURABLE_KEY": "sk-test"}
        command = [CSCPROG, "annotate", "sample:annotated_en", "-o", str(out), "--config", str(config),
                   "--progress", "off"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while server.count < 1 and time.monotonic() < deadline:  # the child has its cache open
            time.sleep(0.01)
        with shards_locked(cache_dir, create=False):
            locked_at = server.count
            while server.count < locked_at + 4 and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            made = server.count
        stored, done = _stored(cache_dir), _ids(out)
        assert made >= locked_at + 4 and stored < made  # the kill came between calls and their storing
        # every item reported done has all its calls stored: replaying just those items makes no call and no miss
        subset = tmp_path / "done.jsonl"
        subset.write_text("".join(line for line in sample_path("annotated_en").read_text(encoding="utf-8")
                                  .splitlines(keepends=True) if line.strip() and json.loads(line)["id"] in done))
        if done:
            replayed = subprocess.run([CSCPROG, "--cache-mode", "replay", "annotate", str(subset), "-o",
                                       str(tmp_path / "replayed.jsonl"), "--config", str(config), "--progress", "off"],
                                      env=env, capture_output=True, text=True, timeout=120)
            assert replayed.returncode == 0, replayed.stderr
            assert server.count == made
        resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        # the resume made exactly the calls that were not stored, the lost ones included
        assert server.count - made == _stored(cache_dir) - stored > 0
        assert len(_ids(out)) == len(load_sample("annotated_en"))


def _ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def test_queued_entries_are_served_at_once_and_stored_by_close(tmp_path: Path) -> None:
    requests = [{"model": "openai/m", "messages": [{"role": "user", "content": f"hi {i}"}]} for i in range(50)]
    cache = ResponseCache(tmp_path)
    with shards_locked(tmp_path, create=False):  # nothing can reach the disk yet ...
        for index, request in enumerate(requests):
            cache.put(request, {"text": f"answer {index}"}, enable_memory_cache=False)
        # ... yet this process is served every entry (from the writer's queue, the memory layer being off)
        assert [cache.get(request)["text"] for request in requests] == [f"answer {i}" for i in range(50)]
        assert all(cache.cache_key(request) in cache for request in requests)
    cache.close()  # stores what is queued
    with ResponseCache(tmp_path, mode="replay") as replay:
        assert [replay.get(request)["text"] for request in requests] == [f"answer {i}" for i in range(50)]
        assert replay.run_stats()["hits"] == 50
