"""The Markdown report of an evaluation: our row in the paper's Table 2 layout, then the breakdowns.

The main table has the paper's columns B-2 / B-4 / R-L / BS (BERTScore) / BR (BLEURT) / ACC with the paper's
published rows (CSC.md section 5, reference context; for generated context the paper reports accuracy only),
our row, and our 95% bootstrap intervals. A column of ours carries a dagger when it is *not* comparable with the
paper's (:func:`cscprog.evaluation.comparability.paper_comparability`), and a section says why for every column.
A column we could not compute shows "–" and the reason (how to get it). The static wordllama similarity is its
own column (WL-F1) under "More scores", never under BS. Every score's signature is listed. The paper's rows are
on its Chinese CSConv test set; ours are on whatever data was evaluated, which the report names.

Example:
    ```python
    from cscprog.evaluation.report import render_report

    Path("report.md").write_text(render_report(outcome.result, taxonomy))
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cscprog.evaluation.comparability import paper_comparability
from cscprog.framework import Taxonomy

__all__ = ["PAPER_ROWS", "render_report"]

DASH = "–"

PAPER_ROWS: dict[str, tuple[tuple[str, tuple[float | None, ...]], ...]] = {
    "reference": (
        ("GPT-4o", (8.13, 2.97, 4.12, 64.26, 51.27, 42.58)),
        ("DeepSeek-R1", (11.67, 5.09, 8.44, 66.57, 52.09, 39.78)),
        ("Qwen2.5-7B-Instruct", (6.73, 2.29, 3.80, 62.75, 48.21, 18.78)),
        ("Qwen2.5-7B-Instruct + RoleCS", (11.23, 4.80, 7.39, 66.35, 52.14, 42.96)),
        ("LLaMA3.1-8B-Instruct", (4.28, 1.44, 3.62, 58.68, 38.84, 17.16)),
        ("LLaMA3.1-8B-Instruct + RoleCS", (11.06, 4.77, 6.93, 66.21, 52.13, 42.15)),
        ("Qwen2.5-72B-Instruct + RoleCS", (12.15, 5.32, 7.97, 66.85, 54.49, 43.29)),
    ),
    "generated": (
        ("GPT-4o", (None, None, None, None, None, 36.29)),
        ("LLaMA3.1-70B-Instruct + RoleCS (best)", (None, None, None, None, None, 39.44)),
    ),
}
"""The paper's Table 2 rows (B-2, B-4, R-L, BS, BR, ACC) per context, from CSC.md section 5."""

COLUMNS = ("B-2", "B-4", "R-L", "BS", "BR", "ACC")
_OUR_KEYS = ("bleu2", "bleu4", "rouge_l", "bertscore", "bleurt", "accuracy")
NOT_COMPARABLE = "\u2020"


