"""The one atomic write: whole files or nothing, no temporary left behind."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest

from cscprog.files import atomic_write, atomic_writer, stale_temporaries
from cscprog.stamps import package_version, utc_iso


def test_atomic_write_replaces_text_and_bytes_with_the_given_mode(tmp_path: Path):
    target = tmp_path / "out.json"
    target.write_text("old")
    assert atomic_write(target, "néw\n") == target
    assert target.read_bytes() == "néw\n".encode()
    atomic_write(target, b"\x00\x01", fsync=False, mode=0o600)
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_writer(target) as out:
        out.write(b"half")
        raise RuntimeError("checksum mismatch")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "x", "data")


def test_stale_temporaries_are_found_only_for_their_target(tmp_path: Path):
    target = tmp_path / "o.jsonl"
    leftovers = [tmp_path / ".o.jsonl.4242.tmp", tmp_path / ".o.jsonl.k3_x9ab.tmp"]
    for path in [*leftovers, tmp_path / ".o.jsonl.manifest.json.abc.tmp", tmp_path / "o.jsonl"]:
        path.write_text("x")
    assert stale_temporaries(target) == sorted(leftovers)
    assert stale_temporaries(tmp_path / "missing" / "o.jsonl") == []


def test_stamps_format_times_and_versions():
    moment = datetime.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=datetime.UTC).timestamp()
    assert utc_iso(moment) == "2024-05-01T12:30:15+00:00"
    assert utc_iso(moment, precise=True) == "2024-05-01T12:30:15.250Z"
    assert package_version("dspy")
    assert package_version("no-such-distribution-cscprog") is None
