"""Dialogues as the viewer's data: turns with strategy indices, flow-rule violations, verdicts and drop reasons.

The verdict of a dialogue is read from the metadata the pipelines write:

* ``metadata["rewrite"]`` (:class:`cscprog.csconv.rewriter.RewriteDecision`): ``kept``, or ``dropped`` at a
  stage by a rule, with the reason; ``metadata["judge"]`` then holds the rewrite judge's quality verdict and
  ``metadata["screen"]`` the LLM pre-filter's;
* ``metadata["judge"]`` of :class:`cscprog.rolecs.judge.QualityJudge`: ``passed`` (all five criteria),
  ``rejected`` (the criteria that failed, with the judge's reasons) or ``unjudged`` (no usable verdict);
* ``metadata["arena"]`` of an arena conversation (:mod:`cscprog.view.conversations`): ``resolved`` or
  ``unresolved``, with the resolution judge's reason and the conversation's scores.

A dialogue with none of these has the verdict ``none``.

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.samples import load_sample
    from cscprog.view.dialogues import dialogue_payload

    data = dialogue_payload(load_sample("annotated_en"), load_taxonomy("csc"), source="sample:annotated_en")
    data["dialogues"][0]["flow"]        # flow-rule violations of the first dialogue
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cscprog.data import Dialogue
from cscprog.framework import ANY_STAGE, Taxonomy, check_flow

__all__ = ["STRATEGY_COLORS", "VERDICTS", "dialogue_payload", "dialogue_record", "taxonomy_payload", "verdict_of"]

STRATEGY_COLORS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#2f6d5d", "#8c564b", "#7f7f7f", "#17becf", "#bcbd22", "#1f3b73", "#d62728",
)
"""Strategy colours, by position in the taxonomy (the last strategy, the fallback, is drawn grey)."""

STAGE_COLORS = (("#5b8bd0", "#eaf1fb"), ("#e8964a", "#fdf0e3"), ("#5aa469", "#e9f5ea"), ("#d0575f", "#fbe9ea"),
                ("#9170b8", "#f1ebf7"), ("#b59a2a", "#f8f3dc"), ("#3d9a9a", "#e4f3f3"))
"""(border, background) colours of the stage bands, by stage order."""

VERDICTS = ("kept", "dropped", "passed", "rejected", "unjudged", "resolved", "unresolved", "none")
"""Every verdict a dialogue can have in the viewer."""


def taxonomy_payload(taxonomy: Taxonomy) -> dict[str, Any]:
    """Stages and strategies with their display colours, in taxonomy order.

    Example:
        ```python
        taxonomy_payload(load_taxonomy("csc"))["strategies"][0]   # {'name': 'Greeting', 'abbr': 'GT', ...}
        ```
    """
    strategies = []
    for index, strategy in enumerate(taxonomy.strategies):
        fallback = strategy.name == taxonomy.fallback
        color = "#8a8a8a" if fallback else STRATEGY_COLORS[index % len(STRATEGY_COLORS)]
        strategies.append({"name": strategy.name, "abbr": strategy.abbr, "zh": strategy.zh, "stage": strategy.stage,
                           "definition": strategy.definition, "color": color})
    stages = [{"name": stage.name, "zh": stage.zh, "color": STAGE_COLORS[i % len(STAGE_COLORS)][0],
               "background": STAGE_COLORS[i % len(STAGE_COLORS)][1]} for i, stage in enumerate(taxonomy.stages)]
    return {"name": taxonomy.name, "any_stage": ANY_STAGE, "stages": stages, "strategies": strategies}


def _failed_criteria(judge: dict[str, Any]) -> list[str]:
    scores = judge.get("scores") or {}
    return [name for name, passed in scores.items() if passed is False]


def verdict_of(dialogue: Dialogue) -> dict[str, Any]:
    """The viewer's verdict of one dialogue: ``status`` (one of :data:`VERDICTS`), ``label``, ``reason``, ``details``.

    Example:
        ```python
        verdict_of(dialogue)   # {'status': 'dropped', 'label': 'postfilter: multi_label', 'reason': '...', ...}
        ```
    """
    meta = dialogue.metadata
    rewrite, judge, screen, arena = meta.get("rewrite"), meta.get("judge"), meta.get("screen"), meta.get("arena")
    if isinstance(arena, dict) and isinstance(arena.get("scores"), dict):
        scores = arena["scores"]
        status = "resolved" if scores.get("resolved") else "unresolved"
        label = f"{arena.get('candidate')}: {status} (trial {arena.get('trial')}, topic {arena.get('topic')})"
        return {"status": status, "label": label, "reason": str(scores.get("resolution_reason", "")),
                "details": {"scores": scores}}
    details: dict[str, Any] = {}
    if isinstance(judge, dict):
        details["judge"] = judge
    if isinstance(screen, dict):
        details["screen"] = screen
    if isinstance(rewrite, dict) and "kept" in rewrite:
        if rewrite.get("kept"):
            return {"status": "kept", "label": "kept", "reason": str(rewrite.get("reason", "")), "details": details}
        label = f"{rewrite.get('stage', '?')}: {rewrite.get('rule') or '?'}"
        if rewrite.get("details"):
            details["filter"] = rewrite["details"]
        return {"status": "dropped", "label": label, "reason": str(rewrite.get("reason", "")), "details": details}
    if isinstance(judge, dict) and "passed" in judge:
        if "failure" in judge:
            return {"status": "unjudged", "label": "not judged", "reason": str(judge["failure"]), "details": details}
        if judge["passed"]:
            return {"status": "passed", "label": "judge: passed", "reason": "", "details": details}
        failed = _failed_criteria(judge)
        reasons = judge.get("reasons") or {}
        reason = "; ".join(f"{name}: {reasons.get(name, '')}".strip() for name in failed)
        return {"status": "rejected", "label": "judge: failed " + ", ".join(failed), "reason": reason,
                "details": details}
    return {"status": "none", "label": "", "reason": "", "details": details}


def dialogue_record(dialogue: Dialogue, taxonomy: Taxonomy, index: dict[str, int] | None = None) -> dict[str, Any]:
    """One dialogue in the viewer's compact form.

    Keys: ``id``, ``domain``, ``language``, ``turns`` (``s``: ``S`` or ``C``; ``k``: the strategy's index in
    the taxonomy or null; ``x``: indices of further strategies; ``t``: the text), ``flow`` (violations, each
    with the ``turn`` index it shows at, or null for the whole dialogue), ``verdict`` (:func:`verdict_of`),
    ``scenario`` and ``profile`` (of a role-played dialogue), ``candidate`` (the agent of an arena conversation).

    Example:
        ```python
        dialogue_record(load_sample("annotated_en")[0], load_taxonomy("csc"))["turns"][0]
        ```
    """
    index = index if index is not None else {name: i for i, name in enumerate(taxonomy.names)}
    turns = [{"s": "S" if turn.is_supporter else "C", "k": index.get(turn.strategy) if turn.strategy else None,
              "x": [index[name] for name in turn.extra_strategies if name in index], "t": turn.text}
             for turn in dialogue.turns]
    flow = []
    supporter = dialogue.supporter_indices()
    if dialogue.is_annotated:
        for violation in check_flow(dialogue.supporter_strategies(), taxonomy):
            at = supporter[violation.position] if violation.position is not None else None
            flow.append({"rule": violation.rule, "turn": at, "message": violation.message})
    record: dict[str, Any] = {"id": dialogue.id, "domain": dialogue.domain or "", "language": dialogue.language or "",
                              "turns": turns, "flow": flow, "verdict": verdict_of(dialogue)}
    arena = dialogue.metadata.get("arena")
    if isinstance(arena, dict) and arena.get("candidate"):
        record["candidate"] = str(arena["candidate"])
    if dialogue.scenario is not None:
        record["scenario"] = dialogue.scenario.model_dump(mode="json", exclude_none=True)
    if dialogue.profile is not None:
        record["profile"] = dialogue.profile.model_dump(mode="json", exclude_none=True)
    return record


def dialogue_payload(
    dialogues: Iterable[Dialogue],
    taxonomy: Taxonomy,
    *,
    source: str,
    failures: Sequence[dict[str, Any]] = (),
    files: Sequence[str] = (),
) -> dict[str, Any]:
    """The data of a dialogue view: the taxonomy, every dialogue (:func:`dialogue_record`) and run failures.

    Args:
        dialogues: The dialogues to show, in order (kept and dropped ones together).
        taxonomy: Names, stages and flow rules.
        source: What was read, shown in the page header.
        failures: Records of ``*.failures.jsonl`` files (items a run could not finish).
        files: The files read, listed in the page.

    Example:
        ```python
        dialogue_payload(load_sample("annotated_en"), load_taxonomy("csc"), source="sample")
        ```
    """
    index = {name: i for i, name in enumerate(taxonomy.names)}
    records = [dialogue_record(dialogue, taxonomy, index) for dialogue in dialogues]
    return {"kind": "dialogues", "source": source, "files": list(files), "taxonomy": taxonomy_payload(taxonomy),
            "dialogues": records, "failures": list(failures)}
