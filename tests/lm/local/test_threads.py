"""llama.cpp's default thread count: the usable cores that no other work keeps busy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cscprog.lm.local.threads import busy_cores, default_threads


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def test_default_threads_use_the_cores_no_other_work_keeps_busy():
    cores = _cores()
    assert default_threads(busy=0.0) == cores
    assert default_threads(busy=0.4) == cores
    assert default_threads(busy=1.0) == max(1, cores - 1)
    assert default_threads(busy=cores + 3.0) == 1
    assert 1 <= default_threads() <= cores


def _stat_line(busy: int, idle: int) -> str:
    # cpu user nice system idle iowait irq softirq steal
    return f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"


class _Ticking:
    """A /proc/stat stand-in: every read advances the counters by ``busy`` and ``idle`` jiffies."""

    def __init__(self, path: Path, busy: int, idle: int) -> None:
        self.path, self.busy, self.idle, self.reads = path, busy, idle, 0

    def read_text(self) -> str:
        self.reads += 1
        return _stat_line(self.busy * self.reads, self.idle * self.reads)


def test_busy_cores_reads_the_share_of_busy_time(tmp_path: Path):
    cores = os.cpu_count() or 1
    half = busy_cores(0.01, stat=_Ticking(tmp_path, busy=50, idle=50))
    assert half == pytest.approx(cores * 0.5, abs=0.3)  # minus this process's own (tiny) CPU time
    assert busy_cores(0.01, stat=_Ticking(tmp_path, busy=0, idle=100)) == 0.0


def test_busy_cores_is_none_without_proc_stat(tmp_path: Path):
    assert busy_cores(0.01, stat=tmp_path / "missing") is None
    (tmp_path / "garbage").write_text("not a stat file\n")
    assert busy_cores(0.01, stat=tmp_path / "garbage") is None
