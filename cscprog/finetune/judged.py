"""Judged dialogues as training data: keep the ones the quality judge passed, count the others.

RoleCS output carries the quality judge's verdict in ``metadata["judge"]`` (``cscprog judge``, ``cscprog
synthesize --filter``; :mod:`cscprog.rolecs.judge`). Such a dialogue is training data only when the verdict says
``passed: true``; a rejected one (failed criteria, a degenerate-text rule, or a judge that could not assess it) is
left out and named, never trained on and never dropped silently. Dialogues without a verdict (CSConv samples,
rewritten calls) are kept as they are, so one training set can mix both.

Example:
    ```python
    from cscprog.finetune.judged import judged_selection

    selection = judged_selection(csconv + rolecs)
    selection.kept, selection.rejected      # dialogues to train on, ids the judge rejected
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cscprog.data import Dialogue
from cscprog.rolecs.judge import METADATA_KEY

__all__ = ["JudgedSelection", "judged_selection", "judge_rejected"]


def judge_rejected(dialogue: Dialogue) -> bool:
    """True when ``dialogue`` carries a quality verdict that is not a pass.

    Example:
        ```python
        judge_rejected(Dialogue(id="d", turns=[], metadata={"judge": {"passed": False}}))   # True
        ```
    """
    verdict = dialogue.metadata.get(METADATA_KEY)
    if verdict is None:
        return False
    return not (isinstance(verdict, dict) and verdict.get("passed") is True)


@dataclass
class JudgedSelection:
    """The dialogues to train on and what the judge's verdicts left out.

    Attributes:
        kept: Dialogues without a verdict, and dialogues the judge passed, in input order.
        rejected: Ids of the dialogues whose verdict is not a pass.
        judged_kept: How many of ``kept`` carry a passing verdict (synthesized and judged).
    """

    kept: list[Dialogue]
    rejected: list[str] = field(default_factory=list)
    judged_kept: int = 0


def judged_selection(dialogues: Sequence[Dialogue]) -> JudgedSelection:
    """Split ``dialogues`` by the quality judge's verdict (see the module docstring).

    Example:
        ```python
        judged_selection(load_sample("annotated_en")).rejected   # []
        ```
    """
    selection = JudgedSelection(kept=[])
    for dialogue in dialogues:
        if judge_rejected(dialogue):
            selection.rejected.append(dialogue.id)
            continue
        selection.kept.append(dialogue)
        selection.judged_kept += METADATA_KEY in dialogue.metadata
    return selection
