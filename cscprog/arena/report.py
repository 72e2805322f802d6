"""``report.md`` of an arena run: what was run, the candidates side by side with intervals, pairs, plots.

Every figure says how it was computed: scores are means over customers (a customer's trials averaged first)
with a percentile-bootstrap interval over customers; the judges and their roles are named; a score no
conversation had is shown as ``n/a`` with the reason.

Example:
    ```python
    write_report(result, Path("runs/arena/report.md"))
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cscprog.files import atomic_write

__all__ = ["SCORE_LABELS", "format_interval", "render_report", "write_report"]

SCORE_LABELS: dict[str, tuple[str, str]] = {
    "resolved": ("resolved", "%"),
    "strategy_adherence": ("strategy adherence", "%"),
    "flow_ok": ("flow rules kept", "%"),
    "stage_coverage": ("stage coverage", "%"),
    "turns_to_resolution": ("agent turns to resolution", ""),
    "repetition": ("repeated agent turns", "%"),
    "satisfaction": ("customer satisfaction (1-5)", ""),
}
"""Row label and unit of every aggregated score."""


def format_interval(interval: dict[str, Any], unit: str = "") -> str:
    """``62.5% [37.5, 87.5] (n=8)``, or ``n/a`` when no conversation had the score.

    Example:
        ```python
        format_interval({"estimate": 0.5, "low": 0.25, "high": 0.75, "n": 4}, "%")   # '50.0% [25.0, 75.0] (n=4)'
        ```
    """
    if interval.get("estimate") is None:
        return "n/a"
    scale = 100.0 if unit == "%" else 1.0
    digits = 1 if unit == "%" else 2
    text = f"{interval['estimate'] * scale:.{digits}f}{unit}"
    if interval.get("low") is not None and interval.get("high") is not None:
        text += f" [{interval['low'] * scale:.{digits}f}, {interval['high'] * scale:.{digits}f}]"
    return f"{text} (n={interval['n']})"


def _candidates_table(result: dict[str, Any]) -> list[str]:
    names = list(result["candidates"])
    summary = result["summary"]
    lines = ["| score | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for score, (label, unit) in SCORE_LABELS.items():
        cells = [format_interval(summary[name]["scores"][score], unit) if name in summary else "no conversation"
                 for name in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ks = sorted({int(k) for name in names if name in summary for k in summary[name]["pass_hat_k"]})
    for k in ks:
        cells = [format_interval(summary[name]["pass_hat_k"][str(k)], "%")
                 if name in summary and str(k) in summary[name]["pass_hat_k"] else "n/a" for name in names]
        lines.append(f"| pass^{k} | " + " | ".join(cells) + " |")
    lines.append("| conversations | " + " | ".join(str(summary.get(name, {}).get("conversations", 0))
                                               for name in names) + " |")
    return lines


def _pairs_table(pairs: list[dict[str, Any]]) -> list[str]:
    lines = ["| A vs B | pairs | A wins | tie | B wins | position consistency |", "|---|---|---|---|---|---|"]
    for pair in pairs:
        lines.append(
            f"| {pair['a']} vs {pair['b']} | {pair['pairs']} | {format_interval(pair['win'], '%')} | "
            f"{format_interval(pair['tie'], '%')} | {format_interval(pair['loss'], '%')} | "
            f"{format_interval(pair['position_consistency'], '%')} |"
        )
    return lines


def render_report(result: dict[str, Any]) -> str:
    """The Markdown text of the report for a ``result.json`` document.

    Example:
        ```python
        text = render_report(json.loads(Path("runs/arena/result.json").read_text()))
        ```
    """
    settings = result["settings"]
    counts = result["counts"]
    kinds = ", ".join(f"`{name}` ({entry['kind']})" for name, entry in result["candidates"].items())
    lines = [
        "# Arena report",
        "",
        f"Command: `{result.get('command', 'cscprog arena')}`",
        "",
        f"Candidates: {kinds}.",
        f"Customers: {counts['customers_ready']} of {counts['customers_planned']} planned (profiles x topics, "
        f"seed {settings['seed']}), {settings['trials']} trial(s) each, turn cap {settings['turn_cap']} "
        f"utterances, taxonomy `{result['taxonomy']}`.",
        "",
        "## Candidates",
        "",
        f"Means over customers (each customer's trials averaged first); in brackets the "
        f"{round(100 * settings['confidence'])}% percentile-bootstrap interval over customers "
        f"({settings['resamples']} resamples); n = customers with a value. Resolution is judged from the "
        "customer's goal by the `arena_judge` role; satisfaction is the simulated customer's own score; strategy "
        "adherence is the share of the turns a candidate tagged whose reply the strategy classifier reads as that "
        "strategy (n/a for a candidate that names none); turns it does not tag are labelled by the classifier for "
        "the flow, stage and plot figures.",
        "",
        *_candidates_table(result),
        "",
    ]
    for name, entry in result["summary"].items():
        reasons = ", ".join(f"{reason} {count}" for reason, count in entry["finish_reasons"].items())
        sources = ", ".join(f"{source} {count}" for source, count in entry["strategy_sources"].items())
        lines.append(f"- `{name}`: ended by {reasons}; strategies {sources}.")
    if result.get("pairwise"):
        lines += [
            "",
            "## Pairwise",
            "",
            "Each pair of conversations with the same customer and trial is judged twice (role `pair_judge`), A "
            "shown first and then B first; the outcome is the winner both orders agree on, else a tie. Position "
            "consistency is the share of pairs where the two orders agree. Rates are from A's side, means over "
            "customers with bootstrap intervals.",
            "",
            *_pairs_table(result["pairwise"]),
        ]
    if result.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{Path(path).stem}]({Path(path).name})" for path in result["plots"]]
    missing = counts.get("failed", {})
    if any(missing.values()):
        lines += ["", "## Not finished", "",
                  "Items that failed are listed in the `*.failures.jsonl` beside each output; `--resume` retries "
                  "them: " + ", ".join(f"{stage} {count}" for stage, count in missing.items() if count) + "."]
    return "\n".join(lines) + "\n"


def write_report(result: dict[str, Any], path: Path) -> Path:
    """Write :func:`render_report` of ``result`` to ``path`` atomically."""
    atomic_write(path, render_report(result))
    return path
