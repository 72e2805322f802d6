"""The cache's result layer: a replayed Predict call skips formatting and parsing, and nothing else changes."""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest

from cscprog.cache import CacheMissError, ResponseCache, activate
from cscprog.cache.results import RESULTS_DIR, json_plain
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.testing import OpenAICompatibleServer
from cscprog.testing.engines import AnswerRequest, AsyncScriptedEngine, ScriptedEngine

MODEL = "offline/echo-v1"
QUESTIONS = [f"Where is my parcel number {i}?" for i in range(4)]
SENTINEL = "sk-SENTINEL-result-layer-do-not-store"


def _answer(field: str, request: AnswerRequest) -> str:
    if field == "score":
        return str(len(request.inputs.get("question", "")) / 4)
    if field == "tags":
        return '["late", "parcel"]'
    return f"{field} for {request.inputs.get('question', '')}"


def _refuse(field: str, request: AnswerRequest) -> str:
    raise RuntimeError("no LM call may be made here")


def _lm(engine: ScriptedEngine, model: str = MODEL, **kwargs: object) -> dspy.LM:
    return dspy.LM(model, engine=engine, async_engine=AsyncScriptedEngine(engine), temperature=0.0, **kwargs)


class Support(dspy.Signature):
    """Answer the customer in one short sentence."""

    question: str = dspy.InputField(desc="what the customer wrote")
    answer: str = dspy.OutputField(desc="the reply")
    score: float = dspy.OutputField()
    tags: list[str] = dspy.OutputField()


def _ask(program: dspy.Module, lm: dspy.LM, questions: list[str] = QUESTIONS, *, history: bool = False) -> list[dict]:
    with dspy.context(lm=lm, disable_history=not history):
        return [program(question=question).toDict() for question in questions]


def _record(directory: Path, program: dspy.Module) -> list[dict]:
    with ResponseCache(directory) as cache, activate(cache):
        recorded = _ask(program, _lm(ScriptedEngine(_answer)))
        assert cache.results.counts["stores"] == len(QUESTIONS)
    return recorded


