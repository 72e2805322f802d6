"""PNG plots of an arena run: resolution rate per topic, and the strategy flow through the stages.

* ``resolution_by_topic.png``: per topic, each candidate's share of resolved conversations (grouped bars, the
  number of conversations under each group).
* ``strategy_flow.png``: one panel per candidate; at each agent turn (1, 2, ...), the share of its conversations
  whose turn falls in each stage of the taxonomy (stacked bars; ``other`` for the fallback strategy or a turn
  that could not be labelled). A sensible flow climbs from Connecting to Maintaining.

Drawn on Agg-backed :class:`matplotlib.figure.Figure` objects (no pyplot state, safe without a display).

Example:
    ```python
    paths = write_plots(records, summary, taxonomy, Path("runs/arena"))
    ```
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cscprog.evaluation.plots import new_figure, save_figure
from cscprog.framework import Taxonomy

__all__ = ["PLOT_FILES", "resolution_plot", "strategy_flow_plot", "write_plots"]

PLOT_FILES = ("resolution_by_topic.png", "strategy_flow.png")
"""The files :func:`write_plots` writes."""

_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
_OTHER = "other"


def resolution_plot(summary: dict[str, Any], path: Path) -> Path:
    """Resolution rate per topic, one bar per candidate.

    Example:
        ```python
        resolution_plot(summarize_candidates(records, resamples=1000, confidence=0.95, seed=0), Path("r.png"))
        ```
    """
    names = list(summary)
    topics = sorted({topic for entry in summary.values() for topic in entry["by_topic"]})
    figure = new_figure(max(6.0, 1.4 * len(topics) * max(1, len(names)) / 2 + 2), 4.2)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(names))
    for position, name in enumerate(names):
        by_topic = summary[name]["by_topic"]
        xs = [index - 0.4 + width * (position + 0.5) for index in range(len(topics))]
        ys = [100.0 * by_topic[topic]["resolved"] if topic in by_topic else 0.0 for topic in topics]
        axes.bar(xs, ys, width=width, label=name, color=_COLORS[position % len(_COLORS)])
    labels = []
    for topic in topics:
        counts = "/".join(str(summary[name]["by_topic"].get(topic, {}).get("conversations", 0)) for name in names)
        labels.append(f"{topic}\n(n={counts})")
    axes.set_xticks(list(range(len(topics))), labels, fontsize=7)
    axes.set_ylim(0, 100)
    axes.set_ylabel("% of conversations resolved")
    axes.set_title("Resolution rate per topic (judge: arena_judge)")
    axes.legend()
    return save_figure(figure, path)


def _stage_shares(dialogues: Sequence[dict[str, Any]], taxonomy: Taxonomy) -> tuple[list[str], list[Counter]]:
    stages = [*taxonomy.stage_names, _OTHER]
    positions: dict[int, Counter] = defaultdict(Counter)
    for dialogue in dialogues:
        agent_turns = [turn for turn in dialogue["turns"] if turn["speaker"] == "supporter"]
        for index, turn in enumerate(agent_turns):
            name = turn.get("strategy")
            stage = taxonomy.stage_of(name) if name in taxonomy.names else _OTHER
            positions[index][stage if stage in taxonomy.stage_names else _OTHER] += 1
    return stages, [positions[index] for index in sorted(positions)]


def strategy_flow_plot(records: Sequence[dict[str, Any]], taxonomy: Taxonomy, path: Path) -> Path:
    """Per candidate, the stage of the agent's turn at each position, as stacked shares.

    Example:
        ```python
        strategy_flow_plot(records, load_taxonomy("csc"), Path("flow.png"))
        ```
    """
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[record["candidate"]].append(record["dialogue"])
    names = list(grouped)
    figure = new_figure(7.5, 2.8 * max(1, len(names)) + 0.6)
    for row, name in enumerate(names):
        axes = figure.add_subplot(max(1, len(names)), 1, row + 1)
        stages, counters = _stage_shares(grouped[name], taxonomy)
        xs = list(range(1, len(counters) + 1))
        bottom = [0.0] * len(counters)
        for position, stage in enumerate(stages):
            shares = [100.0 * counter[stage] / max(1, sum(counter.values())) for counter in counters]
            axes.bar(xs, shares, bottom=bottom, label=stage, color=_COLORS[position % len(_COLORS)])
            bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
        totals = [sum(counter.values()) for counter in counters]
        axes.set_xticks(xs, [f"{x}\n(n={n})" for x, n in zip(xs, totals, strict=True)], fontsize=7)
        axes.set_ylim(0, 100)
        axes.set_ylabel("% of turns")
        axes.set_title(f"{name}: stage of the agent's turn by position", fontsize=9)
        if row == 0:  # beside the panel, where it hides no bar
            axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="stage", title_fontsize=7)
    axes.set_xlabel("agent turn")
    return save_figure(figure, path)


def write_plots(records: Sequence[dict[str, Any]], summary: dict[str, Any], taxonomy: Taxonomy,
                directory: Path) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``directory``; nothing when there is no conversation.

    Example:
        ```python
        write_plots(records, summary, taxonomy, Path("runs/arena"))
        ```
    """
    if not records:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    return [resolution_plot(summary, directory / PLOT_FILES[0]),
            strategy_flow_plot(records, taxonomy, directory / PLOT_FILES[1])]
