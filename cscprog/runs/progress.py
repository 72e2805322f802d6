"""Progress of a run on stderr: a rich bar on a terminal, plain periodic lines otherwise, or nothing.

The runner reports cumulative counts (:class:`ProgressState`) from its main thread after every finished item and
a few times a second while it waits; a reporter draws them. Nothing goes to stdout, which stays clean for
``--json``. The bar shows items done of the total, the rate and ETA of this run, failures, and the live calls,
cache hits and cost so far from the runtime's usage ledger.

Example:
    ```python
    progress = make_progress("synthesize", mode="auto")   # rich on a TTY, plain lines when piped
    progress.start(ProgressState(total=100, skipped=40))
    progress.update(ProgressState(total=100, skipped=40, done=1))
    progress.stop()
    ```
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import IO, Literal, Protocol

__all__ = ["NoProgress", "PlainProgress", "ProgressReporter", "ProgressState", "RichProgress", "make_progress"]

ProgressMode = Literal["auto", "rich", "plain", "off"]


@dataclass(frozen=True)
class ProgressState:
    """Cumulative counts of a run.

    Attributes:
        total: Items of the run (finished earlier ones included).
        skipped: Items already finished before this run (resume).
        done: Items finished by this run.
        failed: Items that failed in this run.
        live_calls: Live LM calls so far (None without a runtime).
        cache_hits: LM calls served from the cache so far.
        cost_usd: Known cost of the live calls so far.
        unknown_cost_calls: Live calls whose price is unknown.
    """

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    live_calls: int | None = None
    cache_hits: int | None = None
    cost_usd: float | None = None
    unknown_cost_calls: int = 0

    @property
    def finished(self) -> int:
        """Items no longer waiting: skipped, done or failed."""
        return self.skipped + self.done + self.failed

    def calls_text(self) -> str:
        """``"41 calls, 9 cached, $0.0123"`` (empty without a runtime)."""
        if self.live_calls is None:
            return ""
        cost = f"${self.cost_usd or 0.0:.4f}"
        if self.unknown_cost_calls:
            cost += f" (+{self.unknown_cost_calls} of unknown price)"
        return f"{self.live_calls} calls, {self.cache_hits or 0} cached, {cost}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class ProgressReporter(Protocol):
    """What the runner calls; every method runs in the runner's main thread."""

    def start(self, state: ProgressState) -> None:
        """The run begins (``state.skipped`` items were already finished)."""

    def update(self, state: ProgressState) -> None:
        """New cumulative counts (called often: implementations rate-limit their own drawing)."""

    def message(self, text: str) -> None:
        """A line for the user (stopping, resuming hints), shown above the bar."""

    def stop(self) -> None:
        """The run ended; draw the final state."""


class NoProgress:
    """A reporter that shows nothing (library use, tests)."""

    def start(self, state: ProgressState) -> None:  # noqa: D102
        pass

    def update(self, state: ProgressState) -> None:  # noqa: D102
        pass

    def message(self, text: str) -> None:  # noqa: D102
        pass

    def stop(self) -> None:  # noqa: D102
        pass


class PlainProgress:
    """One plain line every ``interval`` seconds (and at the end), for logs and pipes.

    Example:
        ```python
        PlainProgress("annotate", interval=30.0)
        # annotate: 120/200 (60%) done, 2 failed, 1.3 items/s, ETA 1m01s, 410 calls, 0 cached, $0.0210
        ```
    """

    def __init__(self, description: str, *, stream: IO[str] | None = None, interval: float = 10.0) -> None:
        self.description = description
        self.stream = stream
        self.interval = interval
        self._started = 0.0
        self._last = 0.0
        self._state: ProgressState | None = None

    def _out(self) -> IO[str]:
        return self.stream if self.stream is not None else sys.stderr

    def _write(self, text: str) -> None:
        out = self._out()
        out.write(text + "\n")
        out.flush()

    def line(self, state: ProgressState) -> str:
        """The progress line of ``state``."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        handled = state.done + state.failed
        rate = handled / elapsed
        left = state.total - state.finished
        eta = left / rate if rate > 0 else None
        share = state.finished / state.total if state.total else 1.0
        parts = [
            f"{self.description}: {state.skipped + state.done}/{state.total} ({share:.0%}) done",
            f"{state.failed} failed",
            f"{rate:.2f} items/s",
            f"ETA {_duration(eta) if left else '0m00s'}",
        ]
        if state.skipped:
            parts.insert(1, f"{state.skipped} from before")
        calls = state.calls_text()
        if calls:
            parts.append(calls)
        return ", ".join(parts)

    def start(self, state: ProgressState) -> None:  # noqa: D102
        self._started = self._last = time.monotonic()
        self._state = state
        self._write(f"{self.description}: {state.total} item(s), {state.skipped} already done, "
                    f"{state.total - state.skipped} to run")

    def update(self, state: ProgressState) -> None:  # noqa: D102
        self._state = state
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._write(self.line(state))

    def message(self, text: str) -> None:  # noqa: D102
        self._write(text)

    def stop(self) -> None:  # noqa: D102
        if self._state is not None:
            self._write(self.line(self._state))


class RichProgress:
    """A rich progress bar on stderr: done/total, rate, ETA, failures, calls and cost.

    Example:
        ```python
        progress = RichProgress("judge")
        ```
    """

    def __init__(self, description: str, *, console: object | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.description = description
        self.console = console if console is not None else Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("[red]{task.fields[failed]}[/red]"),
            TextColumn("{task.fields[calls]}"),
            console=self.console,
            transient=False,
            refresh_per_second=4,
        )
        self._task: int | None = None
        self._started = 0.0

    def _fields(self, state: ProgressState) -> dict[str, str]:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = (state.done + state.failed) / elapsed
        return {
            "rate": f"{rate:.2f}/s",
            "failed": f"{state.failed} failed" if state.failed else "",
            "calls": state.calls_text(),
        }

    def start(self, state: ProgressState) -> None:  # noqa: D102
        self._started = time.monotonic()
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=state.total, completed=state.finished,
                                             **self._fields(state))

    def update(self, state: ProgressState) -> None:  # noqa: D102
        if self._task is not None:
            self._progress.update(self._task, completed=state.finished, **self._fields(state))

    def message(self, text: str) -> None:  # noqa: D102
        self._progress.console.print(text, markup=False, highlight=False)

    def stop(self) -> None:  # noqa: D102
        self._progress.stop()


def make_progress(description: str, mode: ProgressMode = "auto", *, stream: IO[str] | None = None,
                  interval: float = 10.0) -> ProgressReporter:
    """A reporter: ``rich`` on a terminal, ``plain`` lines otherwise (``auto``), or ``off``.

    Args:
        description: The run's name on the bar (``"synthesize"``).
        mode: ``auto``, ``rich``, ``plain`` or ``off``.
        stream: Where plain lines go (default: stderr).
        interval: Seconds between plain lines.

    Raises:
        ValueError: an unknown mode.

    Example:
        ```python
        progress = make_progress("annotate", "plain", interval=30)
        ```
    """
    if mode == "off":
        return NoProgress()
    if mode == "plain":
        return PlainProgress(description, stream=stream, interval=interval)
    if mode == "rich":
        return RichProgress(description)
    if mode == "auto":
        target = stream if stream is not None else sys.stderr
        isatty = getattr(target, "isatty", None)
        if callable(isatty) and isatty():
            return RichProgress(description)
        return PlainProgress(description, stream=stream, interval=interval)
    raise ValueError(f"unknown progress mode {mode!r}: use auto, rich, plain or off")
