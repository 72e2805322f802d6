"""A cache recorded before the layout change of issue 11 replays byte-identically on today's code.

``tests/data/layout_v0`` was recorded at commit fd3538f (the commit before the move; ``record.py`` there says how):
a cache bundle and the outputs of ``annotate`` and ``respond`` against a loopback server. Here the bundle is
imported and both commands run again with ``--cache-mode replay``: no request can be sent (the recorded endpoint
has no server), so any change to cache keys, prompts or output formats shows as a cache miss or a byte difference.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cscprog.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "layout_v0"


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    for name in ("cscprog.toml", "input.jsonl", "bundle.jsonl.gz"):
        shutil.copy(DATA / name, tmp_path / name)
    assert main(["cache", "import", str(tmp_path / "bundle.jsonl.gz"), "-c", str(tmp_path / "cscprog.toml")]) == 0
    return tmp_path


@pytest.mark.parametrize(("command", "output"), [("annotate", "annotated.jsonl"), ("respond", "responses.jsonl")])
def test_a_v0_bundle_replays_byte_identically(replay_dir: Path, command: str, output: str):
    target = replay_dir / output
    status = main(["--cache-mode", "replay", command, str(replay_dir / "input.jsonl"), "-o", str(target),
                   "-c", str(replay_dir / "cscprog.toml"), "--progress", "off"])
    assert status == 0
    assert target.read_bytes() == (DATA / output).read_bytes()


def test_replay_without_the_bundle_misses(tmp_path: Path):
    """The check above can fail: without the recorded entries the same replay finds nothing and fails the items."""
    for name in ("cscprog.toml", "input.jsonl"):
        shutil.copy(DATA / name, tmp_path / name)
    status = main(["--cache-mode", "replay", "annotate", str(tmp_path / "input.jsonl"), "-o",
                   str(tmp_path / "annotated.jsonl"), "-c", str(tmp_path / "cscprog.toml"), "--progress", "off"])
    assert status == 1
