"""cscprog.testing.engines: the declared output types read from real DSPy prompts, parentheses included."""

from __future__ import annotations

from typing import Literal

import dspy
import pytest

from cscprog.testing.engines import default_answer, parse_prompt, scripted_lm


class RateReply(dspy.Signature):
    """Rate a support reply."""

    reply: str = dspy.InputField(desc="the supporter's reply (one turn)")
    score: int = dspy.OutputField(desc="how helpful it is (0-10), higher (better) is more")
    verdict: Literal["fine (as is)", "rewrite"] = dspy.OutputField(desc="what to do (pick one)")
    note: str = dspy.OutputField(desc="a short note (optional)")
    tags: list[str] = dspy.OutputField()


EXPECTED_TYPES = {"score": "int", "verdict": "Literal['fine (as is)', 'rewrite']", "note": "str", "tags": "list[str]"}


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_declared_types_stop_before_parentheses_in_descriptions(adapter: dspy.Adapter) -> None:
    messages = adapter.format(RateReply, [], {"reply": "Your card is blocked (for now)."})
    system = next(m["content"] for m in messages if m["role"] == "system")
    others = [(m["role"], m["content"]) for m in messages if m["role"] != "system"]
    assert "how helpful it is (0-10), higher (better) is more" in system  # the descriptions really have parentheses

    request = parse_prompt("scripted/model", system, others)

    assert request.outputs == ("score", "verdict", "note", "tags")
    assert request.output_types == EXPECTED_TYPES
    assert default_answer("score", request).isdigit()
    assert default_answer("verdict", request) == "fine (as is)"


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_default_answers_parse_as_the_declared_types(adapter: dspy.Adapter) -> None:
    lm = scripted_lm(default_answer)
    with dspy.context(lm=lm, adapter=adapter):
        prediction = dspy.Predict(RateReply)(reply="Your card is blocked (for now).")
    assert isinstance(prediction.score, int) and 0 <= prediction.score <= 9
    assert prediction.verdict == "fine (as is)"
    assert prediction.tags == []
    assert prediction.note.startswith("note-")
    assert lm.engine.calls == 1
    assert lm.engine.requests[0].output_types == EXPECTED_TYPES


def test_field_line_without_description_or_with_colons() -> None:
    system = (
        "Your output fields are:\n"
        "1. `count` (int): \n"
        "2. `label` (str): a label (e.g. 'x'): never empty\n"
        "3. `flag` (bool)\n"
        "All interactions will be structured in the following way, with the appropriate values filled in."
    )
    last = "[[ ## q ## ]]\nhi\n\nRespond with `[[ ## count ## ]]`, then `[[ ## label ## ]]`, then `[[ ## flag ## ]]`."
    request = parse_prompt("m", system, [("user", last)])
    assert request.output_types == {"count": "int", "label": "str", "flag": "bool"}
