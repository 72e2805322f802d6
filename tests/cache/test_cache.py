"""Tests of cscprog.cache: keys, modes, integrity, observer, bundles, routing, concurrency (all offline)."""

from __future__ import annotations

import asyncio
import gzip
import json
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dspy
import pydantic
import pytest

from cscprog.cache import (
    LAST_RUN_FILE,
    CacheBundleError,
    CacheError,
    CacheMissError,
    CacheRouter,
    CallInfo,
    CallObserver,
    ResponseCache,
    activate,
    install_router,
    read_last_run,
)
from cscprog.errors import CscprogError
from cscprog.testing.engines import AnswerRequest, AsyncScriptedEngine, ScriptedEngine

MODEL = "offline/echo-v1"
QUESTIONS = [f"Where is my parcel number {i}?" for i in range(5)]
SENTINEL = "sk-SENTINEL-4242-do-not-store"


def _refuse(field: str, request: AnswerRequest) -> str:
    raise RuntimeError("no LM call may be made here")


def refusing_engine() -> ScriptedEngine:
    """An engine that fails on any call (and counts it): proves a run was served from the cache."""
    return ScriptedEngine(_refuse)


def make_lm(engine: ScriptedEngine, **kwargs: object) -> dspy.LM:
    return dspy.LM(MODEL, engine=engine, async_engine=AsyncScriptedEngine(engine), temperature=0.0, **kwargs)


def ask(lm: dspy.LM, questions: list[str] = QUESTIONS) -> list[str]:
    program = dspy.Predict("question -> answer")
    with dspy.context(lm=lm):
        return [program(question=question).answer for question in questions]


def native_record(text: str = "hello", prompt_tokens: int = 10, completion_tokens: int = 3) -> dict:
    """A record shaped like the one DSPy's native path stores."""
    return {
        "_dspy_format": "dspy-lm15-result-v1",
        "responses": [],
        "outputs": [text],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "cost": 0.002,
        "cost_details": {},
        "raw": None,
        "response_model": MODEL,
    }


def request(text: str = "hi", **extra: object) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "system", "content": "be kind"}, {"role": "user", "content": text}],
        "temperature": 0.0,
        "_fn_identifier": "dspy.clients.lm.litellm_completion",
        **extra,
    }


