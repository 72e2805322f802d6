"""Stopping a run cleanly: Ctrl-C (SIGINT), SIGTERM and budget stops become flags the runner polls.

While a run is in progress (and only when it runs in the main thread), SIGINT and SIGTERM no longer raise in
the middle of a file write: the first signal asks the run to stop (no new item starts, running items get a grace
period to finish), the second abandons the running items at once, and a third restores the default handlers and
raises ``KeyboardInterrupt``. The handlers in place before the run are restored when it ends.

Example:
    ```python
    stop = StopControl()
    with stop.signals():
        while not stop.requested.is_set():
            ...  # run items
    print(stop.reason)
    ```
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["StopControl"]

logger = logging.getLogger(__name__)

_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class StopControl:
    """Stop flags shared by the runner's main thread, its workers and the signal handlers.

    Attributes:
        requested: Set once the run must stop starting items.
        abandon: Set when running items must not be waited for.
        reason: Why the run stops (``"interrupted by Ctrl-C (SIGINT)"``, ``"budget: ..."``), or None.
        interrupted: True when a signal (not a budget or an error) stopped the run.
        signals_seen: How many stop signals arrived.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.abandon = threading.Event()
        self.reason: str | None = None
        self.interrupted = False
        self.signals_seen = 0
        self._lock = threading.Lock()

    def request(self, reason: str, *, interrupted: bool = False) -> None:
        """Ask the run to stop; the first reason given is kept."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self.interrupted = interrupted
            elif interrupted:
                self.interrupted = True
        self.requested.set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signals_seen += 1
        name = _NAMES.get(signum, f"signal {signum}")
        if self.signals_seen == 1:
            self.request(f"interrupted by {name}", interrupted=True)
        elif self.signals_seen == 2:
            self.interrupted = True
            self.abandon.set()
        else:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def signals(self) -> Iterator[StopControl]:
        """Route SIGINT and SIGTERM to this control while inside (a no-op outside the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, self._handle)
            except (ValueError, OSError):  # pragma: no cover - platforms without the signal
                logger.debug("cannot install a handler for %s", signum)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
