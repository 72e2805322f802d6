"""The demo's Markdown report: what ran, what each filter decided, the synthesized data, base vs compiled.

The base vs compiled table follows the paper's Table 2 layout (columns and published rows from
:mod:`cscprog.evaluation.report`); the plots are the evaluation's own PNGs
(:mod:`cscprog.evaluation.plots`), linked from ``eval/<program>-<context>/``.

Example:
    ```python
    text = render_demo_report(result, manifest, load_taxonomy("csc"))
    ```
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cscprog.demo.findings import demo_findings
from cscprog.demo.plan import provider_snippet
from cscprog.demo.stages import CONTEXTS, PROGRAMS, RECIPE
from cscprog.evaluation.report import _OUR_KEYS, COLUMNS, DASH, PAPER_ROWS, _num, _table
from cscprog.framework import Taxonomy

if TYPE_CHECKING:
    from cscprog.demo.result import DemoResult

__all__ = ["render_demo_report"]

_REASON_CHARS = 180
_READING = ("How to read this: B-2/B-4 are BLEU-2/4 and R-L is ROUGE-L of the reply against the gold reply; BS "
            "(BERTScore) and BR (BLEURT) are not computed in the demo (dash); ACC is strategy accuracy. Each full "
            "report gives every score's signature, its 95% interval and which columns compare with the paper. "
            "Reference context gives the program the gold dialogue up to each supporter turn; generated context "
            "replaces the earlier supporter turns with the program's own replies (customer turns stay gold), as the "
            "paper's second setting. A position is one supporter turn scored, the unit of the turns and failures "
            "columns.")
_USAGE_COLUMNS = (("live calls", "live_calls"), ("cache hits", "cache_hits"), ("prompt tokens", "prompt_tokens"),
                  ("completion tokens", "completion_tokens"), ("saved tokens", "saved_total_tokens"),
                  ("parse retries", "parse_retries"), ("invalid retries", "invalid_retries"),
                  ("failures", "failures"))


def _clip(text: Any, limit: int = _REASON_CHARS) -> str:
    flat = " ".join(str(text or "").split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _header(result: DemoResult, manifest: dict[str, Any]) -> list[str]:
    roles = manifest.get("roles") or {}
    models = sorted({str(info.get("model")) for info in roles.values() if isinstance(info, dict)})
    status = ("every stage ran" if result.completed else f"**stopped early**: {result.stopped}")
    failures = result.failures_text()
    lines = ["# cscprog demo", "",
             "The whole method on the packaged samples: CSConv-style rewriting and annotation, RoleCS-style "
             "role-play synthesis with a judge, a compiled response generator, and the paper's evaluation of base "
             "vs compiled in reference and generated context.", "",
             f"- Status: {status}. Failures (no usable LM output after the retries, recorded below): {failures}",
             f"- Model(s): {', '.join(f'`{m}`' for m in models) or 'see the manifest'}; seed "
             f"{manifest.get('seed')}; wall time {result.duration_s:.1f} s ("
             + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.seconds.items()) + ")",
             f"- Plan: `{json.dumps(result.plan.to_json())}`"]
    lines += [f"- {note}" for note in result.notes]
    findings = demo_findings(result)
    if findings:
        lines += ["", "## Read this first", "",
                  "These outputs are degenerate or worse than their baseline; the tables below present them as they "
                  "are.", "", *(f"- **Warning:** {finding}" for finding in findings)]
    return lines + [""]


def _csconv(result: DemoResult) -> list[str]:
    outcome = result.csconv
    lines = ["## 1. CSConv-style: rewrite and annotate raw calls", ""]
    if outcome is None:
        return lines + ["Not run.", ""]
    rows = []
    for row in outcome.decisions:
        if "failure" in row:
            failure = row["failure"]
            rows.append([row["id"], "", "failed", "run", failure.get("error"), _clip(failure.get("reason"))])
            continue
        decision = row["decision"]
        rows.append([row["id"], row.get("domain") or "", "kept" if decision["kept"] else "dropped", decision["stage"],
                     decision.get("rule") or "", _clip(decision.get("reason"))])
    lines += ["Each raw call goes through the rule pre-filter, the LLM screen, the rewrite, the rule post-filters "
              "and the LLM judge; the first filter that fails drops it."
              + ("" if outcome.screen else " The LLM screen was skipped: on the embedded model it flags every call "
                 "(6 of 6 real banking calls) with reasons that restate its own instructions."), "",
              *_table(["raw call", "domain", "outcome", "stage", "rule", "why"], rows), ""]
    lines += _rewrite_shown(outcome.decisions)
    if outcome.annotations:
        rows, agree, total = [], 0, 0
        for record in outcome.annotations:
            for turn in record["turns"]:
                same = turn["classifier"] is not None and turn["classifier"] == turn["rewriter"]
                agree, total = agree + same, total + 1
                rows.append([record["id"], turn["turn_index"], turn["rewriter"] or DASH,
                             turn["classifier"] or "failed", _clip(turn["text"], 90)])
        lines += [f"The strategy classifier re-annotated the first supporter turns of each rewrite: it agrees with "
                  f"the rewriter's label on {agree} of {total} turns.", "",
                  *_table(["rewrite", "turn", "rewriter label", "classifier label", "text"], rows), ""]
    else:
        lines += ["No rewrite was produced, so the classifier had nothing to annotate.", ""]
    return lines


_ORIGIN_NOTES = {"kept": "as said in the call", "inserted": "not in the call: written new",
                 "unchanged": "the call's line, unchanged"}


def _rewrite_shown(decisions: list[dict[str, Any]]) -> list[str]:
    """The first kept rewrite (else the first one produced), each turn beside what the call said."""
    rows = [row for row in decisions if row.get("candidate")]
    if not rows:
        return []
    row = next((r for r in rows if r.get("kept")), rows[0])
    status = "kept" if row.get("kept") else f"dropped ({row['decision'].get('stage')}: {row['decision'].get('rule')})"
    lines = [f"### A rewritten call: `{row['id']}` ({status})", "", "```text"]
    for turn in row["candidate"]["turns"]:
        speaker = "Supporter" if turn["speaker"] == "supporter" else "Customer"
        label = f" [{turn['strategy']}]" if turn.get("strategy") else ""
        metadata = turn.get("metadata") or {}
        origin = metadata.get("origin")
        note = (f"rewritten from: {_clip(metadata.get('original'), 120)}" if origin == "rewritten"
                else _ORIGIN_NOTES.get(origin, ""))
        lines.append(f"{speaker}{label}: {turn['text']}" + (f"    <- {note}" if note else ""))
    return lines + ["```", ""]


def _transcript(dialogue: Any) -> list[str]:
    lines = ["```text"]
    if dialogue.scenario is not None:
        lines += [f"(goal: {_clip(dialogue.scenario.goal, 300)})", f"(scenario: {_clip(dialogue.scenario.text, 400)})"]
    lines += [dialogue.transcript(), "```"]
    return lines


def _failed_rule(verdict: dict[str, Any]) -> bool:
    """True when the degenerate-text rules rejected a synthesized dialogue before the judge was asked."""
    check = verdict.get("rule_check") or {}
    return check.get("kept") is False


def _rolecs(result: DemoResult) -> list[str]:
    outcome = result.rolecs
    lines = ["## 2. RoleCS-style: synthesize role-play dialogues and judge them", ""]
    if outcome is None:
        return lines + ["Not run.", ""]
    rows = []
    for dialogue in outcome.dialogues:
        verdict = outcome.verdicts.get(dialogue.id, {})
        judged = ("not judged: " + _clip(verdict["failure"], 80)) if "failure" in verdict else (
            f"{sum(verdict.get('scores', {}).values())}/5" + (" kept" if verdict.get("passed") else " rejected")
            if verdict else "not judged")
        if _failed_rule(verdict):
            judged = f"rejected by the rule check `{verdict['rule_check']['rule']}` (judge not asked)"
        profile = dialogue.profile.id if dialogue.profile else ""
        rows.append([dialogue.id, profile, dialogue.scenario.topic if dialogue.scenario else "", len(dialogue.turns),
                     dialogue.metadata.get("finish_reason"), judged])
    failed = [run_failure for run in outcome.runs if run.name == "synthesize" for run_failure in run.failures]
    lines += [f"{len(outcome.dialogues)} dialogue(s) synthesized from sample profiles x topics (utterance cap "
              f"{result.plan.max_utterances}), {len(failed)} failed; {len(outcome.passed)} met all five judge "
              "criteria and go into training, as in RoleCS.", "",
              *_table(["dialogue", "profile", "topic", "turns", "ended by", "judge"], rows), ""]
    lines += [f"- synthesis failed for `{f['item_id']}`: {_clip(f.get('reason'))}" for f in failed]
    if outcome.dialogues:
        sample = outcome.dialogues[0]
        lines += ["", f"### A synthesized dialogue: `{sample.id}`", "", *_transcript(sample), ""]
        verdict = outcome.verdicts.get(sample.id, {})
        if _failed_rule(verdict):
            check = verdict["rule_check"]
            lines += [f"Not a usable dialogue: the rule check `{check['rule']}` rejected it before the judge "
                      f"({_clip(check.get('reason'))}).", ""]
        if verdict.get("scores"):
            lines += _table(["criterion", "verdict", "reason"],
                            [[name, "yes" if ok else "no", _clip(verdict["reasons"].get(name))]
                             for name, ok in verdict["scores"].items()])
    return lines + [""]


def _compile(result: DemoResult) -> list[str]:
    outcome = result.compiled
    lines = ["## 3. Compile the response generator", ""]
    if outcome is None:
        return lines + ["Not run.", ""]
    compiled = outcome.result
    sources = outcome.train_sources
    rows = [[name, _num(scores["metric"]), _num(scores["strategy_accuracy"]), _num(scores["reply_rouge_l"]),
             scores["n"], scores["failures"]] for name, scores in (("base", compiled.before),
                                                                   ("compiled", compiled.after))]
    lines += [f"Recipe `{RECIPE}` (light budget, {compiled.settings.get('optimizer')}) with bootstrapping off: each "
              f"predictor gets {result.plan.demos} labeled demos drawn (seeded) from {sources['train_examples']} "
              f"training examples ({sources['synthesized_dialogues']} judged synthesized dialogues + "
              f"{sources['annotated_dialogues']} annotated train dialogues, first {result.plan.train_positions} "
              f"supporter turns each). Validated on {sources['dev_examples']} dev positions; saved to "
              f"`{outcome.path.relative_to(result.out_dir)}`.", "",
              *_table(["dev set", "metric", "strategy ACC", "reply ROUGE-L", "positions", "failures"], rows),
              "", f"Metric change: {compiled.improvement:+.2f} points (0.5 strategy accuracy + 0.5 ROUGE-L, x100).", ""]
    return lines


def _score_row(label: str, scores: dict[str, Any]) -> list[str]:
    cells = [_num(scores.get(key)) if key else DASH for key in _OUR_KEYS]
    return [label, *cells, str(scores.get("n")), str(scores.get("failures"))]


def _evaluation(result: DemoResult) -> list[str]:
    outcome = result.evaluation
    lines = ["## 4. Base vs compiled, in the paper's Table 2 layout", ""]
    if outcome is None:
        return lines + ["Not run.", ""]
    model = next(iter(outcome.results.values())).get("model") or "the model"
    lines += [f"Held-out annotated test dialogues {', '.join(f'`{i}`' for i in outcome.test_ids)}, first "
              f"{result.plan.positions} supporter turns each. Scores x100; paper rows are its CSConv test set "
              "(Chinese) and are shown for the layout, not for comparison with this tiny sample.", ""]
    for context in CONTEXTS:
        rows = [[f"{name} (paper)", *(_num(v) for v in values), "", ""] for name, values in PAPER_ROWS[context]]
        for program in PROGRAMS:
            scores = outcome.results.get((program, context))
            if scores is not None:
                rows.append(_score_row(f"**{model}, {program} (this run)**", scores))
        lines += [f"### {context.capitalize()} context", "", *_table(["Model", *COLUMNS, "turns", "failures"], rows),
                  ""]
    lines += [_READING, "", "Full reports: " + ", ".join(
                  f"[{p}-{c}]({outcome.dirs[(p, c)].relative_to(result.out_dir)}/report.md)"
                  for p in PROGRAMS for c in CONTEXTS if (p, c) in outcome.dirs), ""]
    for program in PROGRAMS:
        for context in CONTEXTS:
            folder = outcome.dirs.get((program, context))
            names = (outcome.results.get((program, context)) or {}).get("plots", [])
            if folder is None or not names:
                continue
            lines += [f"### Plots: {program} program, {context} context", ""]
            lines += [f"![{program} program, {context} context: {name}]({folder.relative_to(result.out_dir)}/{name})"
                      for name in names]
            lines.append("")
    return lines


def _usage(result: DemoResult, manifest: dict[str, Any]) -> list[str]:
    usage = result.usage or {}
    total = usage.get("total", {})
    rows = [[role, *(row.get(key, 0) for _, key in _USAGE_COLUMNS)] for role, row in usage.get("by_role", {}).items()]
    rows.append(["**total**", *(total.get(key, 0) for _, key in _USAGE_COLUMNS)])
    cache = manifest.get("cache") or {}
    return ["## Usage", "",
            f"{total.get('live_calls', 0)} live LM call(s) and {total.get('cache_hits', 0)} served from the response "
            f"cache `{cache.get('dir')}` (mode {cache.get('mode')}: {cache.get('hits')} hits, {cache.get('misses')} "
            f"misses, {cache.get('stores')} stored this run). With the same seed and cache, a second run replays "
            "every call. A first run shows hits too: a call the demo makes twice with the same prompt (the first "
            "supporter turn has the same history in reference and generated context; the compile scores the base "
            "program on dev) is made once. Inspect this cache with "
            f"`cscprog cache stats --dir {cache.get('dir')}`.", "",
            *_table(["role", *(name for name, _ in _USAGE_COLUMNS)], rows), ""]


def render_demo_report(result: DemoResult, manifest: dict[str, Any], taxonomy: Taxonomy) -> str:
    """The Markdown text of ``report.md``.

    Example:
        ```python
        (out_dir / "report.md").write_text(render_demo_report(result, manifest, taxonomy))
        ```
    """
    lines = [*_header(result, manifest), *_csconv(result), *_rolecs(result), *_compile(result),
             *_evaluation(result), *_usage(result, manifest)]
    lines += ["## Run it on a real provider", "",
              "The same pipeline runs on any provider: put this in `cscprog.toml` (or pass `--config FILE`), set the "
              "variable, and run `cscprog demo` again.", "", "```toml", provider_snippet().rstrip(), "```", "",
              "## Manifest", "",
              f"Everything that ran, with which settings, versions and seeds: [manifest.json](manifest.json) "
              f"(taxonomy `{taxonomy.name}`, {len(manifest.get('roles') or {})} role(s)); each stage's output has its "
              "own `*.manifest.json` beside it.", ""]
    return "\n".join(lines)
