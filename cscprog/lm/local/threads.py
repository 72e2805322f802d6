"""How many threads llama.cpp gets: the usable cores that no other work keeps busy when a model loads.

llama.cpp's OpenMP workers spin at each step; when one is descheduled the others wait, so a thread on a core
that something else uses slows every step. :func:`default_threads` counts the usable cores and subtracts those
other work keeps busy (:func:`busy_cores`, read from ``/proc/stat``).

Example:
    ```python
    from cscprog.lm.local.threads import default_threads

    default_threads(busy=0.0)  # every usable core
    ```
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["busy_cores", "default_threads"]


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cpu_times(stat: Path) -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``; None when unreadable."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(v) for v in fields[1:9]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(window: float = 0.25, *, stat: Path = Path("/proc/stat")) -> float | None:
    """How many cores other work keeps busy, measured over ``window`` seconds while this thread sleeps.

    Returns None where ``/proc/stat`` is not available (not Linux). This process's own CPU time in the window
    (its other threads) is not counted, so a test runner or progress thread does not look like a competitor.

    Example:
        ```python
        busy_cores()  # about 0.0 on an idle machine, 1.0 while another process runs flat out
        ```
    """
    before, own_before = _cpu_times(stat), time.process_time()
    if before is None:
        return None
    time.sleep(window)
    after, own_after = _cpu_times(stat), time.process_time()
    if after is None or after[1] <= before[1]:
        return None
    cores = os.cpu_count() or 1
    busy_fraction = (after[0] - before[0]) / (after[1] - before[1])
    own = (own_after - own_before) / window
    return max(0.0, busy_fraction * cores - own)


def default_threads(busy: float | None = None) -> int:
    """llama.cpp threads when ``local_threads`` is unset: the usable cores that no other work keeps busy.

    llama.cpp's OpenMP workers spin at each step; when one is descheduled the others wait, so a thread on a core
    that something else uses slows every step (more than using fewer threads would).
    So: every usable core minus those busy at load time (:func:`busy_cores`,
    rounded), at least one; without that measurement, every core but one.

    Args:
        busy: Cores busy with other work (default: measured now).

    Example:
        ```python
        default_threads(busy=0.0)  # every core
        default_threads(busy=1.2)  # every core but one, at least one
        ```
    """
    cores = _usable_cores()
    if busy is None:
        busy = busy_cores()
    if busy is None:
        return max(1, cores - 1)
    return max(1, min(cores, cores - int(busy + 0.5)))
