"""The README's Reliability table names tests that exist: every claim stays backed by a test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_reliability_table_names_exists_once():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", section))
    assert len(named) >= 20
    defined: dict[str, int] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        for name in re.findall(r"^def (test_[a-z0-9_]+)\(", path.read_text(encoding="utf-8"), flags=re.M):
            defined[name] = defined.get(name, 0) + 1
    assert {name: defined.get(name, 0) for name in named if defined.get(name, 0) != 1} == {}
