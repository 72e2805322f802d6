"""A damaged SQLite shard: quarantined and rebuilt in readwrite mode, untouched in replay mode, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cscprog.cache import ResponseCache
from cscprog.cache.entries import pack_entry
from cscprog.cache.shards import SHARDS, ShardDamagedError
from cscprog.cli import main

ENTRIES = 400


def _fill(directory: Path) -> list[str]:
    keys = [f"{index:064x}" for index in range(ENTRIES)]
    with ResponseCache(directory) as cache:
        for key in keys:
            cache._store.set(key, pack_entry({"kind": "json", "model": "openai/m", "endpoint": "default"},
                                        json.dumps({"text": "x" * 500}).encode()))
    return keys


def _damage_last_page(directory: Path, shard: int = 3) -> Path:
    """Overwrite eight bytes at the start of the shard's last page, as the attack did: SQLite says "malformed"."""
    database = directory / f"{shard:03d}" / "cache.db"
    size = database.stat().st_size
    with database.open("r+b") as handle:
        handle.seek((size // 4096 - 1) * 4096)
        handle.write(b"\xff" * 8)
    return database


def _damage_header(directory: Path, shard: int = 5) -> None:
    database = directory / f"{shard:03d}" / "cache.db"
    with database.open("r+b") as handle:
        handle.write(b"not sqlite at all")


def _damaged_page(directory: Path) -> bytes:
    """The damaged page of shard 3 (opening a cache rewrites its settings page, never this one)."""
    database = directory / "003" / "cache.db"
    data = database.read_bytes()
    return data[(len(data) // 4096 - 1) * 4096:]


def test_a_damaged_shard_is_quarantined_rebuilt_and_the_rest_served(tmp_path, caplog):
    keys = _fill(tmp_path / "cache")
    _damage_last_page(tmp_path / "cache")
    with ResponseCache(tmp_path / "cache") as cache:
        served = sum(cache._lookup(key) is not None for key in keys)
        assert len(cache.quarantined) == 1
        moved = Path(cache.quarantined[0])
        assert moved.parent == tmp_path / "cache" / "quarantine" and (moved / "cache.db").is_file()
        assert served >= ENTRIES * (SHARDS - 1) // SHARDS - 10  # every other shard is served
        assert cache._store.set("f" * 64, b"new entry")  # writes work again, in the rebuilt shard
    assert "moved to" in caplog.text and str(moved) in caplog.text
    with ResponseCache(tmp_path / "cache") as again:  # no error any more: every other shard's entry is there
        healthy = [key for key in keys if again._store._index(key) != 3]
        assert sum(again._lookup(key) is not None for key in keys) == len(healthy) > ENTRIES // 2
        assert again.quarantined == [] and again._store.get("f" * 64) == b"new entry"


def test_a_damaged_header_is_quarantined_when_the_cache_opens(tmp_path):
    _fill(tmp_path / "cache")
    _damage_header(tmp_path / "cache")
    with ResponseCache(tmp_path / "cache") as cache:
        assert len(cache.quarantined) == 1 and cache.stats()["entries"] > 0


def test_replay_mode_never_moves_or_deletes_anything(tmp_path):
    keys = _fill(tmp_path / "cache")
    _damage_last_page(tmp_path / "cache")
    before = _damaged_page(tmp_path / "cache")
    with ResponseCache(tmp_path / "cache", mode="replay") as cache:
        with pytest.raises(ShardDamagedError, match="replay mode leaves the cache as it is"):
            for key in keys:
                cache._lookup(key)
    assert _damaged_page(tmp_path / "cache") == before and not (tmp_path / "cache" / "quarantine").exists()
    _damage_header(tmp_path / "cache")
    with pytest.raises(ShardDamagedError, match="cscprog cache import"):
        ResponseCache(tmp_path / "cache", mode="replay")


def test_replay_mode_keeps_a_corrupt_entry_and_says_nothing_is_recomputed(tmp_path, caplog):
    request = {"model": "openai/m", "messages": [{"role": "user", "content": "hi"}]}
    with ResponseCache(tmp_path / "cache") as cache:
        cache.put(request, {"text": "fine"})
        cache.flush()
        key = cache.cache_key(request)
        blob = cache._store.get(key)
        cache._store.set(key, blob[:-3] + b"zzz")  # the checksum no longer matches
    with ResponseCache(tmp_path / "cache", mode="replay") as replay:
        with pytest.raises(Exception, match="no cached response"):
            replay.get(request)
        assert key in replay._store  # not deleted from the cache being verified
    assert "left in place" in caplog.text and "recomputing" not in caplog.text


@pytest.mark.parametrize("command", [["stats"], ["stats", "--json"], ["export", "bundle.jsonl.gz"], ["clear", "-y"]])
def test_cache_commands_repair_and_report_instead_of_a_traceback(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CSCPROG_CACHE_DIR")  # the config file names the cache
    _fill(tmp_path / "cache")
    _damage_last_page(tmp_path / "cache")
    _damage_header(tmp_path / "cache")
    config = tmp_path / "cscprog.toml"
    config.write_text(f'[cache]\ndir = "{tmp_path / "cache"}"\n')
    assert main(["cache", *command, "-c", str(config)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "moved to" in err and "quarantine" in err


def test_cache_stats_accepts_the_short_config_option(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CSCPROG_CACHE_DIR")
    config = tmp_path / "c.toml"
    config.write_text(f'[cache]\ndir = "{tmp_path / "none"}"\n')
    assert main(["cache", "stats", "-c", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 0


def test_an_unreadable_cache_directory_is_a_clear_error(tmp_path, monkeypatch, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads every directory")
    monkeypatch.delenv("CSCPROG_CACHE_DIR")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache").chmod(0)
    config = tmp_path / "c.toml"
    config.write_text(f'[cache]\ndir = "{tmp_path / "cache"}"\n')
    try:
        assert main(["cache", "stats", "-c", str(config)]) == 2
    finally:
        (tmp_path / "cache").chmod(0o755)
    assert "Traceback" not in capsys.readouterr().err
