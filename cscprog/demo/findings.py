"""Warnings about the demo's outputs: what is degenerate, or worse than its baseline, said in words.

A small model can pass every check cscprog makes and still give outputs nobody should train on: a dialogue
that pastes its scenario into every turn, turns that repeat each other, a judge that gives one reason for all
five criteria, a compiled program that scores below the base. :func:`demo_findings` looks for these in a
finished demo so the report says so at the top instead of presenting them without remark.

Example:
    ```python
    for line in demo_findings(result):
        print("warning:", line)
    ```
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cscprog.demo.result import DemoResult

__all__ = ["COPY_SHARE", "copied_turns", "demo_findings", "repeated_turns", "same_reasons"]

COPY_SHARE = 0.6
"""A turn copies a text when at least this share of its word trigrams occur in that text."""
_MIN_TRIGRAMS = 4
_CJK = re.compile(r"[\u3400-\u9fff]")


def _tokens(text: str) -> list[str]:
    """Words (lower case) of Latin-script text; characters of Chinese text."""
    if _CJK.search(text):
        return [char for char in text if not char.isspace() and char.isalnum()]
    return re.findall(r"\w+", text.lower())


def _trigrams(text: str) -> list[tuple[str, ...]]:
    tokens = _tokens(text)
    return [tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2)]


def copied_turns(dialogue: Any, share: float = COPY_SHARE) -> list[int]:
    """Indices of the turns that mostly copy the dialogue's scenario or goal (word trigram overlap).

    Example:
        ```python
        copied_turns(dialogue)   # [0, 1, 2]: every turn pastes the scenario
        ```
    """
    scenario = getattr(dialogue, "scenario", None)
    if scenario is None:
        return []
    source = set(_trigrams(f"{scenario.text}\n{getattr(scenario, 'goal', '') or ''}"))
    found = []
    for index, turn in enumerate(dialogue.turns):
        grams = _trigrams(turn.text)
        if len(grams) >= _MIN_TRIGRAMS and sum(gram in source for gram in grams) / len(grams) >= share:
            found.append(index)
    return found


def repeated_turns(dialogue: Any) -> int:
    """How many turns repeat an earlier turn of the same speaker word for word (case and spacing ignored)."""
    seen: Counter[tuple[str, str]] = Counter()
    repeats = 0
    for turn in dialogue.turns:
        key = (str(turn.speaker), " ".join(_tokens(turn.text)))
        if key[1]:
            repeats += seen[key] > 0
            seen[key] += 1
    return repeats


def same_reasons(reasons: dict[str, Any]) -> bool:
    """True when a judge gave two or more criteria one and the same reason."""
    texts = [" ".join(_tokens(str(text or ""))) for text in reasons.values()]
    return len(texts) >= 2 and len(set(texts)) == 1 and bool(texts[0])


def _dialogue_findings(kind: str, dialogues: list[Any]) -> list[str]:
    lines = []
    for dialogue in dialogues:
        copied = copied_turns(dialogue)
        if copied and len(copied) * 2 >= len(dialogue.turns):
            lines.append(f"{kind} `{dialogue.id}` copies its scenario into {len(copied)} of its "
                         f"{len(dialogue.turns)} turns: it is not a usable dialogue, although it was kept.")
        repeats = repeated_turns(dialogue)
        if repeats:
            lines.append(f"{kind} `{dialogue.id}` repeats earlier turns word for word {repeats} time(s).")
    return lines


def _compare(label: str, base: dict[str, Any], compiled: dict[str, Any], keys: dict[str, str]) -> str | None:
    worse = [f"{name} {base[key]:.2f} -> {compiled[key]:.2f}" for name, key in keys.items()
             if base.get(key) is not None and compiled.get(key) is not None and compiled[key] < base[key]]
    if not worse:
        return None
    return f"the compiled program scores below the base in {label}: " + ", ".join(worse) + "."


def demo_findings(result: DemoResult) -> list[str]:
    """Sentences naming each degenerate output of the demo and each place the compiled program lost to the base.

    Example:
        ```python
        demo_findings(result)   # ["synthesized dialogue `rolecs-0001` copies its scenario into 3 of its 3 turns ..."]
        ```
    """
    lines: list[str] = []
    if result.csconv is not None:
        lines += _dialogue_findings("kept rewrite", result.csconv.kept)
    if result.rolecs is not None:
        passed = {dialogue.id for dialogue in result.rolecs.passed}
        lines += _dialogue_findings("kept synthesized dialogue",
                                    [d for d in result.rolecs.dialogues if d.id in passed])
        for dialogue_id, verdict in result.rolecs.verdicts.items():
            if same_reasons(verdict.get("reasons") or {}):
                lines.append(f"the judge gave `{dialogue_id}` the same reason for all {len(verdict['reasons'])} "
                             "criteria: its verdict says nothing criterion by criterion.")
    if result.compiled is not None:
        compiled = result.compiled.result
        if compiled.improvement < 0:
            lines.append(f"compiling lowered the dev metric from {compiled.before['metric']:.2f} to "
                         f"{compiled.after['metric']:.2f} ({compiled.improvement:+.2f} points): the compiled "
                         "program is worse than the one it started from.")
    if result.evaluation is not None:
        for context in ("reference", "generated"):
            base = result.evaluation.results.get(("base", context))
            compiled_scores = result.evaluation.results.get(("compiled", context))
            if base and compiled_scores:
                line = _compare(f"{context} context on the test turns", base, compiled_scores,
                                {"ACC": "accuracy", "R-L": "rouge_l", "BS*": "semantic"})
                if line:
                    lines.append(line)
    return lines
