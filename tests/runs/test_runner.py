"""The runner on synthetic work functions: resume, torn tails, ordering, failures, budget stops, interruptions."""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import dspy
import pytest

from cscprog.lm.budget import BudgetExceeded
from cscprog.lm.invoke import GenerationFailure
from cscprog.runs import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RETRY_ROUND_KEY,
    PlainProgress,
    Routed,
    RunInputError,
    Runner,
    failures_path,
    manifest_path,
    run_items,
)


def _items(count: int) -> list[tuple[str, int]]:
    return [(f"item-{index:04d}", index) for index in range(count)]


def _record(payload: int) -> dict:
    digest = hashlib.sha256(str(payload).encode()).hexdigest()[:8]
    return {"id": f"item-{payload:04d}", "value": payload * payload, "digest": digest, "text": "héllo\u2028wörld"}


class Counting:
    """A work function that records what it ran; sleeps a pseudo-random, id-derived time to shuffle completions."""

    def __init__(self, fail: set[int] | None = None, sleep: float = 0.0) -> None:
        self.fail = fail or set()
        self.sleep = sleep
        self.ran: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, payload: int) -> dict:
        with self._lock:
            self.ran.append(payload)
        if self.sleep:
            time.sleep(self.sleep * ((payload * 7919) % 13) / 13)
        if payload in self.fail:
            raise GenerationFailure("judge", "output did not parse (ChatAdapter)", f"garbage for {payload}", 3)
        return _record(payload)


def _ids(path: Path, field: str = "id") -> list[str]:
    return [json.loads(line)[field] for line in path.read_text(encoding="utf-8").split("\n") if line]


def test_complete_run_writes_records_in_input_order_and_a_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    work = Counting(sleep=0.01)
    result = run_items(_items(30), work, output=out, concurrency=6, command="test run", inputs={"n": 30}, seed=7)
    assert result.exit_status == EXIT_OK and result.complete
    assert (result.total, result.done, result.skipped, result.failed, result.unfinished) == (30, 30, 0, 0, 0)
    assert _ids(out) == [item_id for item_id, _ in _items(30)]
    assert sorted(work.ran) == list(range(30))
    assert not failures_path(out).exists()
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["command"] == "test run" and manifest["seed"] == 7 and manifest["inputs"] == {"n": 30}
    assert manifest["run"]["done"] == 30 and manifest["run"]["interrupted"] is False
    assert manifest["run"]["exit_status"] == 0


def test_output_is_byte_identical_at_concurrency_1_and_8(tmp_path: Path) -> None:
    one, eight = tmp_path / "c1.jsonl", tmp_path / "c8.jsonl"
    run_items(_items(60), Counting(sleep=0.004), output=one, concurrency=1)
    run_items(_items(60), Counting(sleep=0.004), output=eight, concurrency=8)
    assert one.read_bytes() == eight.read_bytes()
    # the \u2028 inside a string must not be taken for a line break anywhere
    assert len(one.read_bytes().split(b"\n")) == 61


