"""The step-by-step rewrite: one short LM call per turn, in the shape the framework requires.

Small models lose their place in one long structured answer (measured with the embedded 0.5B model: lines
shifted between speakers, labels walked down the strategy list, draft notes copied into the text). Here the
program walks the call's :class:`cscprog.signatures.exchanges.Draft` and builds the dialogue itself, so its
shape is never the model's to break:

1. the opening: the call's first supporter line rewritten as the opening strategy, or a new greeting;
2. the customer's request, as the customer said it;
3. a new identity check (the verification strategy) and the customer's reply with placeholders;
4. each further supporter line of the call: the model chooses its strategy (constrained to the taxonomy's
   middle strategies) and rewrites it (:class:`cscprog.signatures.exchanges.RewriteSupporterTurn`); the
   customer's reply follows as said;
5. the closing: the call's last supporter line rewritten as the closing strategy, or a new one.

Every call has the role ``rewriter`` and a small completion budget (:data:`STEP_TOKENS`).

Example:
    ```python
    from cscprog.csconv.stepwise import StepwiseRewrite

    turns = StepwiseRewrite(load_taxonomy("csc"))(merged=raw.merged(), language="en").turns
    ```
"""

from __future__ import annotations

from typing import Any, Literal

import dspy

from cscprog.data import CUSTOMER, SUPPORTER, Dialogue, Turn, render_transcript
from cscprog.framework import Taxonomy
from cscprog.lm.invoke import invoke
from cscprog.roles import Role
from cscprog.signatures.adapt import for_taxonomy
from cscprog.signatures.exchanges import RewriteSupporterTurn, WriteTurn, draft_of

__all__ = ["STEP_TOKENS", "StepwiseRewrite"]

STEP_TOKENS = 192
"""Completion budget of one step (a turn of one or two sentences, plus its JSON)."""

_TASKS = {  # no parentheses: a small model copies them into the turn, and the note rules then remove it
    "opening": "Open the call: greet the customer warmly and offer help.",
    "request": "Say why you are calling.",
    "verification": "Ask the customer for identifying details, such as name and card or phone number, to verify them.",
    "verification_reply": "Give the identifying details asked for, as placeholders such as [Name].",
    "closing": "Close the call: thank the customer and say goodbye.",
}


def _has_text(prediction: dspy.Prediction) -> str | None:
    text = getattr(prediction, "text", None)
    return None if isinstance(text, str) and text.strip() else "empty text"


class StepwiseRewrite(dspy.Module):
    """Rewrite a merged raw call turn by turn (see the module docstring).

    Args:
        taxonomy: A taxonomy with opening and closing strategies (CSC).
        attempts: Attempts per step at a usable output.

    Attributes:
        supporter_turn: Chooses the strategy of, and rewrites, one supporter line.
        write_turn: Writes the turns the structure fixes (greeting, identity check and reply, closing).
    """

    def __init__(self, taxonomy: Taxonomy, *, attempts: int = 3) -> None:
        super().__init__()
        flow = taxonomy.flow
        self.taxonomy = taxonomy
        self.attempts = attempts
        fixed = {flow.opening, flow.closing}
        middle = tuple(name for name in taxonomy.names if name not in fixed)
        signature = for_taxonomy(RewriteSupporterTurn, taxonomy, fields=())
        self.supporter_turn = dspy.Predict(
            signature.with_updated_fields("strategy", type_=Literal[middle])  # type: ignore[valid-type]
        )
        self.write_turn = dspy.Predict(WriteTurn)

    def _write(self, turns: list[Turn], language: str, speaker: str, slot: str, raw: str | None) -> str:
        prediction = invoke(
            self.write_turn, role=Role.REWRITER, attempts=self.attempts, validate=_has_text, max_tokens=STEP_TOKENS,
            conversation=render_transcript(turns, strategies=False, language=language) or "(nothing yet)",
            speaker=speaker, task=_TASKS[slot], raw_line=raw or "(none)", language=language,
        )
        return prediction.text.strip()

    def forward(self, merged: Dialogue, language: str) -> dspy.Prediction:
        """Rewrite ``merged`` (an alternating raw call) into labelled turns.

        Returns:
            ``Prediction(turns=[Turn, ...])`` alternating from the supporter, every supporter turn labelled.

        Raises:
            GenerationFailure: a step gave no usable output after its retries.
        """
        flow = self.taxonomy.flow
        verification = flow.verification if flow.verification in self.taxonomy.names else self.taxonomy.fallback
        draft = draft_of(merged)
        turns: list[Turn] = []

        def say(speaker: str, text: str, strategy: str | None = None, **metadata: Any) -> None:
            turns.append(Turn(speaker=speaker, text=text, strategy=strategy, metadata=metadata))

        say(SUPPORTER, self._write(turns, language, SUPPORTER, "opening", draft.opening), flow.opening)
        say(CUSTOMER, draft.request or self._write(turns, language, CUSTOMER, "request", None))
        say(SUPPORTER, self._write(turns, language, SUPPORTER, "verification", None), verification)
        say(CUSTOMER, self._write(turns, language, CUSTOMER, "verification_reply", None))
        for supporter, customer in draft.exchanges:
            step = invoke(
                self.supporter_turn, role=Role.REWRITER, attempts=self.attempts, validate=_has_text,
                max_tokens=STEP_TOKENS, language=language, raw_line=supporter,
                conversation=render_transcript(turns, strategies=True, language=language),
            )
            say(SUPPORTER, step.text.strip(), step.strategy)
            say(CUSTOMER, customer)
        say(SUPPORTER, self._write(turns, language, SUPPORTER, "closing", draft.closing), flow.closing)
        return dspy.Prediction(turns=turns)
