"""The turn-anchored rewrite: every turn of a real call kept in order, each supporter line rewritten from itself.

Small models cannot write a whole support dialogue (measured with the embedded 0.5B model: one JSON answer or
one turn written from scratch at a time both ended in a supporter repeating one short line), but they can
restate a line they are given. Here the real call is the skeleton:

1. the opening: the call's first supporter line rewritten as the opening strategy (Greeting), or, when the
   customer spoke first, a greeting written before the customer's first line (recorded as ``inserted``);
2. the customer's first line, as said;
3. the identity check (the verification strategy): the call's own (its first supporter line in the first half
   asking for a name, card or account number..., :data:`IDENTITY_REQUEST`), rewritten in place; else a new one
   and the customer's answer with placeholders (``inserted``), because the method requires one;
4. every further line of the call in order: customer lines as said (``kept``); supporter lines rewritten from
   their own text (:class:`cscprog.signatures.anchored.RewriteSupporterLine`; measured on the 0.5B model, the
   customer's line in the prompt made it answer with the customer's words), the model choosing the strategy
   among the taxonomy's middle strategies under the output grammar;
5. the closing: the call's last supporter line rewritten as the closing strategy, or a goodbye written after a
   customer's last line (``inserted``).

Every rewritten line must stay close to its source (:func:`cscprog.csconv.faithful.check_rewritten_line`: its
numbers kept, none invented, its content words kept, no echo of the customer, no repeat of an earlier turn);
a line that fails is asked for again with a new seed, and a line still failing after the attempts drops the
dialogue (:class:`UnfaithfulTurn`, rule ``unfaithful_turn``). A rewrite that only restates its source word for
word is refused once (the first, greedy attempt) and, when kept, recorded as ``unchanged``. Each turn's metadata says
what it is: ``origin`` (``rewritten``, ``unchanged``, ``kept``, ``inserted``), ``source_turn`` (its index in the
merged call) and, for supporter lines, the ``original`` text.

Example:
    ```python
    from cscprog.csconv.anchored import AnchoredRewrite

    turns = AnchoredRewrite(load_taxonomy("csc"))(merged=raw.merged(), language="en").turns
    [(t.speaker, t.strategy, t.metadata["origin"]) for t in turns]
    ```
"""

from __future__ import annotations

import re
from typing import Any, Literal

import dspy

from cscprog.csconv.degenerate import ROLE_SWAP_PHRASES, normalize, tokens
from cscprog.csconv.faithful import check_rewritten_line, is_unchanged
from cscprog.data import CUSTOMER, SUPPORTER, Dialogue, Turn
from cscprog.framework import Taxonomy
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.roles import Role
from cscprog.signatures.adapt import for_taxonomy
from cscprog.signatures.anchored import (
    FIXED_DEMOS,
    LINE_DEMOS,
    MISSING_DEMOS,
    SITUATIONS,
    TASKS,
    RewriteSupporterLine,
    WriteMissingTurn,
)

__all__ = [
    "IDENTITY_PLACEHOLDER", "IDENTITY_REQUEST", "LINE_TOKENS", "ORIGINS", "AnchoredRewrite", "UnfaithfulTurn",
    "origin_counts",
]

LINE_TOKENS = 160
"""Completion budget of one line (one or two sentences plus the JSON around them)."""
ORIGINS = ("rewritten", "unchanged", "kept", "inserted")
"""What a turn of an anchored rewrite is, relative to the real call (``metadata["origin"]``)."""
_MAX_MISSING_CHARS = 240
IDENTITY_REQUEST = re.compile(
    r"\b(your|the) (full )?name\b|\bcard number|\baccount number|date of birth|\bverify|security question|"
    r"last (four|4) digits|姓名|身份|卡号|验证|手机号",
    re.IGNORECASE,
)
"""A supporter line asking for identifying details: the call's own identity check, which the rewrite keeps in
place (labelled with the verification strategy) instead of inserting a new one."""
IDENTITY_PLACEHOLDER = re.compile(r"\[(name|card number|phone number|account number|姓名|卡号|手机号码|账号)\]",
                                  re.IGNORECASE)
"""A placeholder standing for identifying details, as the customer's answer to an identity check gives them."""
_COPY_TOKENS = 5


def _copies(text: str, instructions: str) -> bool:
    """True when ``text`` repeats a run of :data:`_COPY_TOKENS` words of ``instructions``."""
    words, task = tokens(text), tokens(instructions)
    runs = {tuple(task[i : i + _COPY_TOKENS]) for i in range(len(task) - _COPY_TOKENS + 1)}
    return any(tuple(words[i : i + _COPY_TOKENS]) in runs for i in range(len(words) - _COPY_TOKENS + 1))




