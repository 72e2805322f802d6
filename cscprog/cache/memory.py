"""The cache's memory: the in-memory entry store of a ``ResponseCache(None)``, and the LRU in front of the disk.

Example:
    ```python
    from cscprog.cache import ResponseCache

    cache = ResponseCache(None)  # keeps its entries in a MemoryStore: nothing touches the disk
    ```
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

__all__ = ["Entry", "MemoryStore", "RecentEntries"]

Entry = tuple[dict[str, Any], bytes]
"""A verified cache entry: its metadata and its payload."""


class MemoryStore:
    """The ``directory=None`` store: the subset of FanoutCache's API the cache uses, in a dict."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None, retry: bool = False) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: bytes, retry: bool = False) -> bool:
        with self._lock:
            self._data[key] = value
        return True

    def add(self, key: str, value: bytes, retry: bool = False) -> bool:
        with self._lock:
            if key in self._data:
                return False
            self._data[key] = value
        return True

    def delete(self, key: str, retry: bool = False) -> bool:
        with self._lock:
            return self._data.pop(key, None) is not None

    def clear(self, retry: bool = False) -> int:
        with self._lock:
            count = len(self._data)
            self._data.clear()
        return count

    def volume(self) -> int:
        return sum(len(value) for value in list(self._data.values()))

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        pass


class RecentEntries:
    """The least-recently-used entries read or written lately, kept in memory in front of the disk (thread safe).

    Args:
        capacity: How many entries to keep (0: none; every method is then a cheap no-op).

    Example:
        ```python
        recent = RecentEntries(4096)
        recent.remember("k", ({"kind": "json"}, b"{}"))
        recent.get("k")  # ({'kind': 'json'}, b'{}')
        ```
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        """The entry of ``key`` (now the most recent), or None."""
        if not self.capacity:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def remember(self, key: str, entry: Entry) -> None:
        """Keep ``entry`` as the most recent, dropping the oldest beyond the capacity."""
        if self.capacity:
            with self._lock:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop the entry of ``key`` if present."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def items(self) -> list[tuple[str, Entry]]:
        """A snapshot of the entries, oldest first."""
        with self._lock:
            return list(self._entries.items())

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
