"""The in-memory entry store of a ``ResponseCache(None)``: the part of diskcache's API the cache uses, in a dict.

Example:
    ```python
    from cscprog.cache import ResponseCache

    cache = ResponseCache(None)  # keeps its entries in a _MemoryStore: nothing touches the disk
    ```
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any


class _MemoryStore:
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
