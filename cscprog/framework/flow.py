"""The conversation-flow rules of a taxonomy as checks that list every violation of a dialogue.

The CSC rules: the first supporter turn greets; identity verification follows soon after; the last
supporter turn closes; no strategy on more than two supporter turns in a row. Which rules apply, and their
strategies, come from the taxonomy's ``[flow]`` table.

Example:
    ```python
    from cscprog.framework import check_flow, load_taxonomy

    for violation in check_flow(["Greeting", "Information Delivery"], load_taxonomy("csc")):
        print(violation.rule, violation.message)
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cscprog.framework.taxonomy import Taxonomy

RULES = ("opening", "verification", "closing", "repeat")


@dataclass(frozen=True)
class Violation:
    """One broken flow rule.

    Attributes:
        rule: ``opening``, ``verification``, ``closing`` or ``repeat``.
        position: 0-based index among the supporter turns where it shows (None: the whole dialogue).
        message: A sentence saying what is wrong.
    """

    rule: str
    position: int | None
    message: str


def check_flow(strategies: Sequence[str | None], taxonomy: Taxonomy, *, complete: bool = True) -> list[Violation]:
    """Check the supporter strategies of one dialogue, in order, against the taxonomy's flow rules.

    Args:
        strategies: The strategy of each supporter turn (None for an unannotated turn).
        taxonomy: Whose ``flow`` rules to apply.
        complete: False for a dialogue still in progress (the closing rule is then not checked).

    Returns:
        Every violation found, in order of position; empty when the flow is fine.
    """
    flow = taxonomy.flow
    found: list[Violation] = []
    if not strategies:
        return found
    if flow.opening and strategies[0] != flow.opening:
        found.append(Violation("opening", 0, f"first supporter turn is {strategies[0]!r}, not {flow.opening!r}"))
    if flow.verification:
        window = list(strategies[: flow.verification_within + (1 if flow.opening else 0)])
        if flow.verification not in window and (complete or len(strategies) > len(window)):
            found.append(Violation(
                "verification", None,
                f"{flow.verification!r} not within the first {flow.verification_within} supporter turns"
                + (f" after {flow.opening!r}" if flow.opening else ""),
            ))
    if flow.max_repeat:
        run = 1
        for i in range(1, len(strategies)):
            same = strategies[i] is not None and strategies[i] == strategies[i - 1]
            run = run + 1 if same else 1
            if run == flow.max_repeat + 1:
                found.append(Violation(
                    "repeat", i, f"{strategies[i]!r} used on more than {flow.max_repeat} supporter turns in a row"
                ))
    if complete and flow.closing and strategies[-1] != flow.closing:
        found.append(Violation(
            "closing", len(strategies) - 1, f"last supporter turn is {strategies[-1]!r}, not {flow.closing!r}"
        ))
    return sorted(found, key=lambda v: (-1 if v.position is None else v.position, RULES.index(v.rule)))


def allowed_next(history: Sequence[str], taxonomy: Taxonomy) -> tuple[str, ...]:
    """The strategies the hard flow guard allows for the next supporter turn.

    The guard enforces the two rules that can be decided before the turn is written: the opening strategy
    when nothing has been said yet, and no strategy more than ``max_repeat`` times in a row.
    """
    flow = taxonomy.flow
    if not history and flow.opening:
        return (flow.opening,)
    names = taxonomy.names
    if flow.max_repeat and len(history) >= flow.max_repeat and len(set(history[-flow.max_repeat:])) == 1:
        names = tuple(n for n in names if n != history[-1])
    return names
