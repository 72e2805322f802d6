"""Progress reporters: plain lines off a terminal, rich on one, nothing on stdout."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from cscprog.runs import NoProgress, PlainProgress, ProgressState, RichProgress, make_progress, run_items
from cscprog.runs.progress import fit_line


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
    assert last.startswith("synthesize: 6/6 finished: 5 done, 1 failed,") and "items/s" in last and "ETA" in last
    assert capsys.readouterr().out == ""


def test_calls_text_reports_cost_and_unknown_prices() -> None:
    state = ProgressState(total=10, done=2, live_calls=41, cache_hits=9, cost_usd=0.0123, unknown_cost_calls=3)
    assert state.calls_text() == "41 calls, 9 cached, $0.0123 (+3 unpriced)"
    assert ProgressState(total=1).calls_text() == ""


def test_no_price_is_shown_when_no_call_has_one() -> None:
    # the embedded model: every call is of unknown price, so the line shows calls and hits, never "$0.0000"
    local = ProgressState(total=3, done=1, live_calls=12, cache_hits=2, cost_usd=0.0, unknown_cost_calls=12)
    assert local.calls_text() == "12 calls, 2 cached" and "$" not in local.calls_text()


def test_counts_use_one_definition_of_done_and_failed() -> None:
    state = ProgressState(total=2, done=1, failed=1)
    assert state.counts_text() == "2/2 finished: 1 done, 1 failed"
    resumed = ProgressState(total=5, skipped=2, done=1)
    assert resumed.counts_text() == "3/5 finished: 3 done (2 from before), 0 failed"


def _screen(buffer: io.StringIO) -> list[str]:
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue()).replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("width", [80, 60, 40])
def test_rich_line_at_80_columns_keeps_counts_and_eta(width: int) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, color_system=None)
    progress = RichProgress("3/9 evaluate compiled (generated)", console=console)
    progress.start(ProgressState(total=50))
    progress.update(ProgressState(total=50, done=12, failed=2, live_calls=410, cache_hits=99, cost_usd=0.0,
                                  unknown_cost_calls=410))
    progress.stop()
    last = _screen(buffer)[-1]
    assert len(last) <= width and "…" not in last.split("14/50")[1].split("failed")[0]
    assert "14/50" in last and re.search(r"ETA \d+m\d\ds", last) and "2 failed" in last, last
    assert "$" not in last and "unknown" not in last  # no price for calls that have none
    if width == 80:
        assert "━" in last and "410 calls" in last, last


def test_fit_line_drops_the_least_useful_parts_first() -> None:
    text, bar, extras = fit_line(80, "judge", ["3/5", "ETA 0m10s"], ["41 calls, 9 cached", "0.50/s"])
    assert (text, extras) == ("judge", ["41 calls, 9 cached", "0.50/s"]) and bar >= 8
    text, bar, extras = fit_line(40, "a long stage description here", ["14/50", "ETA 1m02s", "2 failed"],
                                 ["410 calls, 99 cached", "1.2/s"])
    assert extras == [] and bar == 0 and text.endswith("…")


def test_the_demos_longest_stage_at_80_columns_keeps_its_name_and_whole_numbers() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80, color_system=None)
    progress = RichProgress("demo: 9/9 evaluate compiled (generated)", console=console)
    progress.start(ProgressState(total=120))
    progress.update(ProgressState(total=120, done=46, live_calls=4610, cache_hits=812, cost_usd=0.0123))
    progress.stop()
    last = _screen(buffer)[-1]
    assert len(last) <= 80 and last.startswith("demo: 9/9 evaluate compiled (generated) ━"), last
    assert "46/120" in last and re.search(r"ETA \d+m\d\ds", last) and "4610 calls" in last, last
    assert "…" not in last and ("$" not in last or "$0.0123" in last), last  # a price is whole or absent
    text, _, extras = fit_line(80, "x" * 30, ["46/120", "ETA 1m02s"], ["4610 calls, 812 cached, $0.0123", "1.20/s"])
    assert extras and all(part in ("4610 calls", "4610 calls, 812 cached", "4610 calls, 812 cached, $0.0123",
                                   "1.20/s") for part in extras), extras


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
    assert "ETA" in text
