"""Customer profiles and role-play scenarios (the inputs of RoleCS-style synthesis).

Example:
    ```python
    from cscprog.data import Profile

    profile = Profile(id="p-01", age=34, occupation="nurse", personality="patient but busy")
    profile.facts()   # 'age: 34; occupation: nurse; personality: patient but busy'
    ```
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROFILE_FIELDS = ("name", "age", "gender", "occupation", "region", "personality", "communication_style",
                  "financial_literacy", "products", "concerns")


class Profile(BaseModel):
    """A customer profile: structured fields and/or a second-person description.

    Attributes:
        id: Stable identifier.
        language: ``en`` or ``zh``.
        description: Second-person text (``You are a ...``); empty until verbalised.
        extra: Fields beyond the known ones, kept as given.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    language: str | None = None
    name: str | None = None
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    region: str | None = None
    personality: str | None = None
    communication_style: str | None = None
    financial_literacy: str | None = None
    products: list[str] = Field(default_factory=list)
    concerns: list[str] = Field(default_factory=list)
    description: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)

    def facts(self) -> str:
        """The structured fields as ``key: value`` pairs joined by ``; `` (empty fields left out)."""
        parts = []
        for key in PROFILE_FIELDS:
            value = getattr(self, key)
            if value in (None, "", []):
                continue
            parts.append(f"{key.replace('_', ' ')}: {', '.join(value) if isinstance(value, list) else value}")
        parts.extend(f"{key}: {value}" for key, value in self.extra.items())
        return "; ".join(parts)

    def as_prompt(self) -> str:
        """The description when there is one, else the structured facts."""
        return self.description.strip() or self.facts()


class Scenario(BaseModel):
    """What a role-played conversation is about.

    Attributes:
        topic: One of the synthesis topics (``product consultation``...).
        goal: What the customer wants to achieve.
        text: The situation, in a few sentences.
    """

    model_config = ConfigDict(extra="forbid")

    topic: str
    goal: str = ""
    text: str = ""
