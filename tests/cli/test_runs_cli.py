"""The run commands (rewrite, annotate, synthesize, judge, respond) against the real loopback OpenAI server.

In-process runs check outputs, side outputs, failures, formats, refusals and resume; subprocess runs check what
only a real process shows: kill -9 at random points followed by --resume gives exactly the records of an
uninterrupted run, and Ctrl-C exits 130 with a manifest and a resume command that works.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import dspy
import pytest

from cscprog.cache.results import RESULT_SHARDS, RESULTS_DIR
from cscprog.cache.shards import ShardedStore
from cscprog.cli import main
from cscprog.config import load_config
from cscprog.data import read_dialogues
from cscprog.samples import load_sample
from cscprog.testing import AnswerRequest, OpenAICompatibleServer, default_answer

CSCPROG = str(Path(sys.executable).with_name("cscprog"))
REWRITE_PLAN = [("supporter", "Greeting"), ("customer", None), ("supporter", "Identity Verification"),
                ("customer", None), ("supporter", "Information Delivery"), ("customer", None),
                ("supporter", "Appreciation and Closure")]


def answer(field: str, request: AnswerRequest) -> str:
    """Deterministic answers by prompt content for every role the run commands use."""
    kind = request.output_types.get(field, "str")
    digest = hashlib.sha256(request.last.encode("utf-8")).hexdigest()
    if "CriterionVerdict" in kind:  # the quality judge: about one dialogue in four fails a criterion
        passed = digest[0] not in "0123"
        return json.dumps({"passed": passed, "reason": "fine" if passed else "the replies repeat themselves"})
    if field == "finished":
        history = request.inputs.get("history", "")
        return "True" if history.count("Customer:") + history.count("客户") >= 2 else "False"
    if field in ("abusive_language", "poor_agent_attitude"):
        return "False"
    if field == "rewritten":
        if "POISON" in request.inputs.get("transcript", ""):
            return "[]"  # never a usable rewrite: a failure after the retries
        # no parentheses in the text: the authors' note rule drops a last utterance that holds one
        turns = [{"speaker": speaker, "strategy": strategy, "text": f"{speaker} says {index}, ref {digest[:6]}"}
                 for index, (speaker, strategy) in enumerate(REWRITE_PLAN)]
        return json.dumps(turns)
    return default_answer(field, request)


@pytest.fixture(scope="module")
def server():
    with OpenAICompatibleServer(answer=answer, latency=0.002) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, server: OpenAICompatibleServer) -> Path:
    path = tmp_path / "cscprog.toml"
    path.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                    f'[cache]\ndir = "{tmp_path / "cache"}"\n[run]\nconcurrency = 4\nseed = 7\n')
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def _manifest(output: Path) -> dict:
    return json.loads(output.with_name(output.name + ".manifest.json").read_text())


def test_annotate_labels_every_turn_resumes_and_refuses_to_overwrite(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "annotated.jsonl"
    args = ["annotate", "sample:annotated_en", "-o", str(out), "--config", str(config), "--progress", "plain"]
    assert main(args + ["--concurrency", "6"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays clean
    assert "annotate: 24 item(s): 24 done, 0 failed." in captured.err
    dialogues = read_dialogues(out).dialogues
    assert [d.id for d in dialogues] == [d.id for d in load_sample("annotated_en")]
    assert all(d.is_annotated for d in dialogues)
    manifest = _manifest(out)
    assert manifest["run"]["done"] == 24 and manifest["roles"]["classifier"]["endpoint"].startswith("http://127.0.0.1")
    assert manifest["command"].startswith("cscprog annotate sample:annotated_en --output")
    assert manifest["usage"]["by_role"]["classifier"]["live_calls"] == 183

    before = out.read_bytes()
    assert main(args) == 2
    assert "pass --resume" in capsys.readouterr().err and out.read_bytes() == before

    assert main(args + ["--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped_already_done"] == 24 and summary["done_this_run"] == 0
    assert out.read_bytes() == before


def test_annotate_output_is_byte_identical_at_concurrency_1_and_8(tmp_path: Path, config: Path) -> None:
    one, eight = tmp_path / "one.jsonl", tmp_path / "eight.jsonl"
    for out, workers in ((one, "1"), (eight, "8")):
        assert main(["annotate", "sample:annotated_zh", "-o", str(out), "--config", str(config),
                     "--concurrency", workers, "--progress", "off", "--format", "released"]) == 0
    assert one.read_bytes() == eight.read_bytes()
    released = read_dialogues(one).dialogues
    assert [d.id for d in released] == [d.id for d in load_sample("annotated_zh")]
    assert _lines(one)[0]["dialogue"][0]["strategy"].startswith("策略")


def test_synthesize_with_filter_splits_kept_and_rejected(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "rolecs.jsonl"
    code = main(["synthesize", "-n", "12", "--filter", "--max-utterances", "8", "-o", str(out), "--config",
                 str(config), "--progress", "off", "--topics", "complaints and disputes", "--topics",
                 "product consultation"])
    assert code == 0
    kept, rejected = _lines(out), _lines(tmp_path / "rolecs.rejected.jsonl")
    assert len(kept) + len(rejected) == 12 and kept and rejected
    assert all(r["metadata"]["judge"]["passed"] for r in kept)
    assert not any(r["metadata"]["judge"]["passed"] for r in rejected)
    assert {r["scenario"]["topic"] for r in kept + rejected} <= {"complaints and disputes", "product consultation"}
    assert _manifest(out)["run"]["by_output"] == {"output": len(kept), "rejected": len(rejected)}


def test_judge_keep_only_passing(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "judged.jsonl"
    assert main(["judge", "sample:annotated_en", "-o", str(out), "--keep-only-passing", "--config", str(config),
                 "--progress", "off"]) == 0
    kept, rejected = _lines(out), _lines(tmp_path / "judged.rejected.jsonl")
    assert len(kept) + len(rejected) == 24 and kept and rejected
    assert all(r["metadata"]["judge"]["criteria_passed"] == 5 for r in kept)


def test_respond_writes_one_record_per_supporter_turn(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "turns.jsonl"
    assert main(["respond", "sample:annotated_en", "-o", str(out), "--context", "generated", "--config",
                 str(config), "--progress", "off", "-j", "3"]) == 0
    rows = _lines(out)
    dialogues = load_sample("annotated_en")
    assert len(rows) == sum(len(d.supporter_indices()) for d in dialogues)
    assert [r["dialogue_id"] for r in rows][:2] == [dialogues[0].id] * 2 and all(r["pred_reply"] for r in rows)
    assert main(["respond", "sample:annotated_en", "-o", str(out), "--context", "generated", "--config",
                 str(config), "--progress", "off", "--resume"]) == 0
    assert len(_lines(out)) == len(rows)
    assert main(["respond", "sample:annotated_en", "-o", str(tmp_path / "x.jsonl"), "--context", "nope",
                 "--config", str(config)]) == 2


def test_respond_runs_a_saved_program_and_rejects_a_bad_one(tmp_path: Path, config: Path) -> None:
    from cscprog.agents.responder import ResponseGenerator

    program = ResponseGenerator()
    program.write_reply.demos = [dspy.Example(history="Customer: hi", strategy="Greeting", language="en",
                                              reply="Hello, how can I help you today?")]
    saved = tmp_path / "compiled.json"
    program.save(str(saved))
    out = tmp_path / "turns.jsonl"
    assert main(["respond", "sample:annotated_zh", "-o", str(out), "--program", str(saved), "--config", str(config),
                 "--progress", "off"]) == 0
    assert _manifest(out)["inputs"]["program"] == str(saved)
    assert len(_lines(out)) == sum(len(d.supporter_indices()) for d in load_sample("annotated_zh"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a program"}')
    assert main(["respond", "sample:annotated_zh", "-o", str(tmp_path / "y.jsonl"), "--program", str(bad),
                 "--config", str(config)]) == 2


def test_rewrite_keeps_drops_and_fails_each_where_it_belongs(tmp_path: Path, config: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    raw = [d.model_copy() for d in load_sample("raw")]
    poisoned = raw[0].model_copy(deep=True)
    poisoned.turns[1].text += " POISON"
    source = tmp_path / "raw.jsonl"
    source.write_text("".join(json.dumps(d.to_json(), ensure_ascii=False) + "\n" for d in [poisoned, *raw[1:]]))
    out = tmp_path / "rewritten.jsonl"
    assert main(["rewrite", str(source), "-o", str(out), "--config", str(config), "--progress", "off"]) == 1
    err = capsys.readouterr().err
    assert "12 item(s): 11 done, 1 failed." in err and "To resume, run: cscprog rewrite" in err
    kept, dropped = _lines(out), _lines(tmp_path / "rewritten.dropped.jsonl")
    assert {r["id"] for r in dropped} == {"raw-004", "raw-011"}  # the rule pre-filter's two
    assert all(r["metadata"]["rewrite"]["stage"] == "prefilter" for r in dropped)
    assert len(kept) == 9 and all(r["metadata"]["rewrite"]["kept"] for r in kept)
    failures = _lines(tmp_path / "rewritten.jsonl.failures.jsonl")
    assert [f["item_id"] for f in failures] == [poisoned.id] and failures[0]["error"] == "ItemError"
    assert "[[ ## rewritten ## ]]" in failures[0]["raw_text"] and failures[0]["role"] == "rewriter"


# --- real processes --------------------------------------------------------------------------------------------


def _env(cache: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CSCPROG_")}
    env["CSCPROG_CACHE_DIR"] = str(cache)
    return env


def _synthesize(config: Path, out: Path, *extra: str) -> list[str]:
    return [CSCPROG, "synthesize", "-n", "20", "--max-utterances", "8", "--filter", "-o", str(out), "--config",
            str(config), "--concurrency", "3", "--progress", "plain", *extra]


def _count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path: Path, config: Path) -> None:
    reference = tmp_path / "reference" / "syn.jsonl"
    reference.parent.mkdir()
    done = subprocess.run(_synthesize(config, reference), env=_env(tmp_path / "cache-ref"), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed" / "syn.jsonl"
    out.parent.mkdir()
    rejected = out.with_name("syn.rejected.jsonl")
    rng = random.Random(20240601)
    kills = 0
    for attempt in range(4):
        args = _synthesize(config, out, *(["--resume"] if attempt else []))
        process = subprocess.Popen(args, env=_env(tmp_path / "cache-killed"), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        target = _count(out) + _count(rejected) + rng.randint(1, 3)
        deadline = time.monotonic() + 60
        while process.poll() is None and _count(out) + _count(rejected) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        if attempt == 1 and out.exists():  # a power cut in the middle of a write leaves half a line
            with out.open("ab") as handle:
                handle.write(b'{"id": "rp-torn", "turns": [{"speaker": "supp')
    assert kills >= 3
    finished = subprocess.run(_synthesize(config, out, "--resume"), env=_env(tmp_path / "cache-killed"),
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert rejected.read_bytes() == reference.with_name("syn.rejected.jsonl").read_bytes()
    ids = [r["id"] for r in _lines(out) + _lines(rejected)]
    assert len(ids) == len(set(ids)) == 20


@pytest.mark.slow
def test_ctrl_c_exits_130_writes_the_manifest_and_the_resume_command_works(tmp_path: Path, config: Path) -> None:
    out = tmp_path / "syn.jsonl"
    env = _env(tmp_path / "cache")
    process = subprocess.Popen(_synthesize(config, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while process.poll() is None and _count(out) + _count(out.with_name("syn.rejected.jsonl")) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stdout == ""
    assert "Interrupted: finished items are saved." in stderr
    hint = next(line for line in stderr.splitlines() if line.startswith("Interrupted"))
    command = hint.split("To resume, run: ", 1)[1]
    assert command.startswith("cscprog synthesize ") and command.endswith(" --resume")
    manifest = _manifest(out)
    assert manifest["run"]["interrupted"] is True and manifest["run"]["exit_status"] == 130
    assert manifest["run"]["resume_command"] == command and 0 < manifest["run"]["done"] < 20

    resumed = subprocess.run([CSCPROG, *shlex.split(command)[1:]], env=env, capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert _manifest(out)["run"]["skipped_already_done"] == manifest["run"]["done"]
    assert _count(out) + _count(out.with_name("syn.rejected.jsonl")) == 20


def _save_uncompiled(program: dspy.Module, path: Path) -> Path:
    """Save ``program`` as `cscprog compile` would, without compiling it (a CompileResult built by hand)."""
    from cscprog.optimizers import CompileResult, save_compiled

    result = CompileResult(program=program, before={"metric": 0.0}, after={"metric": 0.0}, recipe="none",
                           settings={"optimizer": None})
    return save_compiled(path, result, inputs={"train": "none"})


def test_respond_loads_a_compiled_program_with_its_demos(tmp_path: Path, config: Path,
                                                         server: OpenAICompatibleServer) -> None:
    from cscprog.agents.responder import ResponseGenerator

    marker = "DEMO-5c1e: Good morning, this is the card service desk."
    program = ResponseGenerator()
    program.write_reply.demos = [dspy.Example(history="Customer: hi", strategy="Greeting", language="en",
                                              reply=marker)]
    saved = _save_uncompiled(program, tmp_path / "compiled.json")
    out = tmp_path / "turns.jsonl"
    seen_before = server.count
    assert main(["respond", "sample:annotated_zh", "-o", str(out), "--program", str(saved), "--config", str(config),
                 "--progress", "off"]) == 0
    assert _manifest(out)["inputs"]["program"] == str(saved)
    rows = _lines(out)
    assert len(rows) == sum(len(d.supporter_indices()) for d in load_sample("annotated_zh"))
    assert all(r["pred_reply"] for r in rows)
    reply_prompts = [json.dumps(r.body, ensure_ascii=False) for r in server.requests[seen_before:]
                     if r.method == "POST" and "[[ ## reply ## ]]" in json.dumps(r.body, ensure_ascii=False)]
    assert reply_prompts and all(marker in prompt for prompt in reply_prompts)  # the saved demo is in use


def test_respond_refuses_a_compiled_program_of_another_class(tmp_path: Path, config: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    from cscprog.agents.classifier import StrategyClassifier

    saved = _save_uncompiled(StrategyClassifier(), tmp_path / "classifier.json")
    out = tmp_path / "turns.jsonl"
    assert main(["respond", "sample:annotated_zh", "-o", str(out), "--program", str(saved), "--config", str(config),
                 "--progress", "off"]) == 2
    err = capsys.readouterr().err
    assert ("compiled for cscprog.agents.classifier.StrategyClassifier, "
            "not cscprog.agents.responder.ResponseGenerator") in err
    assert str(saved) in err and not out.exists()


def test_cache_mode_replay_verifies_a_run_offline(tmp_path: Path, config: Path, server: OpenAICompatibleServer,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("CSCPROG_CACHE_MODE", raising=False)
    first, again, missing = tmp_path / "first.jsonl", tmp_path / "again.jsonl", tmp_path / "missing.jsonl"
    args = ["--config", str(config), "--progress", "off"]
    assert main(["annotate", "sample:annotated_zh", "-o", str(first), *args]) == 0
    before = len(server.requests)
    results = ShardedStore(load_config(config).cache.path / RESULTS_DIR, repair=False, shards=RESULT_SHARDS)
    assert len(list(results)) > 0  # the result layer kept the calls' parsed outputs ...
    results.close()
    assert main(["--cache-mode", "replay", "annotate", "sample:annotated_zh", "-o", str(again), *args]) == 0
    # ... and the replay served from them: no call, the same bytes as the full path wrote
    assert len(server.requests) == before and again.read_bytes() == first.read_bytes()
    assert "CSCPROG_CACHE_MODE" not in os.environ  # the option reaches the command's config, not the environment
    assert main(["--cache-mode", "replay", "annotate", "sample:annotated_en", "-o", str(missing), *args]) == 1
    assert len(server.requests) == before  # every miss is a recorded failure, never a call
    failures = _lines(missing.with_name(missing.name + ".failures.jsonl"))
    assert len(failures) == 24 and all(f["error"] == "CacheMissError" for f in failures)
    assert "no cached response for role classifier" in failures[0]["reason"]
    capsys.readouterr()
    assert main(["--cache-mode", "sometimes", "annotate", "sample:annotated_en", "-o", str(missing), *args]) == 2
    assert "--cache-mode" in capsys.readouterr().err
