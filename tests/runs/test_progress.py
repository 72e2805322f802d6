"""Progress reporters: plain lines off a terminal, rich on one, nothing on stdout."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cscprog.runs import NoProgress, PlainProgress, ProgressState, RichProgress, make_progress, run_items


def test_make_progress_picks_plain_lines_when_not_a_terminal() -> None:
    assert isinstance(make_progress("x", stream=io.StringIO()), PlainProgress)
    assert isinstance(make_progress("x", "off"), NoProgress)
    with pytest.raises(ValueError, match="unknown progress mode"):
        make_progress("x", "fancy")  # type: ignore[arg-type]


def test_plain_lines_show_counts_rate_failures_and_cost(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stream = io.StringIO()
    progress = PlainProgress("synthesize", stream=stream, interval=0.0)

    def work(payload: int) -> dict:
        if payload == 3:
            raise ValueError("bad item")
        return {"id": str(payload)}

    run_items([(str(i), i) for i in range(6)], work, output=tmp_path / "o.jsonl", progress=progress)
    text = stream.getvalue()
    assert text.startswith("synthesize: 6 item(s), 0 already done, 6 to run\n")
    last = text.strip().splitlines()[-1]
    assert last.startswith("synthesize: 5/6 (100%) done, 1 failed,") and "items/s" in last and "ETA" in last
    assert capsys.readouterr().out == ""


def test_calls_text_reports_cost_and_unknown_prices() -> None:
    state = ProgressState(total=10, done=2, live_calls=41, cache_hits=9, cost_usd=0.0123, unknown_cost_calls=3)
    assert state.calls_text() == "41 calls, 9 cached, $0.0123 (+3 of unknown price)"
    assert ProgressState(total=1).calls_text() == ""


def test_rich_bar_draws_on_its_console() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)
    progress = RichProgress("judge", console=console)
    progress.start(ProgressState(total=4, skipped=1))
    progress.update(ProgressState(total=4, skipped=1, done=2, failed=1, live_calls=3, cache_hits=1, cost_usd=0.5))
    progress.message("a note")
    progress.stop()
    text = buffer.getvalue()
    assert "judge" in text and "4/4" in text and "1 failed" in text and "$0.5000" in text and "a note" in text
