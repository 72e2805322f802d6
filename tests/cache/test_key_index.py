"""The key index: misses answered without SQLite, and never a miss for an entry another connection stored."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from cscprog.cache import ResponseCache
from cscprog.cache.key_index import KeyIndex
from cscprog.cache.shards import SHARDS, ShardedStore
from cscprog.cache.writer import BatchWriter


def _keys(count: int, start: int = 0) -> list[str]:
    return [f"{index:064x}" for index in range(start, start + count)]


def _indexed(store: ShardedStore) -> int:
    return sum(store.keys.indexed(shard) for shard in range(SHARDS))


def test_misses_are_answered_without_sqlite_and_own_writes_keep_the_index(tmp_path):
    store = ShardedStore(tmp_path / "cache", repair=True)
    absent = _keys(40)
    assert all(store.get(key) is None for key in absent)
    assert store.keys.skipped == 40 and _indexed(store) == SHARDS
    for key in absent[:10]:
        assert store.set(key, b"v-" + key.encode())
    store.set_many([(key, b"w") for key in absent[10:20]])
    assert store.delete(absent[0])
    assert _indexed(store) == SHARDS  # the store's own commits were absorbed
    assert store.get(absent[0]) is None and store.get(absent[1]) == b"v-" + absent[1].encode()
    assert all(store.get(key) == b"w" for key in absent[10:20]) and absent[15] in store
    skipped = store.keys.skipped
    assert all(store.get(key) is None for key in absent[20:]) and absent[30] not in store
    assert store.keys.skipped == skipped + 21
    store.close()


def test_entries_present_when_the_store_opens_are_served(tmp_path):
    first = ShardedStore(tmp_path / "cache", repair=True)
    first.set_many([(key, key.encode()) for key in _keys(100)])
    first.close()
    second = ShardedStore(tmp_path / "cache", repair=True)
    assert all(second.get(key) == key.encode() for key in _keys(100))
    assert all(second.get(key) is None for key in _keys(50, start=100)) and second.keys.skipped == 50
    second.close()


def test_a_write_by_another_store_unindexes_the_shard_and_is_served(tmp_path):
    ours = ShardedStore(tmp_path / "cache", repair=True)
    theirs = ShardedStore(tmp_path / "cache", repair=True)
    keys = _keys(64)
    assert all(ours.get(key) is None for key in keys)  # every shard indexed
    theirs.set(keys[5], b"theirs")
    assert ours.get(keys[5]) == b"theirs"
    assert _indexed(ours) == SHARDS - 1  # that shard now goes to SQLite for every lookup
    ours.set(keys[6], b"ours")  # a later own write must not make the other store's write look absent again
    assert ours.get(keys[5]) == b"theirs" and ours.get(keys[6]) == b"ours"
    ours.close()
    theirs.close()


_WRITER = """
import sys
from pathlib import Path
from cscprog.cache.shards import ShardedStore
store = ShardedStore(Path(sys.argv[1]), repair=True)
for index in range(int(sys.argv[2]), int(sys.argv[3])):
    store.set(f"{index:064x}", b"from the other process")
store.close()
"""


def test_entries_another_process_stores_while_we_write_are_never_missed(tmp_path):
    directory = tmp_path / "cache"
    ours = ShardedStore(directory, repair=True)
    writer = BatchWriter()
    assert all(ours.get(key) is None for key in _keys(400))
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(directory), "0", "200"])
    stop = threading.Event()

    def write_our_own() -> None:
        index = 1000
        while not stop.is_set():
            writer.put(ours, f"{index:064x}", b"ours")
            writer.flush()
            index += 1

    thread = threading.Thread(target=write_our_own)
    thread.start()
    try:
        assert child.wait(timeout=120) == 0
    finally:
        stop.set()
        thread.join()
        writer.close()
    assert [key for key in _keys(200) if ours.get(key) != b"from the other process"] == []
    ours.close()


def test_a_shard_over_the_key_limit_is_not_indexed(tmp_path):
    store = ShardedStore(tmp_path / "cache", repair=True)
    store.set_many([(key, b"v") for key in _keys(200)])
    store.close()
    databases = [tmp_path / "cache" / f"{shard:03d}" / "cache.db" for shard in range(SHARDS)]
    index = KeyIndex(databases, max_keys=10)
    assert index.may_hold(0, "f" * 64) and not index.indexed(0) and index.skipped == 0
    index.close()


def test_a_fresh_response_cache_run_looks_nothing_up_in_sqlite(tmp_path):
    with ResponseCache(tmp_path / "cache") as cache:
        for number in range(30):
            request = {"model": "openai/m", "messages": [{"role": "user", "content": f"question {number}"}]}
            assert cache.get(request) is None
            cache.put(request, {"_dspy_format": "dspy-lm15-result-v1", "outputs": [f"answer {number}"]})
        cache.flush()
        assert cache._store.keys.skipped == 30
        again = {"model": "openai/m", "messages": [{"role": "user", "content": "question 7"}]}
        cache.reset_memory_cache()
        assert cache.get(again)["outputs"] == ["answer 7"]


def test_a_closed_index_always_says_look_it_up(tmp_path):
    store = ShardedStore(tmp_path / "cache", repair=True)
    store.keys.close()
    assert store.keys.may_hold(0, "0" * 64) and not any(store.keys.indexed(shard) for shard in range(SHARDS))
    store.set("0" * 64, b"v")
    assert store.get("0" * 64) == b"v"
    store.close()


def test_databases_are_named_per_shard(tmp_path):
    store = ShardedStore(tmp_path / "cache", repair=True)
    assert [Path(path).parent.name for path in store.keys._databases] == [f"{n:03d}" for n in range(SHARDS)]
    store.close()


def test_a_forked_child_indexes_afresh_and_sees_what_the_parent_stored(tmp_path):
    import multiprocessing

    store = ShardedStore(tmp_path / "cache", repair=True)
    keys = _keys(32)
    assert all(store.get(key) is None for key in keys)  # the parent's index is loaded
    store.set(keys[3], b"parent")
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        results.put((store.get(keys[3]), store.get(keys[4]), store.keys.skipped, store.keys._pid))

    process = context.Process(target=child)
    process.start()
    process.join(timeout=60)
    found, absent, skipped, pid = results.get(timeout=10)
    assert process.exitcode == 0 and found == b"parent" and absent is None
    assert pid != store.keys._pid and skipped == store.keys.skipped + 1  # one miss answered by the child's own index
    store.close()


def test_an_inexact_index_reads_no_data_version_and_only_ever_says_absent_wrongly(tmp_path):
    ours = ShardedStore(tmp_path / "cache", repair=True, shards=1, exact_index=False)
    theirs = ShardedStore(tmp_path / "cache", repair=True, shards=1)
    keys = _keys(8)
    assert ours.get(keys[0]) is None
    theirs.set(keys[1], b"theirs")
    assert ours.get(keys[1]) is None and ours.keys.indexed(0)  # not noticed: derived data is recomputed instead
    ours.set(keys[2], b"ours")
    assert ours.get(keys[2]) == b"ours" and theirs.get(keys[2]) == b"ours"
    ours.close()
    theirs.close()