def test_replay_through_the_layer_equals_the_full_path(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    recorded = _record(tmp_path, program)
    refusing = ScriptedEngine(_refuse)
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        layered = _ask(program, _lm(refusing))
        assert cache.results.counts["hits"] == len(QUESTIONS)
        full = _ask(program, _lm(refusing), history=True)  # DSPy history on: the layer stands aside
        assert cache.results.counts["hits"] == len(QUESTIONS)
        assert cache.run_stats()["hits"] == 2 * len(QUESTIONS)
    assert refusing.calls == 0
    assert layered == full == recorded
    assert [type(row["score"]) for row in layered] == [float] * len(QUESTIONS)
    assert layered[0]["tags"] == ["late", "parcel"]


def test_async_calls_use_the_layer_too(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    recorded = _record(tmp_path, program)

    async def replay(lm: dspy.LM) -> list[dict]:
        with dspy.context(lm=lm, disable_history=True):
            return [(await program.acall(question=question)).toDict() for question in QUESTIONS]

    import asyncio

    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        assert asyncio.run(replay(_lm(ScriptedEngine(_refuse)))) == recorded
        assert cache.results.counts["hits"] == len(QUESTIONS)


def test_hits_report_the_same_usage_and_observer_events_as_the_full_path(tmp_path: Path) -> None:
    from tests.cache.test_cache import Recorder

    program = dspy.Predict(Support)
    _record(tmp_path, program)
    layered, full = Recorder(), Recorder()
    with ResponseCache(tmp_path, mode="replay", observer=layered) as cache, activate(cache, role="judge"):
        _ask(program, _lm(ScriptedEngine(_refuse)))
        layered_stats = cache.run_stats()
    with ResponseCache(tmp_path, mode="replay", observer=full) as cache, activate(cache, role="judge"):
        _ask(program, _lm(ScriptedEngine(_refuse)), history=True)
        assert cache.results.counts["hits"] == 0
        full_stats = cache.run_stats()
    assert layered.events == full.events and layered.kinds() == ["hit"] * len(QUESTIONS)
    assert layered.events[0][1].role == "judge" and layered.events[0][2]["total_tokens"] > 0
    assert layered_stats["saved"] == full_stats["saved"] and layered_stats["hits"] == full_stats["hits"]


@pytest.mark.parametrize("change", ["instructions", "field description", "demos", "inputs", "model", "rollout"])
def test_a_change_to_what_makes_the_prompt_misses(tmp_path: Path, change: str) -> None:
    program = dspy.Predict(Support)
    _record(tmp_path, program)
    lm = _lm(ScriptedEngine(_refuse))
    questions = QUESTIONS[:1]
    if change == "instructions":
        program = dspy.Predict(Support.with_instructions("Answer the customer in two sentences."))
    elif change == "field description":
        program = dspy.Predict(Support.with_updated_fields("answer", desc="the reply, kind and short"))
    elif change == "demos":
        program = dspy.Predict(Support)
        program.demos = [dspy.Example(question="Hi?", answer="Hello.", score=1.0, tags=["greeting"])]
    elif change == "inputs":
        questions = [QUESTIONS[0] + "!"]
    elif change == "model":
        lm = _lm(ScriptedEngine(_refuse), model="offline/echo-v2")
    else:
        program = dspy.Predict(Support, rollout_id=7, temperature=0.5)
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        with pytest.raises(CacheMissError) as raised:
            _ask(program, lm, questions)
        assert cache.results.counts["hits"] == 0 and cache.results.counts["misses"] == 1
    assert "no cached response" in str(raised.value) and str(tmp_path) in str(raised.value)


def test_replay_writes_nothing_and_a_cache_without_results_takes_the_full_path(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    with ResponseCache(tmp_path) as cache, activate(cache):
        recorded = _ask(program, _lm(ScriptedEngine(_answer)), history=True)  # history on: no result stored
    assert not (tmp_path / RESULTS_DIR).exists()
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        assert _ask(program, _lm(ScriptedEngine(_refuse))) == recorded
        assert cache.results.counts["stores"] == 0 and cache.run_stats()["hits"] == len(QUESTIONS)
    assert not (tmp_path / RESULTS_DIR).exists()


def test_clearing_lm_entries_drops_results_so_replay_misses_again(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    _record(tmp_path, program)
    with ResponseCache(tmp_path) as cache:
        cache.clear(model=MODEL)
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache), pytest.raises(CacheMissError):
        _ask(program, _lm(ScriptedEngine(_refuse)), QUESTIONS[:1])


def test_refresh_recomputes_and_rewrites_the_result(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    _record(tmp_path, program)

    def other(field: str, request: AnswerRequest) -> str:
        return "refreshed" if field == "answer" else _answer(field, request)

    engine = ScriptedEngine(other)
    with ResponseCache(tmp_path, mode="refresh") as cache, activate(cache):
        refreshed = _ask(program, _lm(engine))
    assert engine.calls == len(QUESTIONS)
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        assert _ask(program, _lm(ScriptedEngine(_refuse))) == refreshed
        assert cache.results.counts["hits"] == len(QUESTIONS)
    assert {row["answer"] for row in refreshed} == {"refreshed"}


def test_invoke_failure_keeps_the_raw_text_on_a_result_hit(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    _record(tmp_path, program)

    def failure(lm: dspy.LM, history: bool) -> GenerationFailure:
        with dspy.context(lm=lm, disable_history=not history), pytest.raises(GenerationFailure) as raised:
            invoke(program, role="judge", attempts=1, validate=lambda p: "never good", question=QUESTIONS[0])
        return raised.value

    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        layered = failure(_lm(ScriptedEngine(_refuse)), history=False)
        assert cache.results.counts["hits"] == 1
        full = failure(_lm(ScriptedEngine(_refuse)), history=True)
    assert layered.raw_text and layered.raw_text == full.raw_text and str(layered) == str(full)


def test_no_secret_reaches_a_result_entry_and_endpoints_stay_apart(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    with OpenAICompatibleServer(answer=_answer) as server, ResponseCache(tmp_path) as cache, activate(cache):
        for endpoint in (server.url, server.url.replace("127.0.0.1", "localhost")):
            lm = dspy.LM("openai/test-model", api_base=endpoint, api_key=SENTINEL, temperature=0.0, num_retries=0)
            _ask(program, lm, QUESTIONS[:1])
        assert cache.results.counts["stores"] == 2 and len(server.requests) == 2
    stored = b"".join(path.read_bytes() for path in (tmp_path / RESULTS_DIR).rglob("*") if path.is_file())
    assert stored and SENTINEL.encode() not in stored


def test_outputs_that_do_not_survive_json_always_take_the_full_path() -> None:
    assert json_plain([{"answer": "a", "n": 3, "x": 1.5, "ok": True, "none": None, "l": ["a"]}])
    assert not json_plain([{"t": ("a",)}]) and not json_plain([{"x": float("nan")}]) and not json_plain({1: "a"})


def test_a_result_whose_lm_entry_was_lost_is_not_served(tmp_path: Path) -> None:
    program = dspy.Predict(Support)
    _record(tmp_path, program)
    with ResponseCache(tmp_path) as cache:
        lost = sorted(cache._store)[0]
        cache._store.delete(lost)
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache), pytest.raises(CacheMissError):
        _ask(program, _lm(ScriptedEngine(_refuse)))
    assert cache.results.counts["stale"] == 1


def test_a_result_store_of_the_eight_file_layout_is_reduced_to_one_when_written(tmp_path: Path) -> None:
    from cscprog.cache.results import RESULT_SHARDS, ResultStore
    from cscprog.cache.shards import ShardedStore

    old = ShardedStore(tmp_path / RESULTS_DIR, repair=True, shards=8)
    keys = [f"{index:064x}" for index in range(64)]
    for key in keys:
        old.set(key, b"stale")
    kept = [key for key in keys if old._index(key) == 0]
    old.close()
    ResultStore(tmp_path, mode="replay").get(keys[0])  # replay changes nothing
    assert len([shard for shard in (tmp_path / RESULTS_DIR).iterdir() if shard.is_dir()]) == 8
    store = ResultStore(tmp_path, mode="readwrite")
    store.put("a" * 64, [{"answer": "4"}], [])
    assert sorted(shard.name for shard in (tmp_path / RESULTS_DIR).iterdir() if shard.is_dir()) == ["000"]
    assert RESULT_SHARDS == 1 and store._opened(create=False).get(kept[0]) == b"stale"
    store.close()
