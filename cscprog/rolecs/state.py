"""One RoleCS dialogue in progress: its turns so far, and what a failure report needs.

Example:
    ```python
    state = DialogueState("rp-1", profile, "complaints and disputes", "en")
    dialogue = state.dialogue({"finish_reason": "closing"})
    ```
"""

from __future__ import annotations

from typing import Any

from cscprog.data import SUPPORTER, Dialogue, Profile, Scenario, Turn, render_transcript
from cscprog.rolecs.plan import TOPIC_DOMAINS

__all__ = ["DialogueState"]


class DialogueState:
    """One dialogue in progress: the planned scenario, the turns so far, and counters of repaired labels."""

    def __init__(self, dialogue_id: str, profile: Profile, topic: str, language: str) -> None:
        self.dialogue_id = dialogue_id
        self.profile = profile
        self.topic = topic
        self.language = language
        self.scenario: Scenario | None = None
        self.turns: list[Turn] = []
        self.unknown = 0
        self.corrections = 0

    def dialogue(self, metadata: dict[str, Any]) -> Dialogue:
        return Dialogue(
            id=self.dialogue_id,
            turns=list(self.turns),
            domain=TOPIC_DOMAINS.get(self.topic, "other"),
            language=self.language,
            profile=self.profile,
            scenario=self.scenario,
            metadata=metadata,
        )

    def transcript(self, *, strategies: bool) -> str:
        return render_transcript(self.turns, strategies=strategies, language=self.language)

    def supporter_strategies(self) -> list[str]:
        return [turn.strategy or "" for turn in self.turns if turn.speaker == SUPPORTER]
