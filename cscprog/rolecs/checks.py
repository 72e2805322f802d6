"""Checks on what a RoleCS role returned, and the label a rejected reply still carries.

Example:
    ```python
    from cscprog.rolecs.checks import label_in_raw

    label_in_raw('{"strategy": "Greeting", "reply": 3}')   # 'Greeting'
    ```
"""

from __future__ import annotations

import json
import re
from typing import Any

import dspy

from cscprog.csconv.degenerate import DegenerateRules, check_degenerate
from cscprog.data import Dialogue, Turn

__all__ = ["CHAT_FIELD", "check_customer_turn", "TURN_COPY_TOKENS", "fresh_turn", "label_in_raw", "require_fields"]

CHAT_FIELD = r"\[\[ ## {name} ## \]\]\s*\n(.*?)(?=\n\s*\[\[ ## |\Z)"
"""A ChatAdapter section ``[[ ## name ## ]]`` and its text (format with ``name``)."""


def label_in_raw(raw: str | None, name: str = "strategy") -> str | None:
    """The value the LM gave ``name`` in a reply that did not parse (chat sections or a JSON object)."""
    if not raw:
        return None
    match = re.search(CHAT_FIELD.format(name=re.escape(name)), raw, re.DOTALL)
    if match:
        return match.group(1).strip() or None
    start, end = raw.find("{"), raw.rfind("}")
    if 0 <= start < end:
        try:
            data = json.loads(raw[start : end + 1])
        except ValueError:
            return None
        value = data.get(name) if isinstance(data, dict) else None
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def require_fields(*fields: str) -> Any:
    """A validator for :func:`cscprog.lm.invoke.invoke`: each of ``fields`` must be a non-empty string."""

    def check(prediction: dspy.Prediction) -> str | None:
        for name in fields:
            value = getattr(prediction, name, None)
            if not isinstance(value, str) or not value.strip():
                return f"empty {name}"
        return None

    return check


def check_customer_turn(prediction: dspy.Prediction) -> str | None:
    """Why a customer turn is unusable (empty utterance, ``finished`` not a real bool), or None."""
    empty = require_fields("utterance")(prediction)
    if empty:
        return empty
    finished = getattr(prediction, "finished", None)
    if not isinstance(finished, bool):
        return f"finished must be a bool, got {type(finished).__name__} {finished!r}"
    return None


TURN_COPY_TOKENS = 8
"""Consecutive tokens of the scenario, goal or profile that a new role-play turn may not copy."""
_TURN_RULES = DegenerateRules(min_copy_tokens=TURN_COPY_TOKENS)


def fresh_turn(
    turns: list[Turn], speaker: str, field: str, context: list[str], check: Any = None, strategy: str | None = None,
    language: str | None = None,
) -> Any:
    """A validator for one role-play turn: ``check`` first (when given), then the degenerate-text rules
    (:func:`cscprog.csconv.degenerate.check_degenerate`) on the new turn (carrying ``strategy``) against the
    dialogue so far, with ``context`` (scenario, goal, profile) as text no turn may copy (a run of
    :data:`TURN_COPY_TOKENS` tokens, stricter than the judge's check). A turn that would make the dialogue
    degenerate (repeat an earlier turn, copy the scenario, loop, say only its label, refuse, open with a speaker
    label) is asked for again with a new seed instead of spoiling the whole dialogue.

    Example:
        ```python
        validate = fresh_turn(state.turns, "supporter", "reply", [scenario.text, scenario.goal])
        invoke(supporter, role=Role.SUPPORTER, validate=validate, ...)
        ```
    """

    def validate(prediction: dspy.Prediction) -> str | None:
        found = check(prediction) if check is not None else require_fields(field)(prediction)
        if found:
            return found
        candidate = Turn(speaker=speaker, text=str(getattr(prediction, field)).strip(), strategy=strategy)
        dialogue = Dialogue(id="candidate", turns=[*turns, candidate], language=language)
        decision = check_degenerate(dialogue, context=context, rules=_TURN_RULES, turn=len(turns))
        return None if decision.kept else f"{decision.rule}: {decision.reason}"

    return validate
