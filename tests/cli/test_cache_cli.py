"""Tests of ``cscprog cache``: stats, export, import and clear (offline, cache dir from the config)."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from pathlib import Path

import dspy
import pytest

from cscprog.cache import ResponseCache
from cscprog.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def record(text: str) -> dict:
    return {
        "_dspy_format": "dspy-lm15-result-v1",
        "responses": [],
        "outputs": [text],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
        "cost": 0.01,
        "cost_details": {},
        "raw": None,
        "response_model": None,
    }


def request(text: str, model: str, api_base: str | None = None) -> dict:
    data = {"model": model, "messages": [{"role": "user", "content": text}], "_fn_identifier": "x"}
    if api_base:
        data["api_base"] = api_base
    return data


ENTRIES = [
    ("a", "openai/gpt-4o-mini", None),
    ("b", "openai/gpt-4o-mini", "http://gpu:8000/v1"),
    ("c", "ollama_chat/qwen2.5", "http://localhost:11434"),
]


@pytest.fixture
def cache_dir() -> Path:
    """The configured cache directory (the shared conftest points CSCPROG_CACHE_DIR at a temp dir), filled."""
    directory = Path(os.environ["CSCPROG_CACHE_DIR"])
    with ResponseCache(directory) as cache, dspy.context(cscprog_role="judge"):
        for text, model, api_base in ENTRIES:
            cache.put(request(text, model, api_base), record(text))
        cache.get(request("a", "openai/gpt-4o-mini"))
    return directory


def test_stats_json_counts_entries_and_last_run(capsys: pytest.CaptureFixture[str], cache_dir: Path) -> None:
    code, out, _ = run(capsys, "cache", "stats", "--json")
    stats = json.loads(out)
    assert code == 0
    assert stats["entries"] == 3 and stats["directory"] == str(cache_dir)
    assert stats["by_model"]["openai/gpt-4o-mini"]["entries"] == 2
    assert set(stats["by_endpoint"]) == {"default", "http://gpu:8000/v1", "http://localhost:11434"}
    assert stats["by_role"]["judge"]["entries"] == 3
    assert (stats["last_run"]["hits"], stats["last_run"]["stores"]) == (1, 3)


def test_stats_table(capsys: pytest.CaptureFixture[str], cache_dir: Path) -> None:
    code, out, _ = run(capsys, "cache", "stats")
    assert code == 0
    assert "3 entries" in out and "ollama_chat/qwen2.5" in out and "http://gpu:8000/v1" in out
    assert "last run" in out and "1 hits" in out


def test_stats_of_a_missing_cache_creates_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cache", "stats", "--json")
    assert code == 0 and json.loads(out)["entries"] == 0
    assert not Path(os.environ["CSCPROG_CACHE_DIR"]).exists()


def test_config_file_names_the_cache_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CSCPROG_CACHE_DIR")
    directory = tmp_path / "from-config"
    with ResponseCache(directory) as cache:
        cache.put(request("x", "openai/m"), record("x"))
    config = tmp_path / "cscprog.toml"
    config.write_text(f'[cache]\ndir = "{directory.as_posix()}"\n', encoding="utf-8")
    code, out, _ = run(capsys, "cache", "stats", "--json", "--config", str(config))
    assert code == 0 and json.loads(out)["entries"] == 1


def test_export_then_import_into_another_cache(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "run.cache.jsonl.gz"
    code, out, _ = run(capsys, "cache", "export", str(bundle), "--model", "openai/gpt-4o-mini")
    assert code == 0 and "exported 2 entries" in out and bundle.is_file()

    other = tmp_path / "collaborator"
    monkeypatch.setenv("CSCPROG_CACHE_DIR", str(other))
    code, out, _ = run(capsys, "cache", "import", str(bundle))
    assert code == 0 and "imported 2 entries" in out
    code, out, _ = run(capsys, "cache", "import", str(bundle))
    assert "imported 0 entries" in out
    code, out, _ = run(capsys, "cache", "import", str(bundle), "--overwrite")
    assert "imported 2 entries" in out
    with ResponseCache(other, mode="replay") as replay:
        assert replay.get(request("b", "openai/gpt-4o-mini", "http://gpu:8000/v1/"))["outputs"] == ["b"]


def test_import_of_a_malformed_bundle_is_one_error_line(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, tmp_path: Path
) -> None:
    good = tmp_path / "good.gz"
    assert run(capsys, "cache", "export", str(good))[0] == 0
    lines = gzip.decompress(good.read_bytes()).splitlines()
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\n".join([lines[0], lines[1], b"{broken"]) + b"\n"))
    code, out, err = run(capsys, "cache", "import", str(bad))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "line 3" in err and str(bad) in err and len(err.strip().splitlines()) == 1


def test_export_without_a_cache_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "cache", "export", str(tmp_path / "x.gz"))
    assert code == 2 and "no cache at" in err


def test_clear_by_model_and_endpoint(capsys: pytest.CaptureFixture[str], cache_dir: Path) -> None:
    code, out, _ = run(capsys, "cache", "clear", "--endpoint", "http://gpu:8000/v1/", "--yes")
    assert code == 0 and "removed 1 entries" in out
    code, out, _ = run(capsys, "cache", "clear", "--model", "ollama_chat/qwen2.5", "--yes")
    assert "removed 1 entries" in out
    code, out, _ = run(capsys, "cache", "clear", "--yes")
    assert "removed 1 entries" in out
    _, out, _ = run(capsys, "cache", "stats", "--json")
    assert json.loads(out)["entries"] == 0


def test_clear_asks_first(capsys: pytest.CaptureFixture[str], cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, _, err = run(capsys, "cache", "clear")
    assert code == 1 and "aborted: nothing removed" in err
    _, out, _ = run(capsys, "cache", "stats", "--json")
    assert json.loads(out)["entries"] == 3


def test_every_cache_command_takes_dir_and_short_config(
    capsys: pytest.CaptureFixture[str], cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSCPROG_CACHE_DIR", str(tmp_path / "elsewhere"))  # --dir wins over the configured one
    code, out, _ = run(capsys, "cache", "stats", "--json", "--dir", str(cache_dir))
    assert code == 0 and json.loads(out)["entries"] == 3
    config = tmp_path / "cscprog.toml"
    config.write_text(f'[cache]\ndir = "{cache_dir.as_posix()}"\n', encoding="utf-8")
    monkeypatch.delenv("CSCPROG_CACHE_DIR")  # the variable would override the file's [cache] dir
    code, out, _ = run(capsys, "cache", "stats", "--json", "-c", str(config))
    assert code == 0 and json.loads(out)["entries"] == 3
    bundle = tmp_path / "b.jsonl.gz"
    assert run(capsys, "cache", "export", str(bundle), "--dir", str(cache_dir))[0] == 0
    other = tmp_path / "other"
    code, out, _ = run(capsys, "cache", "import", str(bundle), "--dir", str(other), "-c", str(config))
    assert code == 0 and "imported 3 entries" in out
    code, out, _ = run(capsys, "cache", "clear", "-y", "--dir", str(other))
    assert code == 0 and "removed 3 entries" in out