def test_resume_skips_finished_items(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run_items(_items(5), Counting(), output=out)
    work = Counting()
    result = run_items(_items(9), work, output=out, resume=True, concurrency=3)
    assert sorted(work.ran) == [5, 6, 7, 8]
    assert (result.skipped, result.done) == (5, 4)
    assert _ids(out) == [item_id for item_id, _ in _items(9)]
    again = Counting()
    assert run_items(_items(9), again, output=out, resume=True).done == 0 and again.ran == []


def test_existing_output_without_resume_is_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run_items(_items(3), Counting(), output=out)
    before = out.read_bytes()
    with pytest.raises(RunInputError, match="--resume"):
        run_items(_items(3), Counting(), output=out)
    assert out.read_bytes() == before


def test_torn_last_line_is_dropped_and_the_item_rerun(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run_items(_items(4), Counting(), output=out)
    reference = out.read_bytes()
    lines = reference.split(b"\n")
    out.write_bytes(b"\n".join(lines[:3]) + b"\n" + lines[3][:17])  # item 3 torn in the middle
    work = Counting()
    result = run_items(_items(4), work, output=out, resume=True)
    assert work.ran == [3] and result.dropped_bytes == 17
    assert out.read_bytes() == reference


def test_torn_tail_of_a_multi_record_item_drops_the_whole_item(tmp_path: Path) -> None:
    out = tmp_path / "turns.jsonl"

    def per_turn(payload: int) -> list[dict]:
        return [{"dialogue_id": f"d-{payload}", "turn": turn} for turn in range(3)]

    items = [(f"d-{index}", index) for index in range(3)]
    run_items(items, per_turn, output=out, id_field="dialogue_id", many_records=True)
    reference = out.read_bytes()
    lines = reference.split(b"\n")
    out.write_bytes(b"\n".join(lines[:7]) + b"\n" + lines[7][:5])  # d-2: one full line, then a torn one
    ran: list[int] = []

    def again(payload: int) -> list[dict]:
        ran.append(payload)
        return per_turn(payload)

    result = run_items(items, again, output=out, id_field="dialogue_id", many_records=True, resume=True)
    assert ran == [2] and result.skipped == 2
    assert out.read_bytes() == reference


def test_failures_are_recorded_counted_and_retried_by_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = run_items(_items(10), Counting(fail={2, 7}), output=out, concurrency=4)
    assert result.exit_status == EXIT_FAILED and (result.done, result.failed) == (8, 2)
    failures = [json.loads(line) for line in failures_path(out).read_text().splitlines()]
    assert [f["item_id"] for f in failures] == ["item-0002", "item-0007"]
    assert failures[0]["error"] == "GenerationFailure" and failures[0]["role"] == "judge"
    assert failures[0]["raw_text"] == "garbage for 2" and "did not parse" in failures[0]["reason"]
    assert "item-0002" not in _ids(out)
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["run"]["failed"] == 2 and manifest["outputs"]["failures"] == str(failures_path(out))

    still = run_items(_items(10), Counting(fail={7}), output=out, resume=True)
    assert (still.skipped, still.done, still.failed) == (8, 1, 1)
    assert [json.loads(line)["item_id"] for line in failures_path(out).read_text().splitlines()] == ["item-0007"]

    work = Counting()
    fixed = run_items(_items(10), work, output=out, resume=True)
    assert work.ran == [7] and fixed.exit_status == EXIT_OK
    assert not failures_path(out).exists()
    assert out.read_bytes() == b"".join(
        (json.dumps(_record(i), ensure_ascii=False) + "\n").encode() for i in range(10)
    )


def test_secrets_are_redacted_from_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_API_KEY", "sk-very-secret-value-123")

    def leaky(payload: int) -> dict:
        raise RuntimeError("request failed with key sk-very-secret-value-123")

    out = tmp_path / "out.jsonl"
    run_items(_items(1), leaky, output=out)
    text = failures_path(out).read_text()
    assert "sk-very-secret-value-123" not in text and "***" in text


def test_bad_records_are_failures_not_silent(tmp_path: Path) -> None:
    def wrong(payload: int) -> object:
        return [{"id": "someone-else"}, {"value": float("nan")}, [], "text", {"id": "item-0004", "v": float("nan")},
                [{"id": "item-0005"}, {"id": "item-0005"}]][payload]

    out = tmp_path / "out.jsonl"
    result = run_items(_items(6), wrong, output=out)
    assert result.failed == 6 and not out.read_text()
    reasons = [json.loads(line)["reason"] for line in failures_path(out).read_text().splitlines()]
    assert "someone-else" in reasons[0] and "no record" in reasons[2] and "not a dict" in reasons[3]
    assert "not JSON-serializable" in reasons[4] and "one per item" in reasons[5]


def test_duplicate_item_ids_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(RunInputError, match="duplicate item id 'a'"):
        run_items([("a", 1), ("b", 2), ("a", 3)], Counting(), output=tmp_path / "o.jsonl")


def test_budget_exceeded_stops_cleanly_keeping_finished_items(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    calls = {"n": 0}
    lock = threading.Lock()

    def spend(payload: int) -> dict:
        with lock:
            calls["n"] += 1
            over = calls["n"] > 4
        if over:
            raise GenerationFailure("judge", "wrapped", None) from BudgetExceeded("max_calls", 4, 4, "budget spent")
        return _record(payload)

    result = run_items(_items(20), spend, output=out, concurrency=1)
    assert result.exit_status == EXIT_FAILED and not result.interrupted
    assert (result.done, result.failed, result.unfinished) == (4, 0, 16)
    assert "budget exceeded (max_calls)" in result.stop_reason
    assert calls["n"] == 5  # nothing started after the refusal
    assert _ids(out) == [f"item-{i:04d}" for i in range(4)]
    assert not failures_path(out).exists()  # not failures: they simply did not run
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["run"]["stop_reason"].startswith("budget exceeded") and manifest["run"]["unfinished"] == 16
    resumed = run_items(_items(20), Counting(), output=out, resume=True)
    assert resumed.complete and _ids(out) == [item_id for item_id, _ in _items(20)]


def test_stop_request_keeps_finished_items_and_reports_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    lines: list[str] = []

    class Capture:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    runner = Runner(Counting(sleep=0.05), output=out, concurrency=2, grace_seconds=5,
                    resume_command="cscprog synthesize -n 40 -o out.jsonl --resume",
                    progress=PlainProgress("test", stream=Capture(), interval=0.0))
    timer = threading.Timer(0.3, lambda: runner.stop.request("interrupted by test", interrupted=True))
    timer.start()
    result = runner.run(_items(40))
    timer.cancel()
    assert result.interrupted and result.exit_status == EXIT_INTERRUPTED
    assert 0 < result.done < 40 and result.unfinished == 40 - result.done
    assert len(_ids(out)) == result.done
    assert result.resume_hint() == "To resume, run: cscprog synthesize -n 40 -o out.jsonl --resume"
    assert any("Stopping (interrupted by test)" in line for line in lines)
    assert json.loads(manifest_path(out).read_text())["run"]["interrupted"] is True
    resumed = run_items(_items(40), Counting(), output=out, resume=True, concurrency=4)
    assert resumed.skipped == result.done and resumed.complete
    assert _ids(out) == [item_id for item_id, _ in _items(40)]


def test_routed_items_go_to_side_outputs_and_count_as_done(tmp_path: Path) -> None:
    out, rejected = tmp_path / "kept.jsonl", tmp_path / "kept.rejected.jsonl"

    def route(payload: int) -> object:
        return Routed("rejected", _record(payload)) if payload % 3 == 0 else _record(payload)

    result = run_items(_items(9), route, output=out, side_outputs={"rejected": rejected}, concurrency=3)
    assert result.by_output == {"output": 6, "rejected": 3}
    assert _ids(rejected) == ["item-0000", "item-0003", "item-0006"]
    work = Counting()
    assert run_items(_items(9), work, output=out, side_outputs={"rejected": rejected}, resume=True).skipped == 9
    assert work.ran == []


_LEAK = contextvars.ContextVar("cscprog_test_leak", default=None)


def test_dspy_context_reaches_workers_and_does_not_leak(tmp_path: Path) -> None:
    marker = object()
    seen: list[tuple[object, object]] = []

    def work(payload: int) -> dict:
        seen.append((dspy.settings.get("cscprog_test_marker"), _LEAK.get()))
        _LEAK.set(f"set by item {payload}")  # must not be seen by the next item on this thread
        return _record(payload)

    with dspy.context(cscprog_test_marker=marker):
        run_items(_items(12), work, output=tmp_path / "o.jsonl", concurrency=3)
    assert seen == [(marker, None)] * 12


def test_items_run_with_dspy_history_and_trace_off_so_memory_stays_flat(tmp_path: Path) -> None:
    from dspy.clients.base_lm import GLOBAL_HISTORY

    from cscprog.testing import scripted_lm

    lm = scripted_lm(lambda field, request: "fine")
    predict = dspy.Predict("question -> answer")
    before = len(GLOBAL_HISTORY)

    def work(payload: int) -> dict:
        assert dspy.settings.disable_history and dspy.settings.trace is None
        return {"id": f"item-{payload:04d}", "answer": predict(question=str(payload)).answer}

    with dspy.context(lm=lm):
        result = run_items(_items(6), work, output=tmp_path / "o.jsonl", concurrency=2)
        assert result.done == 6 and not dspy.settings.disable_history  # the caller's settings are untouched
    assert len(GLOBAL_HISTORY) == before and lm.history == [] and predict.history == []


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    started = threading.Event()
    release = threading.Event()

    def slow(payload: int) -> dict:
        started.set()
        release.wait(5)
        return _record(payload)

    thread = threading.Thread(target=run_items, args=(_items(1), slow), kwargs={"output": out})
    thread.start()
    started.wait(5)
    try:
        with pytest.raises(RunInputError, match="another cscprog run"):
            run_items(_items(1), Counting(), output=out, resume=True)
    finally:
        release.set()
        thread.join(5)
    assert _ids(out) == ["item-0000"]


# --- against the real loopback HTTP server, through a Runtime ---------------------------------------------------

KEY_ENV = "CSCPROG_TEST_RUNS_KEY"


def _runtime(tmp_path: Path, url: str, **budget: int):
    from cscprog.config import config_from_dict
    from cscprog.lm.runtime import Runtime

    data = {"lm": {"model": "openai/test-model", "api_base": url, "api_key_env": KEY_ENV, "temperature": 0.0,
                   "num_retries": 4},
            "cache": {"dir": str(tmp_path / "cache")}}
    data["lm"]["num_retries"] = 2
    if budget:
        data["budget"] = budget
    return Runtime(config_from_dict(data, environ={}))


def _question(payload: int) -> str:
    kind = {3: "poison", 7: "outage"}.get(payload % 10, "question")
    return f"{kind} {payload}"


def _ask(payload: int) -> dict:
    from cscprog.lm.invoke import invoke

    prediction = invoke(dspy.Predict("question -> answer"), role="responder", question=_question(payload))
    return {"id": f"item-{payload:04d}", "answer": prediction.answer}


def _answer(field: str, request) -> str:
    return f"answer to {request.inputs.get('question')}"


class Faults:
    """Server faults by question: every question's first request fails (429, 500 or garbage, in turn, then
    the retry succeeds); "poison" questions always get garbage and "outage" ones always a 500, until healed."""

    def __init__(self) -> None:
        self.healed = False
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, index: int, body: dict) -> str | None:
        text = json.dumps(body)
        match = re.search(r"(poison|outage|question) (\d+)", text)
        if match is None:
            return None
        kind, number = match.group(1), int(match.group(2))
        if not self.healed and kind == "poison":
            return "garbage"
        if not self.healed and kind == "outage":
            return "500"
        with self.lock:
            first = match.group(0) not in self.seen
            self.seen.add(match.group(0))
        return ("429", "500", "garbage", None)[number % 4] if first else None


def test_faults_on_the_wire_complete_with_failures_counted_and_nothing_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cscprog.testing import OpenAICompatibleServer

    monkeypatch.setenv(KEY_ENV, "sk-runs-test-key-0123456789")
    out = tmp_path / "out.jsonl"
    items = _items(30)
    poisoned = {f"item-{i:04d}" for i in range(30) if i % 10 == 3}
    outage = {f"item-{i:04d}" for i in range(30) if i % 10 == 7}
    faults = Faults()
    with OpenAICompatibleServer(answer=_answer, faults=faults) as server:
        runtime = _runtime(tmp_path, server.url)
        try:
            result = run_items(items, _ask, output=out, concurrency=8, runtime=runtime, command="faults")
        finally:
            runtime.close()
        kinds = {request.fault for request in server.requests}
        assert {"429", "500", "garbage"} <= kinds
        assert (result.done, result.failed, result.unfinished) == (24, 6, 0)
        assert result.exit_status == EXIT_FAILED
        assert _ids(out) == [item_id for item_id, _ in items if item_id not in poisoned | outage]
        assert all(json.loads(line)["answer"].startswith("answer to question")
                   for line in out.read_text().split("\n") if line)
        failures = {f["item_id"]: f for f in map(json.loads, failures_path(out).read_text().splitlines())}
        assert set(failures) == poisoned | outage
        assert all(failures[i]["error"] == "GenerationFailure" and "not going to follow" in failures[i]["raw_text"]
                   for i in poisoned)
        assert all(failures[i]["error"] == "LMServerError" and "internal server error" in failures[i]["reason"]
                   for i in outage)
        assert {f["round"] for f in failures.values()} == {1}
        manifest_text = manifest_path(out).read_text()
        assert "sk-runs-test-key" not in manifest_text and "sk-runs-test-key" not in failures_path(out).read_text()
        manifest = json.loads(manifest_text)
        usage = manifest["usage"]["by_role"]["responder"]
        assert usage["live_calls"] >= 30 and usage["transient_retries"] >= 1 and usage["failures"] == 3
        assert manifest["run"]["failed"] == 6 and manifest["cache"]["misses"] >= 30

        faults.healed = True  # the provider recovers; resume retries the failed items, and only them
        server.clear()
        runtime = _runtime(tmp_path, server.url)
        try:
            again = run_items(items, _ask, output=out, concurrency=8, runtime=runtime, resume=True)
        finally:
            runtime.close()
        asked = {re.search(r"(poison|outage|question) \d+", json.dumps(r.body)).group(1) for r in server.requests}
    assert asked <= {"poison", "outage"} and "outage" in asked
    assert again.skipped == 24 and again.done + again.failed == 6 and again.done >= 3
    assert set(_ids(out)) >= {item_id for item_id, _ in items if item_id not in poisoned}
    # A parse failure is cached like any answer: it is re-run with cscprog_retry_round=1, and whatever is still
    # failing is recorded as its second round.
    still = [json.loads(line) for line in failures_path(out).read_text().splitlines()] if again.failed else []
    assert {f["item_id"] for f in still} <= poisoned and all(f["round"] == 2 for f in still)


def test_failed_items_are_rerun_with_their_retry_round(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    seen: dict[int, list[object]] = {}

    def work(payload: int) -> dict:
        seen.setdefault(payload, []).append(dspy.settings.get(RETRY_ROUND_KEY))
        if payload == 1 and len(seen[payload]) < 3:
            raise ValueError("not yet")
        return _record(payload)

    for _ in range(3):
        run_items(_items(3), work, output=out, resume=out.exists())
    assert seen == {0: [None], 1: [None, 1, 2], 2: [None]}
    assert not failures_path(out).exists()


def test_runtime_budget_stops_the_run_and_resume_finishes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cscprog.testing import OpenAICompatibleServer

    monkeypatch.setenv(KEY_ENV, "sk-runs-test-key-0123456789")
    out = tmp_path / "out.jsonl"
    items = [(f"item-{i:04d}", i) for i in (0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12)]
    with OpenAICompatibleServer(answer=_answer, latency=0.02) as server:
        runtime = _runtime(tmp_path, server.url, max_calls=5)
        try:
            result = run_items(items, _ask, output=out, concurrency=3, runtime=runtime)
        finally:
            runtime.close()
        assert server.count == 5
        runtime = _runtime(tmp_path, server.url)
        try:
            again = run_items(items, _ask, output=out, concurrency=3, runtime=runtime, resume=True)
        finally:
            runtime.close()
    assert result.done == 5 and result.failed == 0 and result.unfinished == 7
    assert result.stop_reason.startswith("budget exceeded (max_calls)") and result.exit_status == EXIT_FAILED
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["run"]["resumed"] is True and manifest["run"]["skipped_already_done"] == 5
    assert again.complete and _ids(out) == [item_id for item_id, _ in items]


def test_resuming_10000_items_with_9999_done_runs_only_the_missing_one(tmp_path: Path) -> None:
    out = tmp_path / "big.jsonl"
    filler = "x" * 2000
    items = [(f"d-{index:05d}", index) for index in range(10_000)]
    out.write_text("".join(json.dumps({"id": item_id, "text": filler}) + "\n" for item_id, _ in items[:-1]))
    ran: list[int] = []

    def work(payload: int) -> dict:
        ran.append(payload)
        return {"id": f"d-{payload:05d}", "text": filler}

    result = run_items(items, work, output=out, resume=True)
    assert ran == [9_999] and result.skipped == 9_999 and result.complete
    assert len(_ids(out)) == 10_000


def test_sigterm_stops_the_run_cleanly_and_restores_the_handler(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.25, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    result = run_items(_items(40), Counting(sleep=0.05), output=out, concurrency=2)
    timer.cancel()
    assert result.interrupted and result.exit_status == EXIT_INTERRUPTED
    assert result.stop_reason == "interrupted by SIGTERM"
    assert len(_ids(out)) == result.done and result.unfinished == 40 - result.done
    assert signal.getsignal(signal.SIGTERM) == before
