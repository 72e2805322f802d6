"""The LLM roles of cscprog, named once.

Every LM call is made in a role: the role picks the backend (``[roles.NAME]`` in the config), the rate limiter
and the budget share, and it is recorded with the call (cache entries, the usage ledger, run manifests). Code
names a role through :class:`Role`, never as a string literal; a :class:`Role` is a ``str``, so it compares
equal to the name written in a config file or a manifest. This module imports nothing of cscprog.

Example:
    ```python
    from cscprog.roles import ROLES, Role

    Role.JUDGE == "judge"          # True
    "customer_assistant" in ROLES  # True
    ```
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ROLES", "Role"]


class Role(StrEnum):
    """One LLM role; its value is the name used in config files, cache entries and manifests."""

    PLANNER = "planner"
    """RoleCS: plans a conversation's goal and scenario from a profile and a topic."""
    SUPPORTER_ASSISTANT = "supporter_assistant"
    """RoleCS: picks the supporter's next strategy."""
    SUPPORTER = "supporter"
    """RoleCS: writes the supporter's turn."""
    CUSTOMER_ASSISTANT = "customer_assistant"
    """RoleCS and the arena: steers the simulated customer."""
    CUSTOMER = "customer"
    """RoleCS and the arena: writes the simulated customer's turn (and the arena's satisfaction survey)."""
    REWRITER = "rewriter"
    """CSConv: screens and rewrites a raw dialogue."""
    JUDGE = "judge"
    """CSConv's rewrite judge and RoleCS's quality judge."""
    CLASSIFIER = "classifier"
    """Labels supporter turns with strategies."""
    RESPONDER = "responder"
    """The response generator (the program ``compile`` optimizes)."""
    PROFILER = "profiler"
    """RoleCS: writes customer profiles from facts."""
    REFLECTION = "reflection"
    """The optimizer's prompt LM: proposes instructions while a program is compiled."""
    ARENA_AGENT = "arena_agent"
    """The arena: a chat model in front of simulated customers."""
    ARENA_JUDGE = "arena_judge"
    """The arena: judges whether a conversation resolved the customer's goal."""
    PAIR_JUDGE = "pair_judge"
    """Pairwise comparison of two agents' conversations."""


ROLES: tuple[str, ...] = tuple(role.value for role in Role)
"""Every role name, in :class:`Role` order (plain strings)."""