class Recorder:
    """A CallObserver that records every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, CallInfo, dict | None, float | None]] = []
        self.lock = threading.Lock()

    def before_call(self, call: CallInfo) -> None:
        with self.lock:
            self.events.append(("before", call, None, None))

    def after_call(self, call: CallInfo, usage: dict[str, int], cost: float | None) -> None:
        with self.lock:
            self.events.append(("after", call, usage, cost))

    def on_hit(self, call: CallInfo, usage: dict[str, int], cost: float | None) -> None:
        with self.lock:
            self.events.append(("hit", call, usage, cost))

    def kinds(self) -> list[str]:
        return [event[0] for event in self.events]


# --- record and replay ------------------------------------------------------------------------------------------


def test_record_then_replay_is_identical_with_zero_engine_calls(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    with ResponseCache(tmp_path) as cache, activate(cache):
        recorded = ask(make_lm(engine))
    assert engine.calls == len(QUESTIONS)

    refusing = refusing_engine()
    replay_lm = make_lm(refusing)
    with ResponseCache(tmp_path, mode="replay") as replay, activate(replay):
        replayed = ask(replay_lm)
        counts = replay.run_stats()
    assert replayed == recorded
    assert refusing.calls == 0
    assert (counts["hits"], counts["misses"], counts["errors"]) == (len(QUESTIONS), 0, 0)
    assert replay_lm.history[-1]["usage"] == {}  # DSPy saw a cache hit
    assert counts["saved"]["total_tokens"] > 0


def test_readwrite_second_call_is_a_hit(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    lm = make_lm(engine)
    with ResponseCache(tmp_path) as cache, activate(cache):
        first = ask(lm, QUESTIONS[:1])
        second = ask(lm, QUESTIONS[:1])
        counts = cache.run_stats()
    assert first == second and engine.calls == 1
    assert (counts["hits"], counts["misses"], counts["stores"]) == (1, 1, 1)
    assert counts["by_call"] == [
        {"model": MODEL, "endpoint": "default", "hits": 1, "misses": 1, "stores": 1, "errors": 0}
    ]


def test_replay_miss_error_names_role_model_endpoint_and_message(tmp_path: Path) -> None:
    refusing = refusing_engine()
    question = "My refund for order 77 never arrived " + "and I am waiting " * 40
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache, role="customer"):
        with pytest.raises(CacheMissError) as caught:
            ask(make_lm(refusing), [question])
    error = caught.value
    assert isinstance(error, CscprogError)
    message = str(error)
    assert "role customer" in message and f"model {MODEL}" in message and "endpoint default" in message
    assert "My refund for order 77 never arrived" in message
    assert len(error.excerpt) <= 200
    assert refusing.calls == 0
    assert (error.role, error.model, error.endpoint) == ("customer", MODEL, "default")


def test_replay_miss_names_the_endpoint_of_the_request() -> None:
    cache = ResponseCache(None, mode="replay")
    with pytest.raises(CacheMissError, match=r"endpoint http://gpu-1:8000/v1 .*'Is it raining\?'"):
        cache.get(request("Is it raining?", api_base="http://gpu-1:8000/v1/"))


# --- keys -------------------------------------------------------------------------------------------------------


def test_key_keeps_endpoints_apart_and_normalizes_trailing_slash() -> None:
    cache = ResponseCache(None)
    ignored = ["api_key", "api_base", "base_url"]  # what DSPy passes: we still count the endpoint
    a = cache.cache_key(request(api_base="http://a:8000/v1"), ignored)
    assert a != cache.cache_key(request(api_base="http://b:8000/v1"), ignored)
    assert a != cache.cache_key(request(), ignored)
    assert a == cache.cache_key(request(api_base="http://a:8000/v1/"), ignored)
    assert a == cache.cache_key(request(base_url="http://a:8000/v1"), ignored)


def test_same_model_on_two_endpoints_stores_two_entries() -> None:
    cache = ResponseCache(None)
    cache.put(request(api_base="http://a/v1"), native_record("from a"))
    cache.put(request(api_base="http://b/v1"), native_record("from b"))
    assert cache.get(request(api_base="http://a/v1"))["outputs"] == ["from a"]
    assert cache.get(request(api_base="http://b/v1/"))["outputs"] == ["from b"]
    assert sorted(cache.stats()["by_endpoint"]) == ["http://a/v1", "http://b/v1"]


def test_key_never_depends_on_credentials() -> None:
    cache = ResponseCache(None)
    base = cache.cache_key(request())
    assert base == cache.cache_key(request(api_key=SENTINEL))
    assert base == cache.cache_key(request(azure_api_key=SENTINEL, aws_session_token=SENTINEL))
    headers = cache.cache_key(request(extra_headers={"X-Team": "a", "Authorization": f"Bearer {SENTINEL}"}))
    assert headers == cache.cache_key(request(extra_headers={"X-Team": "a", "x-api-token": "other"}))
    assert headers != cache.cache_key(request(extra_headers={"X-Team": "b"}))


@pytest.mark.parametrize(
    "change",
    [
        {"model": "offline/other"},
        {"temperature": 0.7},
        {"max_tokens": 10},
        {"rollout_id": 3},
        {"_fn_identifier": "dspy.clients.lm.alitellm_completion"},
        {"messages": [{"role": "user", "content": "different"}]},
    ],
)
def test_key_changes_with_everything_that_changes_the_output(change: dict) -> None:
    cache = ResponseCache(None)
    assert cache.cache_key(request()) != cache.cache_key({**request(), **change})


def test_key_includes_the_version_tag() -> None:
    first, second = ResponseCache(None, version="1"), ResponseCache(None, version="2")
    assert first.cache_key(request()) != second.cache_key(request())


def test_key_handles_pydantic_types_and_callables() -> None:
    class Answer(pydantic.BaseModel):
        text: str

    class Other(pydantic.BaseModel):
        value: int

    cache = ResponseCache(None)
    key = cache.cache_key(request(response_format=Answer))
    assert key == cache.cache_key(request(response_format=Answer))
    assert key != cache.cache_key(request(response_format=Other))
    assert cache.cache_key(request(tool=len)) == cache.cache_key(request(tool=len))


def test_api_key_is_in_no_file_of_the_cache_dir(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    with ResponseCache(directory) as cache:
        secret_request = request(
            api_key=SENTINEL, api_base="http://a/v1", extra_headers={"Authorization": f"Bearer {SENTINEL}"}
        )
        assert cache.get(secret_request) is None
        cache.put(secret_request, native_record())
        assert cache.get(secret_request)["outputs"] == ["hello"]
        cache.export(directory / "bundle.jsonl.gz")
    files = [path for path in directory.rglob("*") if path.is_file()]
    assert any(path.name == LAST_RUN_FILE for path in files) and len(files) >= 3
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        assert SENTINEL.encode() not in data, path


# --- integrity ----------------------------------------------------------------------------------------------------


def _rewrite_stored_values(directory: Path, damage: Callable[[bytes], bytes]) -> int:
    """Apply ``damage(bytes) -> bytes`` to every value in the SQLite shards, as a crash or a bad disk would."""
    changed = 0
    for database in directory.rglob("cache.db"):
        with sqlite3.connect(database) as connection:
            rows = connection.execute("SELECT rowid, value FROM Cache WHERE value IS NOT NULL").fetchall()
            for rowid, value in rows:
                connection.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (damage(bytes(value)), rowid))
                changed += 1
    return changed


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda blob: blob[:-30] + b"X" + blob[-29:], id="bit-flip-in-payload"),
        pytest.param(lambda blob: blob[: len(blob) // 2], id="half-written"),
        pytest.param(lambda blob: b"\x80\x04garbage", id="not-an-entry"),
    ],
)
def test_corrupted_entry_is_deleted_and_recomputed(
    tmp_path: Path, damage: Callable[[bytes], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    engine = ScriptedEngine()
    with ResponseCache(tmp_path) as cache, activate(cache):
        first = ask(make_lm(engine), QUESTIONS[:1])
    assert _rewrite_stored_values(tmp_path, damage) == 1

    with ResponseCache(tmp_path) as cache, activate(cache):
        again = ask(make_lm(engine), QUESTIONS[:1])
        counts = cache.run_stats()
    assert again == first
    assert engine.calls == 2  # recomputed, the damaged entry was never returned
    assert (counts["errors"], counts["misses"], counts["stores"]) == (1, 1, 1)
    assert "corrupt" in caplog.text

    refusing = refusing_engine()
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        assert ask(make_lm(refusing), QUESTIONS[:1]) == first  # healthy again


def test_corrupt_entry_in_replay_mode_is_a_miss_error(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        cache.put(request(), native_record())
    _rewrite_stored_values(tmp_path, lambda blob: blob[:-5])
    with ResponseCache(tmp_path, mode="replay") as cache:
        with pytest.raises(CacheMissError):
            cache.get(request())
        assert cache.run_stats()["errors"] == 1


# --- modes --------------------------------------------------------------------------------------------------------


def test_off_mode_always_calls_and_stores_nothing(tmp_path: Path) -> None:
    engine, observer = ScriptedEngine(), Recorder()
    with ResponseCache(tmp_path, mode="off", observer=observer) as cache, activate(cache):
        ask(make_lm(engine), QUESTIONS[:2])
        ask(make_lm(engine), QUESTIONS[:2])
        assert cache.stats()["entries"] == 0
    assert engine.calls == 4
    assert observer.kinds() == ["before", "after"] * 4


def test_refresh_mode_recomputes_and_overwrites(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache, activate(cache):
        old = ask(make_lm(ScriptedEngine(lambda field, request: "old")), QUESTIONS[:1])
    fresh = ScriptedEngine(lambda field, request: "new")
    with ResponseCache(tmp_path, mode="refresh") as cache, activate(cache):
        assert ask(make_lm(fresh), QUESTIONS[:1]) == ["new"]
        assert ask(make_lm(fresh), QUESTIONS[:1]) == ["new"]
    assert old == ["old"] and fresh.calls == 2
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        assert ask(make_lm(refusing_engine()), QUESTIONS[:1]) == ["new"]


def test_invalid_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        ResponseCache(None, mode="sometimes")  # type: ignore[arg-type]


# --- observer -----------------------------------------------------------------------------------------------------


def test_observer_hears_miss_store_and_hit_with_usage(tmp_path: Path) -> None:
    observer = Recorder()
    assert isinstance(observer, CallObserver)
    engine = ScriptedEngine()
    lm = make_lm(engine, max_tokens=300)
    with ResponseCache(tmp_path, observer=observer) as cache, activate(cache, role="supporter"):
        ask(lm, QUESTIONS[:1])
        ask(lm, QUESTIONS[:1])
    assert observer.kinds() == ["before", "after", "hit"]
    (_, before, _, _), (_, after, used, cost), (_, hit, saved, saved_cost) = observer.events
    real = lm.history[0]["usage"]
    assert used == {key: real[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert used["total_tokens"] > 0 and saved == used and saved_cost == cost
    assert before == after == hit
    assert (before.model, before.endpoint, before.role) == (MODEL, None, "supporter")
    assert (before.n, before.max_tokens) == (1, 300)
    assert before.prompt_chars > len(QUESTIONS[0])
    assert len(before.key) == 64


def test_observer_can_stop_a_call_before_it_is_made(tmp_path: Path) -> None:
    class BudgetExhausted(RuntimeError):
        pass

    class Budget(Recorder):
        def before_call(self, call: CallInfo) -> None:
            raise BudgetExhausted(f"no budget left for {call.model}")

    engine = ScriptedEngine()
    with ResponseCache(tmp_path, observer=Budget()) as cache, activate(cache):
        with pytest.raises(BudgetExhausted):
            ask(make_lm(engine), QUESTIONS[:1])
    assert engine.calls == 0


def test_litellm_records_round_trip_with_usage_and_cost() -> None:
    import litellm
    from dspy.clients.call_result import CallResult

    raw = litellm.ModelResponse(
        id="r1",
        model="gpt-4o-mini",
        choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi there"}}],
        usage={"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
    )
    raw._hidden_params["response_cost"] = 0.0042
    observer = Recorder()
    cache = ResponseCache(None, observer=observer)
    cache.put(request(model="openai/gpt-4o-mini"), raw)
    back = cache.get(request(model="openai/gpt-4o-mini"))
    assert isinstance(back, litellm.ModelResponse) and back is not raw
    assert back.choices[0].message.content == "hi there"
    lm = dspy.LM("openai/gpt-4o-mini", engine="litellm")
    result = CallResult.legacy(lm, back, kwargs={"model": "openai/gpt-4o-mini", "messages": []})
    assert result.outputs == ["hi there"] and result.cost == pytest.approx(0.0042)
    assert observer.events[0][2] == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    assert observer.events[1][0] == "hit" and observer.events[1][3] == pytest.approx(0.0042)
    assert cache.stats()["by_model"]["openai/gpt-4o-mini"]["cost"] == pytest.approx(0.0042)


def test_unserializable_record_is_not_stored(caplog: pytest.LogCaptureFixture) -> None:
    cache = ResponseCache(None)
    cache.put(request(), {"_dspy_format": "dspy-lm15-result-v1", "outputs": [object()]})
    assert cache.get(request()) is None
    assert "not JSON-serializable" in caplog.text


# --- bundles ------------------------------------------------------------------------------------------------------


def test_export_import_into_empty_dir_then_replay(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    with ResponseCache(tmp_path / "a") as cache, activate(cache):
        recorded = ask(make_lm(engine))
        bundle = tmp_path / "run.cache.jsonl.gz"
        assert cache.export(bundle) == len(QUESTIONS)

    with ResponseCache(tmp_path / "b", mode="replay") as collaborator:
        assert collaborator.import_bundle(bundle) == len(QUESTIONS)
        assert collaborator.import_bundle(bundle) == 0  # existing entries are kept
        assert collaborator.import_bundle(bundle, overwrite=True) == len(QUESTIONS)
        refusing = refusing_engine()
        with activate(collaborator):
            assert ask(make_lm(refusing)) == recorded
        assert refusing.calls == 0

    lines = gzip.decompress(bundle.read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["format"] == "cscprog-cache-bundle"
    assert len(lines) == len(QUESTIONS) + 1
    assert all(set(json.loads(line)) == {"key", "meta", "payload", "sum"} for line in lines[1:])


def test_export_can_select_one_model(tmp_path: Path) -> None:
    cache = ResponseCache(None)
    cache.put(request("a"), native_record())
    cache.put(request("b", model="other/m"), native_record())
    assert cache.export(tmp_path / "one.gz", model="other/m") == 1
    fresh = ResponseCache(None)
    assert fresh.import_bundle(tmp_path / "one.gz") == 1
    assert list(fresh.stats()["by_model"]) == ["other/m"]


def _bundle_lines(tmp_path: Path) -> list[bytes]:
    cache = ResponseCache(None)
    for text in ("a", "b", "c"):
        cache.put(request(text), native_record(text))
    cache.export(tmp_path / "good.gz")
    return gzip.decompress((tmp_path / "good.gz").read_bytes()).splitlines()


def _tamper_payload(line: bytes) -> bytes:
    data = json.loads(line)
    data["payload"] = data["payload"].replace('"a"', '"z"')
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("edit", "line", "reason"),
    [
        (lambda lines: lines[:2] + [b"{not json"] + lines[3:], 3, "not valid JSON"),
        (lambda lines: lines[:1] + [_tamper_payload(lines[1])] + lines[2:], 2, "checksum mismatch"),
        (lambda lines: [b'{"format": "something-else"}'] + lines[1:], 1, "not a cscprog cache bundle"),
        (lambda lines: lines[:3] + [b'{"key": "abc"}'], 4, "missing field"),
        (lambda lines: lines[:1] + [b'["a list"]'] + lines[2:], 2, "not a JSON object"),
    ],
)
def test_malformed_bundle_is_rejected_naming_the_line(
    tmp_path: Path, edit: Callable[[list[bytes]], list[bytes]], line: int, reason: str
) -> None:
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\n".join(edit(_bundle_lines(tmp_path))) + b"\n"))
    cache = ResponseCache(None)
    with pytest.raises(CacheBundleError) as caught:
        cache.import_bundle(bad)
    assert f"line {line}" in str(caught.value) and reason in str(caught.value)
    assert str(bad) in str(caught.value)
    assert isinstance(caught.value, CscprogError)
    assert cache.stats()["entries"] == 0  # nothing imported from a bad bundle


def test_bundle_that_is_not_gzip_or_missing_is_rejected(tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"format": "cscprog-cache-bundle"}\n')
    with pytest.raises(CacheBundleError, match="gzip"):
        ResponseCache(None).import_bundle(plain)
    with pytest.raises(CacheBundleError, match="not found"):
        ResponseCache(None).import_bundle(tmp_path / "nowhere.gz")


def test_save_and_load_memory_cache_use_bundles(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "a") as cache:
        cache.put(request(), native_record("kept"))
        cache.save_memory_cache(str(tmp_path / "memory.gz"))
    with ResponseCache(tmp_path / "b") as other:
        other.load_memory_cache(str(tmp_path / "memory.gz"))
        assert other.get(request())["outputs"] == ["kept"]
    memory_only = ResponseCache(None)
    memory_only.load_memory_cache(str(tmp_path / "memory.gz"))
    memory_only.save_memory_cache(str(tmp_path / "again.gz"))
    assert ResponseCache(None).import_bundle(tmp_path / "again.gz") == 1


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="cannot open the response cache"):
        ResponseCache(blocker / "cache")


# --- management ---------------------------------------------------------------------------------------------------


def test_stats_and_clear_by_model_and_endpoint(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        with dspy.context(cscprog_role="judge"):
            cache.put(request("1", api_base="http://a/v1"), native_record())
            cache.put(request("2", api_base="http://b/v1"), native_record())
        cache.put(request("3", model="other/m"), native_record(prompt_tokens=5, completion_tokens=1))
        stats = cache.stats()
        assert stats["entries"] == 3 and stats["bytes"] > 0 and stats["corrupt"] == 0
        assert stats["by_model"]["other/m"]["prompt_tokens"] == 5
        assert stats["by_role"]["judge"]["entries"] == 2 and stats["by_role"]["(none)"]["entries"] == 1
        assert set(stats["by_endpoint"]) == {"http://a/v1", "http://b/v1", "default"}
        assert stats["process"]["stores"] == 3
        assert cache.clear(endpoint="http://a/v1/") == 1
        assert cache.clear(model="other/m") == 1
        assert cache.clear(model="nothing/here") == 0
        assert cache.stats()["entries"] == 1
        assert cache.clear() == 1
        assert cache.get(request("2", api_base="http://b/v1")) is None


def test_last_run_is_written_on_close_only_after_activity(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        cache.put(request(), native_record())
        cache.get(request())
        cache.get(request("missing"))
    last = read_last_run(tmp_path)
    assert last is not None and (last["hits"], last["misses"], last["stores"]) == (1, 1, 1)
    with ResponseCache(tmp_path) as idle:
        idle.stats()
    assert read_last_run(tmp_path) == last
    assert ResponseCache(tmp_path).stats()["last_run"]["hits"] == 1


def test_contains_discard_and_memory_layer(tmp_path: Path) -> None:
    with ResponseCache(tmp_path, memory_entries=2) as cache:
        for text in "abcde":
            cache.put(request(text), native_record(text))
        assert len(cache._recent) == 2
        key = cache.cache_key(request("a"))
        assert key in cache and "0" * 64 not in cache
        cache.reset_memory_cache()
        assert cache.get(request("a"))["outputs"] == ["a"]  # from disk
        assert cache.discard(request("a")) is True
        assert key not in cache and cache.get(request("a")) is None


def test_get_returns_independent_copies() -> None:
    cache = ResponseCache(None)
    cache.put(request(), native_record())
    first = cache.get(request())
    first["outputs"].append("mutated")
    assert cache.get(request())["outputs"] == ["hello"]


# --- routing ------------------------------------------------------------------------------------------------------


class SpyCache:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def cache_key(self, request: dict, ignored_args_for_cache_key: list[str] | None = None) -> str:
        return "spy"

    def get(self, request: dict, ignored_args_for_cache_key: list[str] | None = None) -> None:
        self.calls.append("get")

    def put(
        self,
        request: dict,
        value: object,
        ignored_args_for_cache_key: list[str] | None = None,
        enable_memory_cache: bool = True,
    ) -> None:
        self.calls.append("put")


def test_router_forwards_to_previous_cache_when_none_is_active(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = SpyCache()
    monkeypatch.setattr(dspy, "cache", spy)
    router = install_router()
    assert isinstance(dspy.cache, CacheRouter) and install_router() is router
    engine = ScriptedEngine()
    ask(make_lm(engine), QUESTIONS[:1])
    assert spy.calls == ["get", "put"]
    with ResponseCache(tmp_path) as cache, activate(cache):
        ask(make_lm(engine), QUESTIONS[1:2])
        assert router.target() is cache
    assert spy.calls == ["get", "put"]
    assert router.cache_key({}) == "spy"


def test_install_router_is_thread_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dspy, "cache", SpyCache())
    with ThreadPoolExecutor(8) as pool:
        routers = list(pool.map(lambda _: install_router(), range(32)))
    assert all(router is routers[0] for router in routers) and dspy.cache is routers[0]


def test_configure_style_activation_also_routes(tmp_path: Path) -> None:
    install_router()
    with ResponseCache(tmp_path) as cache, dspy.context(cscprog_cache=cache):
        ask(make_lm(ScriptedEngine()), QUESTIONS[:1])
        assert cache.run_stats()["stores"] == 1


# --- concurrency --------------------------------------------------------------------------------------------------


def test_parallel_workers_see_the_active_cache(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    questions = [f"question {i}" for i in range(24)]
    program = dspy.Predict("question -> answer")
    with ResponseCache(tmp_path) as cache, activate(cache), dspy.context(lm=make_lm(engine)):
        pairs = [(program, {"question": question}) for question in questions]
        recorded = [p.answer for p in dspy.Parallel(num_threads=6)(pairs)]
        assert cache.run_stats()["stores"] == len(questions)
    refusing = refusing_engine()
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache), dspy.context(lm=make_lm(refusing)):
        replayed = [p.answer for p in dspy.Parallel(num_threads=6)(pairs)]
        assert cache.run_stats()["hits"] == len(questions)
    assert replayed == recorded and refusing.calls == 0


def test_threads_hammering_one_cache(tmp_path: Path) -> None:
    with ResponseCache(tmp_path, memory_entries=8) as cache:

        def work(worker: int) -> int:
            found = 0
            for i in range(40):
                text = f"shared {i % 10}" if i % 2 else f"own {worker}-{i}"
                if cache.get(request(text)) is None:
                    cache.put(request(text), native_record(text))
                else:
                    found += 1
            return found

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(8)))
        stats = cache.stats()
        assert stats["entries"] == 5 + 8 * 20 and stats["corrupt"] == 0
        counts = cache.run_stats()
        assert counts["hits"] + counts["misses"] == 8 * 40 and counts["errors"] == 0


def _write_entries(directory: str, worker: int, count: int) -> None:
    """Child process: write ``count`` entries of its own plus one shared key."""
    with ResponseCache(Path(directory)) as cache:
        for i in range(count):
            cache.put(request(f"worker {worker} item {i}"), native_record(f"{worker}-{i}"))
            cache.put(request("shared"), native_record(f"shared from {worker}"))


def test_two_processes_write_the_same_directory(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_entries, args=(str(tmp_path), worker, 60)) for worker in (1, 2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    with ResponseCache(tmp_path, mode="replay") as cache:
        for worker in (1, 2):
            for i in range(60):
                assert cache.get(request(f"worker {worker} item {i}"))["outputs"] == [f"{worker}-{i}"]
        assert cache.get(request("shared"))["outputs"][0] in {"shared from 1", "shared from 2"}
        assert cache.stats()["entries"] == 121 and cache.stats()["corrupt"] == 0


def test_async_acall_path_records_and_replays(tmp_path: Path) -> None:
    program = dspy.Predict("question -> answer")

    async def run(lm: dspy.LM) -> list[str]:
        with dspy.context(lm=lm):
            results = await asyncio.gather(*(program.acall(question=question) for question in QUESTIONS))
        return [result.answer for result in results]

    engine = ScriptedEngine()
    with ResponseCache(tmp_path) as cache, activate(cache, role="customer"):
        recorded = asyncio.run(run(make_lm(engine)))
        assert cache.run_stats()["stores"] == len(QUESTIONS)
        assert cache.stats()["by_role"]["customer"]["entries"] == len(QUESTIONS)
    refusing = refusing_engine()
    with ResponseCache(tmp_path, mode="replay") as cache, activate(cache):
        assert asyncio.run(run(make_lm(refusing))) == recorded
        with pytest.raises(CacheMissError):  # sync and async calls never share entries (DSPy's _fn_identifier)
            ask(make_lm(refusing), QUESTIONS[:1])
    assert refusing.calls == 0
