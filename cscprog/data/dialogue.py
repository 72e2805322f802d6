"""Turns and dialogues: the data every cscprog program reads and writes.

Strategies are stored by their canonical English name (``"Greeting"``); loaders turn every label form
into that name through the taxonomy, and writers render the released form (``策略1 礼貌问候``) on request.

Example:
    ```python
    from cscprog.data import Dialogue, Turn

    dialogue = Dialogue(id="d1", turns=[
        Turn(speaker="supporter", strategy="Greeting", text="Hello, how can I help you today?"),
        Turn(speaker="customer", text="My card was declined."),
    ])
    dialogue.supporter_indices()   # [0]
    ```
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from cscprog.data.profile import Profile, Scenario

Speaker = Literal["supporter", "customer"]
SUPPORTER: Speaker = "supporter"
CUSTOMER: Speaker = "customer"

Language = Literal["en", "zh"]
"""A dialogue language cscprog writes prompts for."""
LANGUAGES: tuple[Language, ...] = get_args(Language)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def detect_language(text: str) -> Language:
    """``"zh"`` when at least a fifth of the letters are CJK ideographs, else ``"en"``."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "en"
    cjk = sum(1 for ch in letters if _CJK.match(ch))
    return "zh" if cjk * 5 >= len(letters) else "en"


class Turn(BaseModel):
    """One utterance.

    Attributes:
        speaker: ``supporter`` or ``customer``.
        text: What was said.
        strategy: Canonical strategy name on supporter turns (None when unannotated or a customer turn).
        extra_strategies: Further strategies when the source labelled the turn with several (multi-label).
        metadata: Anything else (e.g. the customer assistant's direction for a role-played turn).
    """

    model_config = ConfigDict(extra="forbid")

    speaker: Speaker
    text: str
    strategy: str | None = None
    extra_strategies: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_supporter(self) -> bool:
        """True for a supporter turn."""
        return self.speaker == SUPPORTER

    @property
    def is_multi_label(self) -> bool:
        """True when the source gave this turn more than one strategy."""
        return bool(self.extra_strategies)

    @property
    def strategies(self) -> list[str]:
        """All strategies of the turn (empty when unannotated)."""
        return ([self.strategy] if self.strategy else []) + list(self.extra_strategies)

    def to_json(self) -> dict[str, Any]:
        """Compact plain data: empty optional fields are left out, ``strategy`` is always present."""
        data: dict[str, Any] = {"speaker": self.speaker, "strategy": self.strategy, "text": self.text}
        if self.extra_strategies:
            data["extra_strategies"] = list(self.extra_strategies)
        if self.metadata:
            data["metadata"] = self.metadata
        return data


class Dialogue(BaseModel):
    """A support conversation.

    Attributes:
        id: Stable identifier (kept across reads and writes).
        turns: The utterances in order.
        domain: Business domain (``account_transactions``...) or the source's label.
        language: ``en`` or ``zh`` (detected from the text when not given).
        profile: The customer profile of a role-played dialogue.
        scenario: The scenario and goal of a role-played dialogue.
        metadata: Anything else (source index, finish reason, judge scores...).
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    turns: list[Turn]
    domain: str | None = None
    language: str | None = None
    profile: Profile | None = None
    scenario: Scenario | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, context: Any) -> None:  # noqa: D102
        if self.language is None and self.turns:
            self.language = detect_language(" ".join(t.text for t in self.turns[:6]))

    # -- views ----------------------------------------------------------------------------------------------------

    def supporter_indices(self) -> list[int]:
        """Indices of the supporter turns."""
        return [i for i, turn in enumerate(self.turns) if turn.speaker == SUPPORTER]

    def supporter_strategies(self) -> list[str | None]:
        """Strategy of every supporter turn, in order."""
        return [turn.strategy for turn in self.turns if turn.speaker == SUPPORTER]

    @property
    def is_annotated(self) -> bool:
        """True when every supporter turn carries a strategy."""
        strategies = self.supporter_strategies()
        return bool(strategies) and all(s is not None for s in strategies)

    def is_alternating(self) -> bool:
        """True when no speaker talks twice in a row."""
        return all(a.speaker != b.speaker for a, b in zip(self.turns, self.turns[1:], strict=False))

    def merged(self) -> Dialogue:
        """A copy with consecutive turns of the same speaker merged into one (texts joined by a space)."""
        turns: list[Turn] = []
        for turn in self.turns:
            if turns and turns[-1].speaker == turn.speaker:
                last = turns[-1]
                joiner = "" if self.language == "zh" else " "
                strategies = last.strategies + [s for s in turn.strategies if s not in last.strategies]
                turns[-1] = last.model_copy(update={
                    "text": f"{last.text}{joiner}{turn.text}".strip(),
                    "strategy": strategies[0] if strategies else None,
                    "extra_strategies": strategies[1:],
                })
            else:
                turns.append(turn.model_copy())
        return self.model_copy(update={"turns": turns})

    def transcript(self, upto: int | None = None, *, strategies: bool = True, language: str | None = None) -> str:
        """The turns before ``upto`` as text, one line each: ``Supporter [Greeting]: Hello...``."""
        lang = language or self.language or "en"
        return render_transcript(self.turns[:upto], strategies=strategies, language=lang)

    def to_json(self) -> dict[str, Any]:
        """cscprog's own JSONL record (key order fixed, empty optional fields left out)."""
        data: dict[str, Any] = {"id": self.id, "domain": self.domain, "language": self.language,
                                "turns": [t.to_json() for t in self.turns]}
        if self.profile is not None:
            data["profile"] = self.profile.model_dump(mode="json", exclude_none=True)
        if self.scenario is not None:
            data["scenario"] = self.scenario.model_dump(mode="json", exclude_none=True)
        data["metadata"] = self.metadata
        return data

    def content_hash(self) -> str:
        """A short hash of the speakers and texts, used for stable ids of records that have none."""
        digest = hashlib.sha256()
        for turn in self.turns:
            digest.update(turn.speaker.encode())
            digest.update(b"\x1f")
            digest.update(turn.text.encode("utf-8"))
            digest.update(b"\x1e")
        return digest.hexdigest()[:12]


SPEAKER_NAMES = {
    "en": {SUPPORTER: "Supporter", CUSTOMER: "Customer"},
    "zh": {SUPPORTER: "客服", CUSTOMER: "客户"},
}


def render_transcript(turns: list[Turn], *, strategies: bool = True, language: str = "en") -> str:
    """Render turns as a transcript for prompts; ``(the conversation has not started)`` when empty."""
    if not turns:
        return "（对话尚未开始）" if language == "zh" else "(the conversation has not started)"
    names = SPEAKER_NAMES.get(language, SPEAKER_NAMES["en"])
    lines = []
    for turn in turns:
        tag = f" [{'+'.join(turn.strategies)}]" if strategies and turn.strategies else ""
        lines.append(f"{names[turn.speaker]}{tag}: {turn.text}")
    return "\n".join(lines)
