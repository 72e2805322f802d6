"""Evaluation plots: drawn once per content, left alone when a re-run would draw the same picture."""

from __future__ import annotations

from pathlib import Path

from cscprog.evaluation.metrics import score_predictions
from cscprog.evaluation.plots import PLOT_FILES, plot_digest, stored_digest, write_plots
from cscprog.framework import load_taxonomy

CSC = load_taxonomy("csc")


def _records(predicted: list[str | None]) -> list[dict]:
    gold = [CSC.names[0], CSC.names[1], CSC.names[1], CSC.names[2]]
    return [{"dialogue_id": f"d{i}", "turn_index": i, "gold_strategy": g, "pred_strategy": p,
             "gold_reply": "thank you for waiting", "pred_reply": "thanks for waiting" if p else None,
             "language": "en"} for i, (g, p) in enumerate(zip(gold, predicted, strict=True))]


def _plot(records: list[dict], out: Path) -> list[Path]:
    result = score_predictions(records, CSC, semantic=False)
    result.update(program=None, settings={"context": "reference"})
    return write_plots(result, records, CSC, out)


def test_plots_carry_their_digest_and_are_not_redrawn_for_the_same_content(tmp_path: Path):
    records = _records([CSC.names[0], CSC.names[1], None, CSC.names[0]])
    paths = _plot(records, tmp_path)
    assert [p.name for p in paths] == list(PLOT_FILES)
    digests = [stored_digest(p) for p in paths]
    assert all(d and len(d) == 64 for d in digests) and len(set(digests)) == 3
    before = [(p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes()) for p in paths]
    assert _plot(records, tmp_path) == paths
    assert [(p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes()) for p in paths] == before  # untouched


def test_a_plot_is_redrawn_when_what_it_shows_changes(tmp_path: Path):
    paths = _plot(_records([CSC.names[0], CSC.names[1], None, CSC.names[0]]), tmp_path)
    before = [stored_digest(p) for p in paths]
    _plot(_records([CSC.names[0], CSC.names[1], CSC.names[1], CSC.names[2]]), tmp_path)
    after = [stored_digest(p) for p in paths]
    assert all(b != a for b, a in zip(before, after, strict=True))
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_a_foreign_or_damaged_file_is_replaced(tmp_path: Path):
    target = tmp_path / PLOT_FILES[1]
    target.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 3)  # cut short
    assert stored_digest(target) is None and stored_digest(tmp_path / "absent.png") is None
    _plot(_records([CSC.names[0]] * 4), tmp_path)
    assert stored_digest(target) and plot_digest("x", 1) != plot_digest("x", 2)
