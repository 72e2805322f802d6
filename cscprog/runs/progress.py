"""Progress of a run on stderr: a rich line on a terminal, plain periodic lines otherwise, or nothing.

The runner reports cumulative counts (:class:`ProgressState`) from its main thread after every finished item and
a few times a second while it waits; a reporter draws them. Nothing goes to stdout, which stays clean for
``--json``.

One set of words everywhere (the bar, the plain lines, :meth:`cscprog.runs.RunResult.summary`, the demo report):
an item is **done** when its record is written (kept, or routed to a side output such as ``dropped``), **failed**
when its LM output stayed unusable after the retries (it is in the failures file and ``--resume`` retries it),
and **finished** when it is either. The bar fills with finished items; ``done`` never counts a failure.

The rich line fits the terminal: the item counts (``finished/total``), the ETA and the failures are always shown;
the bar shrinks, then the rate is dropped and the call/cache/price text clipped, then the description is shortened.
A price is shown only once some call had a known price (never for the embedded model, which has none).

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
from typing import IO, Any, Literal, Protocol

__all__ = ["NoProgress", "PlainProgress", "ProgressReporter", "ProgressState", "RichProgress", "fit_line",
           "make_progress"]

ProgressMode = Literal["auto", "rich", "plain", "off"]

MIN_BAR = 8
"""Narrowest bar worth drawing (columns)."""
MAX_DESCRIPTION = 40
"""Widest description on the rich line (longer ones end with an ellipsis): room for the demo's
``demo: 9/9 evaluate compiled (generated)``."""


@dataclass(frozen=True)
class ProgressState:
    """Cumulative counts of a run.

    Attributes:
        total: Items of the run (finished earlier ones included).
        skipped: Items already finished before this run (resume).
        done: Items done by this run (record written).
        failed: Items that failed in this run.
        live_calls: Live LM calls so far (None without a runtime).
        cache_hits: LM calls served from the cache so far.
        cost_usd: Known cost of the live calls so far.
        unknown_cost_calls: Live calls whose price is unknown (all of them on the embedded model).
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
        """Items no longer waiting: done (now or before) or failed."""
        return self.skipped + self.done + self.failed

    def counts_text(self) -> str:
        """``"6/6 finished: 5 done, 1 failed"``; ``(+N from before)`` after a resume."""
        text = f"{self.finished}/{self.total} finished: {self.skipped + self.done} done"
        if self.skipped:
            text += f" ({self.skipped} from before)"
        return text + f", {self.failed} failed"

    def price_text(self) -> str:
        """``"$0.0123"`` (``"+3 unpriced"`` when some calls have no known price); empty when no call has a price."""
        live = self.live_calls or 0
        priced = live - self.unknown_cost_calls
        if priced <= 0:
            return ""
        text = f"${self.cost_usd or 0.0:.4f}"
        return text + (f" (+{self.unknown_cost_calls} unpriced)" if self.unknown_cost_calls else "")

    def calls_text(self) -> str:
        """``"41 calls, 9 cached, $0.0123"`` (empty without a runtime; no price when none is known)."""
        if self.live_calls is None:
            return ""
        price = self.price_text()
        return f"{self.live_calls} calls, {self.cache_hits or 0} cached" + (f", {price}" if price else "")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _rate_and_eta(state: ProgressState, elapsed: float) -> tuple[float, str]:
    """Items finished per second by this run, and the time left at that rate (``"?"`` before the first)."""
    rate = (state.done + state.failed) / max(elapsed, 1e-9)
    left = state.total - state.finished
    if left <= 0:
        return rate, _duration(0)
    return rate, _duration(left / rate if rate > 0 else None)


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
        # annotate: 122/200 finished: 120 done, 2 failed, 1.30 items/s, ETA 1m01s, 410 calls, 0 cached, $0.0210
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
        rate, eta = _rate_and_eta(state, time.monotonic() - self._started)
        parts = [f"{self.description}: {state.counts_text()}", f"{rate:.2f} items/s", f"ETA {eta}"]
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


def _clip(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)) + "…" if width > 0 else ""


def _first_fields(text: str, width: int) -> str:
    """The leading comma-separated fields of ``text`` that fit in ``width`` columns ("" when none does).

    A number is never cut: ``"46 calls, 8 cached, $0.0100"`` becomes ``"46 calls, 8 cached"``, not ``"$0.01…"``.
    """
    from rich.cells import cell_len

    fields = text.split(", ")
    while fields and cell_len(", ".join(fields)) > width:
        fields.pop()
    return ", ".join(fields)


