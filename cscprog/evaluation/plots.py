"""PNG plots of an evaluation: strategy distribution, confusion matrix, per-strategy accuracy.

* ``strategy_distribution.png``: the share of each strategy among the gold and the predicted supporter turns,
  side by side (the layout of the paper's Figure 3, which shows how often each strategy occurs); failed
  predictions are a separate bar on the predicted side.
* ``confusion_matrix.png``: rows are gold strategies, columns predicted ones (taxonomy order, abbreviations),
  each row normalized to 100% (the colour), each cell annotated with that share and its count; a last ``fail``
  column holds failed predictions.
* ``per_strategy_accuracy.png``: accuracy (recall) per gold strategy, with the number of turns.

Plots are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas (no pyplot, no global
figure state, safe in threads and without a display). Labels are the taxonomy's English abbreviations.

Each PNG carries a digest of what it shows (a ``cscprog-plot`` text chunk: the plot's numbers, labels, title and
size). A plot whose file already holds the digest of the new one is not drawn again: a second run over the same
results (``cscprog demo`` from its cache) leaves the files as they are and does not even import matplotlib.

Example:
    ```python
    from cscprog.evaluation.plots import write_plots

    paths = write_plots(outcome.result, outcome.records, taxonomy, Path("eval/en-ref"))
    ```
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cscprog.framework import Taxonomy

__all__ = ["PLOT_FILES", "confusion_plot", "distribution_plot", "per_strategy_plot", "plot_digest", "plot_label",
           "stored_digest", "write_plots"]

PLOT_FILES = ("strategy_distribution.png", "confusion_matrix.png", "per_strategy_accuracy.png")
"""The files :func:`write_plots` writes, in order."""

_DPI = 120
_DIGEST_KEY = "cscprog-plot"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def plot_digest(kind: str, *content: Any) -> str:
    """The digest of one plot's content: its kind, the numbers and labels drawn, and the resolution.

    Example:
        ```python
        plot_digest("confusion", [[1, 0], [0, 1]], ["a", "b"], "base program")
        ```
    """
    payload = json.dumps([kind, _DPI, content], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def stored_digest(path: Path) -> str | None:
    """The ``cscprog-plot`` digest a PNG written by this module carries (None: no file, another PNG, unreadable).

    Only the chunks before the image data are read.

    Example:
        ```python
        stored_digest(Path("eval/confusion_matrix.png"))   # 'a3f1...' or None
        ```
    """
    try:
        with path.open("rb") as handle:
            if handle.read(8) != _PNG_SIGNATURE:
                return None
            while header := handle.read(8):
                if len(header) < 8:
                    return None
                length, kind = struct.unpack(">I4s", header)
                if kind in (b"IDAT", b"IEND"):
                    return None
                data = handle.read(length)
                handle.seek(4, 1)  # the chunk's CRC
                if kind == b"tEXt":
                    key, _, value = data.partition(b"\0")
                    if key == _DIGEST_KEY.encode("latin-1"):
                        return value.decode("latin-1")
    except OSError:
        return None
    return None


def _current(path: Path, digest: str) -> bool:
    return stored_digest(path) == digest


def new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Any, path: Path, digest: str | None = None) -> Path:
    figure.tight_layout()
    metadata = {"Software": None} if digest is None else {"Software": None, _DIGEST_KEY: digest}
    figure.savefig(path, format="png", metadata=metadata)
    return path


def _titled(title: str, label: str) -> str:
    return f"{title}\n{label}" if label else title


def plot_label(result: dict[str, Any]) -> str:
    """Which program in which context a result is about: ``"compiled program, reference context"``.

    Example:
        ```python
        plot_label({"program": None, "settings": {"context": "generated"}})   # "base program, generated context"
        ```
    """
    program = "compiled program" if result.get("program") else "base program"
    context = (result.get("settings") or {}).get("context")
    return f"{program}, {context} context" if context else program


def distribution_plot(records: Sequence[dict[str, Any]], taxonomy: Taxonomy, path: Path, label: str = "") -> Path:
    """Gold vs predicted strategy shares (percent of supporter turns) as grouped bars.

    Example:
        ```python
        distribution_plot(records, csc, Path("strategy_distribution.png"))
        ```
    """
    total = len(records) or 1
    gold = Counter(r["gold_strategy"] for r in records)
    pred = Counter(r["pred_strategy"] for r in records)
    labels = [s.abbr for s in taxonomy.strategies] + ["fail"]
    gold_share = [100.0 * gold[name] / total for name in taxonomy.names] + [0.0]
    pred_share = [100.0 * pred[name] / total for name in taxonomy.names] + [100.0 * pred[None] / total]
    digest = plot_digest("distribution", labels, gold_share, pred_share, len(records), label)
    if _current(path, digest):
        return path
    figure = new_figure(max(6.0, 0.6 * len(labels)), 4.0)
    axes = figure.add_subplot()
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], gold_share, width=0.4, label="gold", color="#4C72B0")
    axes.bar([p + 0.2 for p in positions], pred_share, width=0.4, label="predicted", color="#DD8452")
    axes.set_xticks(list(positions), labels)
    axes.set_ylabel("% of supporter turns")
    axes.set_title(_titled(f"Strategy distribution ({len(records)} supporter turns)", label))
    axes.legend()
    return save_figure(figure, path, digest)


def confusion_plot(confusion: dict[str, Any], taxonomy: Taxonomy, path: Path, label: str = "") -> Path:
    """The confusion matrix, row-normalized: each cell shows its share of the gold row (the colour) and its count.

    Example:
        ```python
        confusion_plot(result["confusion"], csc, Path("confusion_matrix.png"))
        ```
    """
    names = confusion["labels"]
    abbr = {s.name: s.abbr for s in taxonomy.strategies}
    rows = [list(row) + [failed] for row, failed in zip(confusion["matrix"], confusion["failed"], strict=True)]
    shares = [[100.0 * value / (sum(row) or 1) for value in row] for row in rows]
    digest = plot_digest("confusion", names, [abbr.get(n, n) for n in names], rows, label)
    if _current(path, digest):
        return path
    figure = new_figure(1.0 + 0.55 * (len(names) + 1), 1.0 + 0.5 * len(names))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=100, aspect="auto")
    figure.colorbar(image, ax=axes, label="% of the gold row")
    axes.set_xticks(range(len(names) + 1), [abbr.get(n, n) for n in names] + ["fail"])
    axes.set_yticks(range(len(names)), [abbr.get(n, n) for n in names])
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value:
                axes.text(j, i, f"{shares[i][j]:.0f}%\n({value})", ha="center", va="center", fontsize=6,
                          color="white" if shares[i][j] > 60 else "black")
    axes.set_title(_titled("Strategy confusion matrix (% of the gold row, turns in brackets)", label))
    return save_figure(figure, path, digest)


def per_strategy_plot(per_strategy: dict[str, dict[str, Any]], taxonomy: Taxonomy, path: Path,
                      label: str = "") -> Path:
    """Accuracy per gold strategy as horizontal bars, each labelled with its turn count.

    Example:
        ```python
        per_strategy_plot(result["per_strategy"], csc, Path("per_strategy_accuracy.png"))
        ```
    """
    names = [s.name for s in taxonomy.strategies]
    labels = [f"{s.abbr} {s.name}" for s in taxonomy.strategies]
    values = [per_strategy.get(name, {}).get("accuracy") or 0.0 for name in names]
    counts = [per_strategy.get(name, {}).get("n", 0) for name in names]
    digest = plot_digest("per_strategy", labels, values, counts, label)
    if _current(path, digest):
        return path
    figure = new_figure(7.0, 0.4 * len(names) + 1.2)
    axes = figure.add_subplot()
    bars = axes.barh(range(len(names)), values, color="#55A868")
    axes.set_yticks(range(len(names)), labels)
    axes.invert_yaxis()
    axes.set_xlim(0, 110)
    axes.set_xlabel("accuracy (%)")
    for bar, count in zip(bars, counts, strict=True):
        text = f"n={count}" if count else "no turns"
        axes.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=7)
    axes.set_title(_titled("Strategy accuracy per gold strategy", label))
    return save_figure(figure, path, digest)


def write_plots(result: dict[str, Any], records: Sequence[dict[str, Any]], taxonomy: Taxonomy,
                out_dir: Path) -> list[Path]:
    """Write the three plots of :data:`PLOT_FILES` into ``out_dir``; return their paths.

    Example:
        ```python
        write_plots(result, records, csc, Path("eval"))
        ```
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    label = plot_label(result)
    return [
        distribution_plot(records, taxonomy, out_dir / PLOT_FILES[0], label),
        confusion_plot(result["confusion"], taxonomy, out_dir / PLOT_FILES[1], label),
        per_strategy_plot(result["per_strategy"], taxonomy, out_dir / PLOT_FILES[2], label),
    ]
