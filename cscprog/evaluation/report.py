"""The Markdown report of an evaluation: our row in the paper's Table 2 layout, then the breakdowns.

The main table has the paper's columns B-2 / B-4 / R-L / BS / BR / ACC with the paper's published rows
(CSC.md section 5, reference context; for generated context the paper reports accuracy only) and our row.
Columns we do not compute are shown as "–": BR (BLEURT) always. Our BS column is the packaged-embedding
greedy-matching score (:mod:`cscprog.evaluation.metrics.semantic`), marked with an asterisk: it is
BERTScore's formula on another model, so it is comparable between our runs, not with the paper's
BERTScore. The paper's rows are on its Chinese CSConv test set; ours are on whatever data was evaluated,
which the report names.

Example:
    ```python
    from cscprog.evaluation.report import render_report

    Path("report.md").write_text(render_report(outcome.result, taxonomy))
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
_OUR_KEYS = ("bleu2", "bleu4", "rouge_l", "semantic", None, "accuracy")


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


def _main_table(result: dict[str, Any], context: str) -> list[str]:
    rows = [[f"{name} (paper)", *(_num(v) for v in values)] for name, values in PAPER_ROWS.get(context, ())]
    ours = [_num(result.get(key)) if key else DASH for key in _OUR_KEYS]
    if result.get("semantic") is not None:
        ours[3] += "*"
    rows.append([f"**{_program_name(result)} (this run)**", *ours])
    return _table(["Model", *COLUMNS], rows)


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
        + (" (generated context: accuracy only)" if context == "generated" else "") + ". "
        "BR (BLEURT) is not computed (–). "
        + ("BS*: greedy token-embedding matching (BERTScore's formula) on "
           f"{settings.get('semantic_model')} static embeddings, not the paper's BERTScore model; compare it "
           "across our runs only." if result.get("semantic") is not None else
           f"BS: not computed ({settings.get('semantic_unavailable') or 'unavailable'}).")
        + f" BLEU: sacrebleu corpus-level, tokenizer {settings.get('bleu_tokenize')} (zh by characters, 13a for "
        f"English), smoothing {settings.get('bleu_smoothing')}. ROUGE-L: F1, mean over turns.",
        "",
        "## More scores",
        "",
        *_table(["macro-F1", "Distinct-1", "Distinct-2", "turns", "failures"],
                [[_num(result.get("macro_f1")), _num(result.get("distinct1")), _num(result.get("distinct2")),
                  result["n"], result["failures"]]]),
        "",
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
