"""Deterministic train/dev/test splits by a hash of each dialogue id.

A dialogue's split depends only on its id and the salt, never on file order or on the other dialogues,
so adding data never moves an existing dialogue between splits.

Example:
    ```python
    from cscprog.data import split_dialogues

    parts = split_dialogues(dialogues, {"train": 0.8, "dev": 0.1, "test": 0.1})
    len(parts["train"])
    ```
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


def split_of(item_id: str, ratios: Mapping[str, float], *, salt: str = "cscprog") -> str:
    """The split an id falls in: its hash, read as a number in [0, 1), against the cumulative ratios.

    Raises:
        ValueError: ratios are empty, negative, or do not sum to 1 (within 1e-6).
    """
    if not ratios or any(r < 0 for r in ratios.values()) or abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise ValueError(f"split ratios must be non-negative and sum to 1, got {dict(ratios)}")
    digest = hashlib.sha256(f"{salt}\x00{item_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    names = list(ratios)
    for name in names:
        total += ratios[name]
        if point < total:
            return name
    return names[-1]


def split_dialogues(items: Iterable[T], ratios: Mapping[str, float], *, salt: str = "cscprog",
                    key: str = "id") -> dict[str, list[T]]:
    """Split items (dialogues or examples) by the hash of ``getattr(item, key)``; order is kept in each part."""
    parts: dict[str, list[T]] = {name: [] for name in ratios}
    for item in items:
        item_id = getattr(item, key, None)
        if item_id is None and isinstance(item, Mapping):
            item_id = item.get(key)
        if item_id is None:
            raise ValueError(f"cannot split: item has no {key!r}")
        parts[split_of(str(item_id), ratios, salt=salt)].append(item)
    return parts