def fit_line(width: int, description: str, required: list[str], optional: list[str]) -> tuple[str, int, list[str]]:
    """Lay out one progress line in ``width`` columns: ``(description, bar width, optional parts kept)``.

    ``required`` parts (counts, ETA, failures) are always kept. The bar gets what is left, at least
    :data:`MIN_BAR` columns: to make room, ``optional`` parts are dropped from the last (the last one left keeps
    the comma-separated fields that fit, whole: a number is never cut), then the description is shortened; a bar
    that still does not fit is left out (width 0). Parts are separated by one space.

    Example:
        ```python
        fit_line(80, "judge", ["3/5", "ETA 0m10s"], ["41 calls, 9 cached", "0.50/s"])
        # ("judge", 34, ["41 calls, 9 cached", "0.50/s"])
        ```
    """
    from rich.cells import cell_len

    shown = [part for part in required if part]
    extras = [part for part in optional if part]
    text = _clip(description, MAX_DESCRIPTION)

    def left(desc: str, kept: list[str]) -> int:  # columns left for the bar and its separator
        parts = [desc, *shown, *kept]
        return width - sum(cell_len(part) for part in parts) - (len(parts) - 1) - 1

    while extras and left(text, extras) < MIN_BAR:
        room = left(text, extras[:-1]) - MIN_BAR - 1  # columns the last optional part could have
        kept = _first_fields(extras[-1], room)
        if kept:
            extras[-1] = kept
            break
        extras.pop()
    if left(text, extras) < MIN_BAR:
        text = _clip(text, max(cell_len(text) - (MIN_BAR - left(text, extras)), 10))
    bar = left(text, extras)
    if bar < MIN_BAR:  # no room for a bar: the description takes what the required parts leave
        bar = 0
        text = _clip(_clip(description, MAX_DESCRIPTION), left("", extras) + 1)
    return text, bar, extras


class _Line:
    """The rich renderable of one reporter: laid out anew for the width it is given."""

    def __init__(self, reporter: RichProgress) -> None:
        self.reporter = reporter

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.reporter.renderable(options.max_width)


class RichProgress:
    """A live line on stderr that fits the terminal: description, bar, finished/total, ETA, failures, calls.

    Example:
        ```python
        progress = RichProgress("judge")
        ```
    """

    def __init__(self, description: str, *, console: Any | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.description = description
        self.console = console if console is not None else Console(stderr=True)
        self._live = Live(_Line(self), console=self.console, refresh_per_second=4, transient=False)
        self._state = ProgressState(total=0)
        self._started = 0.0

    def renderable(self, width: int) -> Any:
        """The line for ``width`` columns (a rich renderable)."""
        from rich.progress_bar import ProgressBar
        from rich.table import Column, Table
        from rich.text import Text

        state = self._state
        rate, eta = _rate_and_eta(state, time.monotonic() - self._started)
        failed = f"{state.failed} failed" if state.failed else ""
        required = [f"{state.finished}/{state.total}", f"ETA {eta}", failed]
        description, bar, extras = fit_line(width, self.description, required,
                                            [state.calls_text(), f"{rate:.2f}/s"])
        cells: list[Any] = [Text(description, style="bold")]
        if bar:
            cells.append(ProgressBar(total=max(state.total, 1), completed=state.finished, width=bar))
        cells += [Text(required[0]), Text(required[1], style="cyan")]
        if failed:
            cells.append(Text(failed, style="red"))
        cells += [Text(extra, style="dim") for extra in extras]
        widths = [bar if index == 1 and bar else None for index in range(len(cells))]
        grid = Table.grid(*(Column(no_wrap=True, width=w) for w in widths), padding=(0, 1))
        grid.add_row(*cells)
        return grid

    def start(self, state: ProgressState) -> None:  # noqa: D102
        self._started = time.monotonic()
        self._state = state
        self._live.start()

    def update(self, state: ProgressState) -> None:  # noqa: D102
        self._state = state

    def message(self, text: str) -> None:  # noqa: D102
        self._live.console.print(text, markup=False, highlight=False)

    def stop(self) -> None:  # noqa: D102
        self._live.refresh()
        self._live.stop()


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