class UnfaithfulTurn(GenerationFailure):
    """A line of the call whose rewrite failed its closeness check on every attempt.

    Attributes:
        rule: ``unfaithful_turn`` (the rule of the drop the rewriter records).
        turn: The line's index in the merged call.
    """

    rule = "unfaithful_turn"

    def __init__(self, error: GenerationFailure, turn: int) -> None:
        self.turn = turn
        super().__init__(error.role, f"line {turn} of the call: {error.reason}", error.raw_text, error.attempts)


class AnchoredRewrite(dspy.Module):
    """Rewrite a merged raw call line by line, keeping every turn in order (see the module docstring).

    Args:
        taxonomy: A taxonomy with opening and closing strategies (CSC).
        attempts: Attempts per line at a usable rewrite.

    Attributes:
        rewrite_line: Rewrites one supporter line and chooses its strategy (role ``rewriter``).
        rewrite_fixed: Rewrites the opening or closing line, whose strategy the flow rules fix.
        write_missing: Writes a turn the call lacks (greeting, identity check and answer, goodbye).
    """

    def __init__(self, taxonomy: Taxonomy, *, attempts: int = 3) -> None:
        super().__init__()
        flow = taxonomy.flow
        self.taxonomy = taxonomy
        self.attempts = attempts
        fixed = {flow.opening, flow.closing, flow.verification}
        middle = tuple(name for name in taxonomy.names if name not in fixed)
        signature = for_taxonomy(RewriteSupporterLine, taxonomy, fields=())
        self.rewrite_line = dspy.Predict(signature.with_updated_fields("strategy", type_=Literal[middle]))  # type: ignore[valid-type]
        self.rewrite_line.demos = [demo for demo in LINE_DEMOS if demo.strategy in middle]
        self.rewrite_fixed = dspy.Predict(RewriteSupporterLine.delete("strategy"))
        self.rewrite_fixed.demos = list(FIXED_DEMOS)
        self.write_missing = dspy.Predict(WriteMissingTurn)
        self.write_missing.demos = list(MISSING_DEMOS)

    def _line(self, turns: list[Turn], index: int, original: str, slot: str, language: str, before: str) -> Turn:
        """Rewrite the supporter line ``original`` (line ``index`` of the call) for ``slot``; ``before`` is the
        customer's line of the call it answered (used by the closeness check only)."""
        earlier = [turn.text for turn in turns]
        tries = {"n": 0}

        def validate(prediction: dspy.Prediction) -> str | None:
            tries["n"] += 1
            text = str(getattr(prediction, "text", "") or "").strip()
            reason = check_rewritten_line(original, text, before=before, earlier=earlier,
                                          keep_content=slot in ("keep", "identity"))
            if reason is None and _copies(text, TASKS[slot]):
                return "copies its instructions"
            if reason is None and slot in ("keep", "identity") and any(
                    _copies(text, demo.text) and not _copies(original, demo.text) for demo in LINE_DEMOS):
                return "copies a worked example instead of the original"
            if reason is None and tries["n"] == 1 and self.attempts > 1 and is_unchanged(original, text):
                return "says the original word for word; rewrite it"
            return reason

        predictor = self.rewrite_line if slot == "keep" else self.rewrite_fixed
        try:
            prediction = invoke(predictor, role=Role.REWRITER, attempts=self.attempts, validate=validate,
                                max_tokens=LINE_TOKENS, original=original, task=TASKS[slot], language=language)
        except GenerationFailure as error:
            raise UnfaithfulTurn(error, index) from error
        text = prediction.text.strip()
        flow = self.taxonomy.flow
        fixed = {"opening": flow.opening, "closing": flow.closing, "identity": self._verification()}
        strategy = prediction.strategy if slot == "keep" else fixed[slot]
        origin = "unchanged" if is_unchanged(original, text) else "rewritten"
        return Turn(speaker=SUPPORTER, text=text, strategy=strategy,
                    metadata={"origin": origin, "source_turn": index, "original": original})

    def _missing(self, turns: list[Turn], speaker: str, slot: str, language: str, strategy: str | None) -> Turn:
        """Write a turn the call lacks."""
        before = turns[-1].text if turns else ""
        earlier = {normalize(turn.text) for turn in turns}

        def validate(prediction: dspy.Prediction) -> str | None:
            text = str(getattr(prediction, "text", "") or "").strip()
            if not normalize(text):
                return "empty: the turn has no words"
            if len(text) > _MAX_MISSING_CHARS:
                return f"too long: {len(text)} characters"
            if normalize(text) in earlier or (before and normalize(before) in normalize(text)):
                return "repeats an earlier turn"
            lowered = text.casefold()
            if speaker == CUSTOMER and any(phrase in lowered for phrase in ROLE_SWAP_PHRASES):
                return "the customer speaks as the supporter"
            if _copies(text, TASKS[slot]):
                return "copies its instructions"
            if speaker == CUSTOMER and any(_copies(text, d.text) for d in MISSING_DEMOS if d.speaker == SUPPORTER):
                return "the customer says an agent's line of the examples"
            if slot == "verification" and not IDENTITY_REQUEST.search(text):
                return "asks for no identifying detail (name, card or account number...)"
            if slot == "verification_reply" and not IDENTITY_PLACEHOLDER.search(text):
                return "gives no placeholder for a name, card, phone or account number"
            return None

        try:
            prediction = invoke(self.write_missing, role=Role.REWRITER, attempts=self.attempts, validate=validate,
                                max_tokens=LINE_TOKENS, said_before=SITUATIONS[slot], speaker=speaker,
                                task=TASKS[slot], language=language)
        except GenerationFailure as error:
            raise UnfaithfulTurn(error, -1) from error
        return Turn(speaker=speaker, text=prediction.text.strip(), strategy=strategy,
                    metadata={"origin": "inserted", "source_turn": None})

    def _verification(self) -> str:
        flow = self.taxonomy.flow
        return flow.verification if flow.verification in self.taxonomy.names else self.taxonomy.fallback

    def forward(self, merged: Dialogue, language: str) -> dspy.Prediction:
        """Rewrite ``merged`` (an alternating raw call) into labelled turns.

        Returns:
            ``Prediction(turns=[Turn, ...])``: alternating from the supporter, every supporter turn labelled,
            every turn's ``metadata["origin"]`` set.

        Raises:
            UnfaithfulTurn: a line had no usable rewrite after its attempts.
        """
        flow = self.taxonomy.flow
        verification = self._verification()
        lines = [(index, turn) for index, turn in enumerate(merged.turns) if turn.text.strip()]
        turns: list[Turn] = []
        said = {"last": ""}  # the customer's last line of the call: what the next supporter line answered

        def keep(index: int, turn: Turn) -> None:
            said["last"] = turn.text.strip()
            turns.append(Turn(speaker=CUSTOMER, text=said["last"], metadata={"origin": "kept", "source_turn": index}))

        if lines and lines[0][1].speaker == SUPPORTER:
            index, turn = lines.pop(0)
            turns.append(self._line(turns, index, turn.text.strip(), "opening", language, ""))
        else:
            turns.append(self._missing(turns, SUPPORTER, "greeting", language, flow.opening))
        if lines:
            keep(*lines.pop(0))
        own_check = next((position for position, (_, turn) in enumerate(lines[: max(1, len(lines) // 2)])
                          if turn.speaker == SUPPORTER and IDENTITY_REQUEST.search(turn.text)), None)
        if own_check is None:
            turns.append(self._missing(turns, SUPPORTER, "verification", language, verification))
            turns.append(self._missing(turns, CUSTOMER, "verification_reply", language, None))
        for position, (index, turn) in enumerate(lines):
            if turn.speaker == CUSTOMER:
                keep(index, turn)
                continue
            slot = "closing" if position == len(lines) - 1 else "identity" if position == own_check else "keep"
            turns.append(self._line(turns, index, turn.text.strip(), slot, language, said["last"]))
        if turns[-1].speaker == CUSTOMER:
            turns.append(self._missing(turns, SUPPORTER, "goodbye", language, flow.closing))
        return dspy.Prediction(turns=turns)


def origin_counts(turns: list[Turn]) -> dict[str, Any]:
    """How many turns of each origin (:data:`ORIGINS`) a rewrite has, by speaker.

    Example:
        ```python
        origin_counts(result.dialogue.turns)   # {'supporter': {'rewritten': 6, 'inserted': 2, ...}, ...}
        ```
    """
    counts: dict[str, dict[str, int]] = {SUPPORTER: {}, CUSTOMER: {}}
    for turn in turns:
        origin = (turn.metadata or {}).get("origin", "unknown")
        side = counts.setdefault(turn.speaker, {})
        side[origin] = side.get(origin, 0) + 1
    return counts
