"""What RoleCS synthesizes: the method's seven topics, every profile crossed with every topic, stable ids.

Example:
    ```python
    from cscprog.rolecs.plan import TOPICS, synthesis_plan
    from cscprog.samples import load_profiles

    for dialogue_id, profile, topic in synthesis_plan(load_profiles(), TOPICS, n=3, seed=1234):
        print(dialogue_id, profile.id, topic)
    ```
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence

from cscprog.data import Profile

__all__ = ["TOPICS", "TOPIC_DOMAINS", "dialogue_id_for", "synthesis_plan"]

TOPICS: tuple[str, ...] = (
    "product consultation",
    "marketing and promotions",
    "account and transaction management",
    "financial consultation and planning",
    "risk management and security",
    "complaints and disputes",
    "technical support and online services",
)
"""The seven synthesis topics of the method."""

TOPIC_DOMAINS: dict[str, str] = {
    "product consultation": "product_consultation",
    "marketing and promotions": "marketing_campaigns",
    "account and transaction management": "account_transactions",
    "financial consultation and planning": "financial_planning",
    "risk management and security": "risk_security",
    "complaints and disputes": "complaints",
    "technical support and online services": "technical_faults",
}
"""The CSConv business domain a topic's dialogues are filed under (other topics: ``other``)."""


def dialogue_id_for(profile: Profile, topic: str) -> str:
    """The stable id of the dialogue of ``profile`` on ``topic``: ``rp-`` + 12 hex digits of their hash.

    Example:
        ```python
        dialogue_id_for(Profile(id="p-01"), "complaints and disputes")  # 'rp-...' (always the same)
        ```
    """
    digest = hashlib.sha256(json.dumps([profile.id, topic], ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"rp-{digest[:12]}"


def synthesis_plan(
    profiles: Sequence[Profile],
    topics: Sequence[str] = TOPICS,
    n: int | None = None,
    seed: int = 1234,
) -> list[tuple[str, Profile, str]]:
    """Every profile crossed with every topic, shuffled by ``seed``, the first ``n`` kept.

    The order depends only on the profile ids, the topics and the seed (a private ``random.Random``), so a
    re-run or a resumed run plans the same dialogues under the same ids (:func:`dialogue_id_for`).

    Args:
        profiles: The customer profiles (ids must be unique).
        topics: The topics (unique, non-empty); the method's seven by default.
        n: How many dialogues to plan (None: all of them).
        seed: The shuffle seed.

    Returns:
        ``(dialogue_id, profile, topic)`` triples.

    Raises:
        ValueError: duplicate profile ids, duplicate or empty topics, or a negative ``n``.

    Example:
        ```python
        plan = synthesis_plan(load_profiles(), TOPICS, n=100, seed=1234)
        ```
    """
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seen_ids: set[str] = set()
    for profile in profiles:
        if profile.id in seen_ids:
            raise ValueError(f"duplicate profile id {profile.id!r}: dialogue ids would collide")
        seen_ids.add(profile.id)
    cleaned = [topic.strip() for topic in topics]
    if any(not topic for topic in cleaned):
        raise ValueError("topics must be non-empty strings")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError(f"duplicate topics in {cleaned}")
    pairs = sorted(((p, t) for p in profiles for t in cleaned), key=lambda pair: (pair[0].id, pair[1]))
    random.Random(seed).shuffle(pairs)
    if n is not None:
        pairs = pairs[:n]
    return [(dialogue_id_for(profile, topic), profile, topic) for profile, topic in pairs]