def _num(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _program_name(result: dict[str, Any]) -> str:
    program = result.get("program") or {}
    model = result.get("model") or "unknown model"
    if program.get("recipe"):
        return f"cscprog {model}, compiled ({program['recipe']}/{program.get('budget')}, {program.get('optimizer')})"
    return f"cscprog {model}, base program"


def _interval(result: dict[str, Any], key: str) -> str:
    interval = (result.get("intervals") or {}).get(key)
    return DASH if not interval else f"[{interval['low']:.2f}, {interval['high']:.2f}]"


def _main_table(result: dict[str, Any], context: str) -> list[str]:
    rows = [[f"{name} (paper)", *(_num(v) for v in values)] for name, values in PAPER_ROWS.get(context, ())]
    marks = paper_comparability(result)
    ours = [_num(result.get(key)) + ("" if marks[column]["comparable"] or result.get(key) is None else NOT_COMPARABLE)
            for column, key in zip(COLUMNS, _OUR_KEYS, strict=True)]
    rows.append([f"**{_program_name(result)} (this run)**", *ours])
    rows.append(["95% interval (bootstrap over turns)", *(_interval(result, key) for key in _OUR_KEYS)])
    return _table(["Model", *COLUMNS], rows)


def _comparability(result: dict[str, Any]) -> list[str]:
    lines = ["## Comparable with the paper?", "",
             f"Profile `{(result.get('metrics') or {}).get('profile', 'standard')}`. The paper's rows are on its "
             "CSConv test set: a column is comparable only on that data, and only when computed as below "
             f"({NOT_COMPARABLE} marks those that are not).", ""]
    unavailable = result.get("unavailable") or {}
    for column, key in zip(COLUMNS, _OUR_KEYS, strict=True):
        mark = paper_comparability(result)[column]
        why = unavailable.get(key) if result.get(key) is None and unavailable.get(key) else mark["why"]
        lines.append(f"- **{column}**: {'comparable' if mark['comparable'] else 'not comparable'}: {why}")
    return [*lines, ""]


def _signatures(result: dict[str, Any]) -> list[str]:
    metrics = result.get("metrics") or {}
    lines = ["## How each score was computed (signatures)", ""]
    lines += [f"- `{key}`: `{signature}`" for key, signature in (result.get("signatures") or {}).items()]
    if metrics:
        lines.append(f"- intervals: {metrics.get('interval')}, {int(100 * metrics.get('confidence', 0.95))}%, "
                     f"{metrics.get('resamples')} resamples, seed {metrics.get('seed')}")
    return [*lines, ""]


def _breakdown(title: str, table: dict[str, dict[str, Any]], first: str) -> list[str]:
    rows = [[key, row["n"], row["correct"], row["failures"], _num(row["accuracy"])] for key, row in table.items()]
    return [f"### {title}", "", *_table([first, "turns", "correct", "failed", "ACC"], rows), ""]


def render_report(result: dict[str, Any], taxonomy: Taxonomy) -> str:
    """The Markdown report of an evaluation result (the content of ``result.json``).

    Example:
        ```python
        text = render_report(json.loads(Path("eval/result.json").read_text()), load_taxonomy("csc"))
        ```
    """
    settings = result.get("settings", {})
    context = settings.get("context", "reference")
    coverage = result.get("coverage", {})
    run = result.get("run") or {}
    incomplete = bool(run) and (run.get("failed") or run.get("unfinished"))
    lines = [
        f"# Next-supporter-turn evaluation ({context} context)",
        "",
        *([f"**Incomplete run**: {run.get('failed')} dialogue(s) failed and {run.get('unfinished')} did not run; "
           "their supporter turns are scored as failures below. Resume the run for final numbers.", ""]
          if incomplete else []),
        f"- Data: `{settings.get('data') or 'in-memory dialogues'}`; {coverage.get('dialogues_scored', '?')} "
        f"dialogues, {result['n']} supporter turns (every supporter turn, openings included)"
        + (f"; sampled with limit {settings['limit']}" if settings.get("limit") else ""),
        f"- Program: {_program_name(result)}",
        f"- Failures (no usable output after retries, scored as wrong): {result['failures']} of {result['n']}",
        "",
        "## Results in the paper's Table 2 layout",
        "",
        *_main_table(result, context),
        "",
        "Scores x100. Paper rows: CSConv test set (Chinese), from the paper's Table 2"
        + (" (generated context: accuracy only)" if context == "generated" else "") + f". {NOT_COMPARABLE}: not "
        "comparable with the paper's column (see below); \u2013: not computed (reason below).",
        "",
        *_comparability(result),
        "## More scores",
        "",
        *_table(["", "macro-F1", "WL-F1 (static wordllama, not BERTScore)", "Distinct-1", "Distinct-2", "turns",
                 "failures"],
                [["score", _num(result.get("macro_f1")), _num(result.get("semantic")), _num(result.get("distinct1")),
                  _num(result.get("distinct2")), result["n"], result["failures"]],
                 ["95% interval", _interval(result, "macro_f1"), _interval(result, "semantic"), DASH, DASH, "", ""]]),
        "",
        *_signatures(result),
        "## Breakdowns",
        "",
    ]
    per_label = result.get("per_label", {})
    rows = []
    for strategy in taxonomy.strategies:
        row = result["per_strategy"].get(strategy.name, {"n": 0, "correct": 0, "failures": 0, "accuracy": None})
        label = per_label.get(strategy.name, {})
        rows.append([f"{strategy.name} ({strategy.abbr})", strategy.stage, row["n"], row["correct"], row["failures"],
                     _num(row["accuracy"]), _num(label.get("precision")), _num(label.get("f1"))])
    lines += ["### Per strategy", "",
              *_table(["strategy", "stage", "turns", "correct", "failed", "ACC (recall)", "precision", "F1"], rows),
              ""]
    lines += _breakdown("Per stage (of the gold strategy)", result["per_stage"], "stage")
    lines += _breakdown("Per domain", result["per_domain"], "domain")
    lines += _breakdown("Per language", result.get("per_language", {}), "language")
    confusion = result["confusion"]
    abbr = {s.name: s.abbr for s in taxonomy.strategies}
    header = ["gold \\ pred", *(abbr.get(n, n) for n in confusion["labels"]), "fail"]
    matrix_rows = [[abbr.get(name, name), *row, failed]
                   for name, row, failed in zip(confusion["labels"], confusion["matrix"], confusion["failed"],
                                                strict=True)]
    lines += ["## Confusion matrix (rows gold, columns predicted)", "", *_table(header, matrix_rows), ""]
    if result.get("plots"):
        lines += ["## Plots", "", *(f"![{name}]({name})" for name in result["plots"]), ""]
    if run:
        lines += ["## Run", "",
                  f"- Dialogues done: {run.get('done')} of {run.get('total')}; failed: {run.get('failed')}; "
                  f"not finished: {run.get('unfinished')}; exit status {run.get('exit_status')}"]
        if run.get("resume_command"):
            lines.append(f"- Resume: `{run['resume_command']}`")
        lines.append("")
    return "\n".join(lines)
