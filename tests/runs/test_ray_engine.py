"""The Ray engine on a local 2-CPU Ray against the real loopback OpenAI server.

One Ray instance serves the whole module (starting Ray and its worker processes costs seconds, so the checks are
packed into few runs): a worker process SIGKILLed mid-run fails only the items it was running, and --resume then
completes main and side outputs byte for byte as a local run; rate limits and the budget hold across workers;
without Ray, --engine ray exits 2 saying how to install it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import dspy
import pytest

ray = pytest.importorskip("ray")

from cscprog.cli import main  # noqa: E402
from cscprog.config import config_from_dict, load_config  # noqa: E402
from cscprog.errors import ConfigError  # noqa: E402
from cscprog.lm.invoke import invoke  # noqa: E402
from cscprog.lm.runtime import Runtime  # noqa: E402
from cscprog.runs import EXIT_FAILED, EXIT_OK, Runner, failures_path, manifest_path  # noqa: E402
from cscprog.runs.ray.engine import RayEngine  # noqa: E402
from cscprog.testing import AnswerRequest, OpenAICompatibleServer, default_answer  # noqa: E402


def answer(field: str, request: AnswerRequest) -> str:
    """Answers that depend only on the prompt: judge verdicts fail about a quarter of the time."""
    kind = request.output_types.get(field, "str")
    digest = hashlib.sha256(request.last.encode("utf-8")).hexdigest()
    if "CriterionVerdict" in kind:
        passed = digest[0] not in "0123"
        return json.dumps({"passed": passed, "reason": "clear" if passed else "the agent repeats itself"})
    if field == "finished":
        return "True" if request.inputs.get("history", "").count("Customer:") >= 2 else "False"
    return default_answer(field, request)


class WorkerKiller:
    """Kills one Ray worker process of this test (SIGKILL, as the OOM killer would) at the N-th chat request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.countdown: int | None = None
        self.killed: list[int] = []

    def arm(self, after: int) -> None:
        with self.lock:
            self.countdown = after

    def tick(self) -> None:
        with self.lock:
            if self.countdown is None:
                return
            self.countdown -= 1
            if self.countdown > 0:
                return
            self.countdown = None
        victim = _our_item_workers()[0]
        os.kill(victim, signal.SIGKILL)
        self.killed.append(victim)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _our_item_workers() -> list[int]:
    """The Ray ItemWorker processes started under this test process (never another session's)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or not (entry / "cmdline").read_bytes().startswith(b"ray::ItemWorker"):
                continue
            pid = ancestor = int(entry.name)
            while ancestor > 1 and ancestor != os.getpid():
                ancestor = _parent(ancestor)
        except OSError:
            continue
        if ancestor == os.getpid():
            found.append(pid)
    return sorted(found)


@pytest.fixture(scope="module")
def killer() -> WorkerKiller:
    return WorkerKiller()


@pytest.fixture(scope="module")
def server(killer: WorkerKiller):
    def answer_and_maybe_kill(field: str, request: AnswerRequest) -> str:
        killer.tick()
        return answer(field, request)

    with OpenAICompatibleServer(answer=answer_and_maybe_kill, latency=0.002) as running:
        yield running


def _config(path: Path, server: OpenAICompatibleServer, cache: Path, extra: str = "") -> Path:
    path.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n{extra}'
                    f'[cache]\ndir = "{cache}"\n[run]\nconcurrency = 4\nseed = 7\n')
    return path


def _synthesize(out: Path, config: Path, engine: str, *more: str) -> int:
    return main(["synthesize", "-n", "6", "--filter", "--max-utterances", "8", "-o", str(out), "--config",
                 str(config), "--progress", "off", "--engine", engine, "--topics", "complaints and disputes", *more])


@pytest.mark.slow
def test_ray_run_with_a_killed_worker_resumes_to_the_bytes_of_a_local_run(
    tmp_path: Path, ray_cluster: None, server: OpenAICompatibleServer, killer: WorkerKiller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CSCPROG_CACHE_DIR")  # the config files' own caches: every run calls the server
    local = tmp_path / "local" / "rolecs.jsonl"
    assert _synthesize(local, _config(tmp_path / "local.toml", server, tmp_path / "cache-local"), "local") == 0
    local_manifest = json.loads(manifest_path(local).read_text())
    assert local_manifest["run"]["engine"] == {"name": "local"}

    out = tmp_path / "ray" / "rolecs.jsonl"
    config = _config(tmp_path / "ray.toml", server, tmp_path / "cache-ray")
    killer.arm(after=30)  # about a third of the way through, while both workers run items
    assert _synthesize(out, config, "ray") == EXIT_FAILED
    assert len(killer.killed) == 1
    lost = [json.loads(line) for line in failures_path(out).read_text().splitlines()]
    assert lost and {entry["error"] for entry in lost} == {"WorkerLostError"}
    first = json.loads(manifest_path(out).read_text())
    assert first["run"]["engine"]["name"] == "ray" and first["run"]["engine"]["workers_lost"] == 1
    assert first["run"]["done"] + first["run"]["failed"] == 6  # a replacement worker ran the rest
    assert first["usage"]["total"]["live_calls"] >= 30  # the workers' calls reach the driver's manifest
    assert set(first["roles"]) == set(local_manifest["roles"])

    assert _synthesize(out, config, "ray", "--resume") == EXIT_OK
    assert not failures_path(out).exists()
    assert out.read_bytes() == local.read_bytes()
    assert (out.parent / "rolecs.rejected.jsonl").read_bytes() == (local.parent / "rolecs.rejected.jsonl").read_bytes()
    resumed = json.loads(manifest_path(out).read_text())
    assert resumed["run"]["skipped_already_done"] == first["run"]["done"]
    last_run = json.loads((tmp_path / "cache-ray" / "last_run.json").read_text())
    assert last_run["engine"] == "ray" and last_run["misses"] == resumed["cache"]["misses"]


@pytest.mark.slow
def test_rate_limit_and_budget_hold_across_workers(tmp_path: Path, ray_cluster: None,
                                                   server: OpenAICompatibleServer) -> None:
    # 600 requests/min = 10/s with a 1 s burst: calls 11..25 must wait 0.1 s each, whatever the worker count
    config = _config(tmp_path / "limited.toml", server, tmp_path / "cache",
                     extra="requests_per_minute = 600\n[budget]\nmax_calls = 25\n")
    predict = dspy.Predict("question -> answer")
    started = tmp_path / "started"
    started.mkdir()

    def work(number: int) -> dict:
        # No call before both workers are up: the test is about two workers sharing one limiter and one budget,
        # and a worker that starts late (Ray start-up on a loaded machine) must not leave the other to do it all.
        (started / str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        reply = invoke(predict, role="responder", question=f"limited question {number}").answer
        return {"id": f"q-{number:02d}", "answer": reply, "pid": os.getpid()}

    before = len(server.requests)
    runtime = Runtime(load_config(config, environ={}))  # the file's cache, not the test's CSCPROG_CACHE_DIR
    try:
        with runtime.activate():
            result = Runner(work, output=tmp_path / "answers.jsonl", concurrency=8, runtime=runtime,
                            engine=RayEngine(workers=2)).run((f"q-{n:02d}", n) for n in range(30))
    finally:
        runtime.close()
    calls = [request for request in server.requests[before:] if request.path.endswith("/chat/completions")]
    assert len(calls) == 25  # one budget for both workers
    assert calls[-1].time - calls[0].time >= 1.3  # one limiter for both workers (each alone: about 0.25 s)
    assert result.done == 25 and str(result.stop_reason).startswith("budget exceeded (max_calls)")
    records = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert len({record["pid"] for record in records}) == 2
    manifest = json.loads(manifest_path(tmp_path / "answers.jsonl").read_text())
    assert manifest["budget"]["spent"]["calls"] == 25 and manifest["budget"]["exceeded"] == "max_calls"
    assert manifest["rate_limits"]["waited_seconds"] > 0.5


def test_engine_ray_without_ray_exits_2_with_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    out = tmp_path / "out.jsonl"
    assert main(["annotate", "sample:annotated_en", "-o", str(out), "--engine", "ray"]) == 2
    assert 'pip install "cscprog[ray]"' in capsys.readouterr().err and not out.exists()
    assert main(["annotate", "sample:annotated_en", "-o", str(out), "--engine", "spark"]) == 2


def test_run_settings_validate_engine_and_ray_address() -> None:
    settings = config_from_dict({"run": {"engine": "ray", "ray_address": "ray://10.0.0.5:10001"}}, environ={}).run
    assert (settings.engine, settings.ray_address) == ("ray", "ray://10.0.0.5:10001")
    assert config_from_dict({"run": {"ray_address": "auto"}}, environ={}).run.ray_address == "auto"
    for bad in ({"engine": "spark"}, {"ray_address": "head-node"}, {"ray_address": "ray://h:99999"}):
        with pytest.raises(ConfigError, match="run"):
            config_from_dict({"run": bad}, environ={})
