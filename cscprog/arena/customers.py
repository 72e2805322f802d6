"""The arena's customers: RoleCS profiles x topics, each planned once into a goal and a scenario.

Every candidate must meet the same customers. The plan of who calls about what is
:func:`cscprog.rolecs.plan.synthesis_plan` (profiles x topics, shuffled by a seed, the first ``n`` kept, stable
ids); the planner role then turns each pair into the customer's goal and situation, once, and the arena keeps
that plan in ``customers.jsonl``. Conversations read the plan from there, so two candidates (or a resumed run)
never see two different plannings of one customer, whatever the sampling settings.

Example:
    ```python
    from cscprog.arena.customers import CustomerPlanner
    from cscprog.rolecs.plan import TOPICS, synthesis_plan
    from cscprog.samples import load_profiles

    planner = CustomerPlanner()
    for customer_id, profile, topic in synthesis_plan(load_profiles(), TOPICS, n=2, seed=1234):
        customer = planner(customer_id, profile, topic, language="en")
        print(customer.id, customer.goal)
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dspy

from cscprog.data import Profile
from cscprog.errors import DataError
from cscprog.lm.invoke import invoke
from cscprog.rolecs.checks import require_fields
from cscprog.rolecs.plan import TOPIC_DOMAINS
from cscprog.roles import Role
from cscprog.signatures import PlanScenario

__all__ = ["ArenaCustomer", "CustomerPlanner"]

PLANNER_ROLE = Role.PLANNER


@dataclass(frozen=True)
class ArenaCustomer:
    """One planned customer: who calls, about what, wanting what.

    Attributes:
        id: Stable id (from the profile and the topic).
        profile: The customer profile.
        topic: The call's topic.
        goal: What the customer wants from the call (the resolution judge reads it).
        scenario: The situation behind the call.
        language: ``en`` or ``zh``.
    """

    id: str
    profile: Profile
    topic: str
    goal: str
    scenario: str
    language: str

    @property
    def domain(self) -> str:
        """The CSConv business domain of the topic (``other`` for a topic outside the seven)."""
        return TOPIC_DOMAINS.get(self.topic, "other")

    def to_json(self) -> dict[str, Any]:
        """One record of ``customers.jsonl``."""
        return {"id": self.id, "topic": self.topic, "language": self.language, "goal": self.goal,
                "scenario": self.scenario, "profile": self.profile.model_dump(mode="json", exclude_none=True)}

    @classmethod
    def from_json(cls, record: dict[str, Any], where: str = "customers.jsonl") -> ArenaCustomer:
        """Read a record written by :meth:`to_json`.

        Raises:
            DataError: a field is missing or of the wrong type (the message names the file, record and field).
        """
        record_id = record.get("id", "?")
        for name in ("id", "topic", "language", "goal", "scenario"):
            if not isinstance(record.get(name), str) or not record[name].strip():
                raise DataError(where, f"record {record_id!r}: field {name!r} must be a non-empty string")
        try:
            profile = Profile.model_validate(record.get("profile"))
        except ValueError as error:
            raise DataError(where, f"record {record_id!r}: field 'profile': {error}") from None
        return cls(id=record["id"], profile=profile, topic=record["topic"], goal=record["goal"],
                   scenario=record["scenario"], language=record["language"])


class CustomerPlanner(dspy.Module):
    """The RoleCS planner: profile + topic -> the customer's goal and scenario (role ``planner``).

    Args:
        attempts: Attempts at a goal and a scenario that are both non-empty.

    Example:
        ```python
        customer = CustomerPlanner()("rp-1", profile, "complaints and disputes", language="en")
        ```
    """

    def __init__(self, *, attempts: int = 3) -> None:
        super().__init__()
        self.attempts = attempts
        self.planner = dspy.Predict(PlanScenario)

    def forward(self, customer_id: str, profile: Profile, topic: str, *, language: str) -> ArenaCustomer:
        """Plan one customer.

        Raises:
            ValueError: a profile with neither description nor facts.
            GenerationFailure: no usable plan after the retries.
        """
        profile_text = profile.as_prompt()
        if not profile_text:
            raise ValueError(f"profile {profile.id!r} has neither a description nor any structured fact")
        plan = invoke(self.planner, role=PLANNER_ROLE, attempts=self.attempts,
                      validate=require_fields("goal", "scenario"), profile=profile_text, topic=topic,
                      language=language)
        return ArenaCustomer(id=customer_id, profile=profile, topic=topic, goal=plan.goal.strip(),
                             scenario=plan.scenario.strip(), language=language)
