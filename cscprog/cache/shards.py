"""The cache's sharded SQLite store, and what happens when a shard is damaged: quarantine, rebuild, carry on.

The disk cache is a :class:`diskcache.FanoutCache`: eight SQLite files (``000/cache.db`` ... ``007/cache.db``), each
key in one of them (the result store, derived data, uses one: ``shards``). A damaged file (a bad page, an
overwritten header) makes SQLite answer "database disk image is malformed" or "file is not a database" on every
access to that shard, for ever. :class:`ShardedStore` wraps the fanout cache and, when a shard is damaged:

* with ``repair=True`` (``readwrite``, ``refresh``, ``off`` and the ``cscprog cache`` commands) moves the shard's
  directory aside to ``<cache>/quarantine/NNN-<time>-<pid>/``, says so once in a warning naming that path,
  opens a fresh empty shard in its place, and carries on: the other shards are served as before, the damaged
  shard's entries are recomputed when next needed;
* with ``repair=False`` (``replay``, which verifies a cache and must not change it) leaves every file in place
  and raises :class:`ShardDamagedError`, whose message says how to recover.

Example:
    ```python
    store = ShardedStore(Path("runs/cache"), repair=True, size_limit=2**30)
    store.set("key", b"value")
    print(store.get("key"), store.quarantined)   # b'value' []
    ```
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cscprog.cache.errors import CacheError
from cscprog.cache.key_index import KeyIndex

__all__ = ["QUARANTINE_DIR", "SHARDS", "ShardDamagedError", "ShardedStore", "is_damage"]

logger = logging.getLogger(__name__)

SHARDS = 8
"""SQLite files the disk cache spreads its entries over."""

QUARANTINE_DIR = "quarantine"
"""Where damaged shards are moved, inside the cache directory."""

_DAMAGE_WORDS = ("malformed", "not a database", "file is encrypted", "disk i/o error")


class ShardDamagedError(CacheError):
    """A cache shard's SQLite file is damaged and the cache may not repair it (``replay`` mode).

    Attributes:
        shard: The damaged shard's directory.
    """

    def __init__(self, shard: Path, error: BaseException) -> None:
        self.shard = shard
        super().__init__(
            f"cache shard {shard} is damaged ({error}); replay mode leaves the cache as it is. To recover: restore "
            "the cache from its bundle (`cscprog cache import BUNDLE`), or open it once outside replay mode "
            "(`cscprog cache stats` moves the damaged shard aside into quarantine/ and rebuilds it; the entries it "
            "held are then missing)"
        )


def is_damage(error: BaseException) -> bool:
    """True when a SQLite error means the database file is damaged (not merely locked or busy).

    Example:
        ```python
        is_damage(sqlite3.DatabaseError("database disk image is malformed"))  # True
        ```
    """
    if not isinstance(error, sqlite3.DatabaseError):
        return False
    text = str(error).lower()
    return any(word in text for word in _DAMAGE_WORDS)


def _inode(shard_dir: Path) -> int | None:
    try:
        return (shard_dir / "cache.db").stat().st_ino
    except OSError:
        return None


class ShardedStore:
    """A :class:`diskcache.FanoutCache` whose damaged shards are quarantined and rebuilt (or reported).

    Args:
        directory: The cache directory.
        repair: Quarantine and rebuild damaged shards (False: raise :class:`ShardDamagedError`).
        size_limit: Disk size limit in bytes, over all shards.
        timeout: SQLite lock timeout in seconds.
        eviction_policy: diskcache's eviction policy.
        shards: SQLite files (default :data:`SHARDS`; the layout of a directory: a store opened with another
            count finds only the keys that hash to the same file).
        exact_index: Whether the key index watches for other writers (:class:`~cscprog.cache.key_index.KeyIndex`,
            ``exact``); False only for derived data.

    Attributes:
        quarantined: The directories damaged shards were moved to by this store.

    Raises:
        ShardDamagedError: a shard cannot be opened and ``repair`` is False.

    Example:
        ```python
        store = ShardedStore(Path("cache"), repair=False)
        ```
    """

    def __init__(self, directory: Path, *, repair: bool, size_limit: int = 20 * 2**30, timeout: float = 30,
                 eviction_policy: str = "least-recently-stored", shards: int = SHARDS,
                 exact_index: bool = True) -> None:
        if shards < 1:
            raise ValueError(f"shards must be >= 1, got {shards}")
        self.directory = Path(directory)
        self.shards = shards
        self.repair = repair
        self.quarantined: list[Path] = []
        self._settings = {"timeout": timeout, "size_limit": int(size_limit), "eviction_policy": eviction_policy}
        self._lock = threading.Lock()
        self._fanout = self._open()
        self._inodes = [_inode(self._shard_dir(index)) for index in range(self.shards)]
        self.keys = KeyIndex([self._shard_dir(index) / "cache.db" for index in range(self.shards)], exact=exact_index)

    # --- opening and repairing -----------------------------------------------------------------------------------

    def _shard_dir(self, index: int) -> Path:
        return self.directory / f"{index:03d}"

    def _open(self) -> Any:
        from diskcache import Cache, FanoutCache

        try:
            return FanoutCache(str(self.directory), shards=self.shards, **self._settings)
        except sqlite3.DatabaseError as error:
            if not is_damage(error):
                raise
        for index in range(self.shards):  # find the damaged shard(s): open each on its own
            try:
                Cache(str(self._shard_dir(index)), **self._shard_settings()).close()
            except sqlite3.DatabaseError as error:
                if not is_damage(error):
                    raise
                if not self.repair:
                    raise ShardDamagedError(self._shard_dir(index), error) from None
                self._move_aside(index, error)
        return FanoutCache(str(self.directory), shards=self.shards, **self._settings)

    def _shard_settings(self) -> dict[str, Any]:
        settings = dict(self._settings)
        settings["size_limit"] = int(settings["size_limit"] / self.shards)
        return settings

    def _move_aside(self, index: int, error: BaseException) -> Path:
        source = self._shard_dir(index)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.directory / QUARANTINE_DIR / f"{index:03d}-{stamp}-{os.getpid()}-{len(self.quarantined)}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        self.quarantined.append(target)
        logger.warning(
            "cache shard %s is damaged (%s): moved to %s and rebuilt empty; the rest of the cache is served, the "
            "entries it held are recomputed when needed (delete %s once you no longer want to inspect it)",
            source, error, target, target,
        )
        return target

    def _damaged(self, index: int, shard: Any, error: BaseException) -> None:
        """Handle damage met in shard ``index`` (the ``shard`` object that failed); raise when not repairing."""
        from diskcache import Cache

        if not self.repair:
            raise ShardDamagedError(self._shard_dir(index), error) from None
        with self._lock:
            shards = list(self._fanout._shards)
            if shards[index] is not shard:
                return  # another thread repaired it already
            if _inode(self._shard_dir(index)) == self._inodes[index]:
                self._move_aside(index, error)
            # else another process moved it aside already: open what is there now
            shards[index] = Cache(str(self._shard_dir(index)), **self._shard_settings())
            self._fanout._shards = tuple(shards)
            self._inodes[index] = _inode(self._shard_dir(index))
            self.keys.forget(index, "rebuilt after damage")

    def _index(self, key: str) -> int:
        return self._fanout._hash(key) % self.shards

    def _on_shard(self, index: int, run: Callable[[Any], Any], timed_out: Any) -> Any:
        """``run(shard)`` on shard ``index`` (``timed_out`` when SQLite stays locked); a damaged shard is repaired
        and ``run`` retried once."""
        from diskcache import Timeout

        for _attempt in range(2):
            shard = self._fanout._shards[index]
            try:
                return run(shard)
            except Timeout:
                return timed_out
            except sqlite3.DatabaseError as error:
                if not is_damage(error):
                    raise
                self._damaged(index, shard, error)
        raise CacheError(f"cache shard {self._shard_dir(index)} is still damaged after it was rebuilt")

    def _write(self, index: int, keys: Iterable[str], run: Callable[[Any], Any], timed_out: Any) -> Any:
        """``run(shard)`` in one transaction on shard ``index``, the key index told (``keys`` added, the commit
        absorbed: see :mod:`cscprog.cache.key_index`)."""
        with self.keys.writing(index, keys) as check:

            def transaction(shard: Any) -> Any:
                with shard.transact(retry=True):
                    check()
                    return run(shard)

            return self._on_shard(index, transaction, timed_out)

    # --- the store interface the cache uses --------------------------------------------------------------------

    def get(self, key: str, default: Any = None, retry: bool = True) -> Any:
        """The value of ``key``, or ``default`` (at once when the key index says the shard lacks it)."""
        index = self._index(key)
        if not self.keys.may_hold(index, key):
            return default
        found = self._on_shard(index, lambda shard: shard.get(key, default, retry=retry), None)
        return default if found is None else found

    def set(self, key: str, value: Any, retry: bool = True) -> bool:
        """Store ``value`` under ``key``; True when stored."""
        return bool(self._write(self._index(key), (key,), lambda shard: shard.set(key, value, retry=retry), False))

    def set_many(self, items: list[tuple[str, Any]]) -> list[bool]:
        """Store many ``(key, value)`` pairs, one transaction per shard; whether each was stored.

        A damaged shard is repaired (or :class:`ShardDamagedError` raised) as in :meth:`set`.
        """
        by_shard: dict[int, list[int]] = {}
        for position, (key, _value) in enumerate(items):
            by_shard.setdefault(self._index(key), []).append(position)
        stored = [False] * len(items)
        for index, positions in by_shard.items():
            part = [items[position] for position in positions]

            def run(shard: Any, part: list[tuple[str, Any]] = part) -> list[bool]:
                return [bool(shard.set(key, value, retry=True)) for key, value in part]

            done = self._write(index, [key for key, _value in part], run, [False] * len(part))  # rolled back
            for position, ok in zip(positions, done, strict=True):
                stored[position] = ok
        return stored

    def add(self, key: str, value: Any, retry: bool = True) -> bool:
        """Store ``value`` unless ``key`` exists; True when stored."""
        return bool(self._write(self._index(key), (key,), lambda shard: shard.add(key, value, retry=retry), False))

    def delete(self, key: str, retry: bool = True) -> bool:
        """Delete ``key``; True when it existed."""
        return bool(self._write(self._index(key), (), lambda shard: shard.delete(key, retry=retry), False))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        index = self._index(key)
        return self.keys.may_hold(index, key) and bool(self._on_shard(index, lambda shard: key in shard, False))

    def __iter__(self) -> Iterator[str]:
        for index in range(self.shards):
            shard = self._fanout._shards[index]
            try:
                yield from list(shard)
            except sqlite3.DatabaseError as error:
                if not is_damage(error):
                    raise
                self._damaged(index, shard, error)

    def _over_shards(self, operation: str, **kwargs: Any) -> int:
        """The sum of ``shard.<operation>(**kwargs)`` over the shards; a damaged shard is repaired, counts 0."""
        total = 0
        for index in range(self.shards):
            shard = self._fanout._shards[index]
            try:
                total += int(getattr(shard, operation)(**kwargs))
            except sqlite3.DatabaseError as error:
                if not is_damage(error):
                    raise
                self._damaged(index, shard, error)
        return total

    def clear(self, retry: bool = True) -> int:
        """Delete every entry; the number deleted (a damaged shard is quarantined, its entries not counted)."""
        return sum(int(self._write(index, (), lambda shard: shard.clear(retry=retry), 0))
                   for index in range(self.shards))

    def volume(self) -> int:
        """Bytes on disk over the shards that can be read."""
        return self._over_shards("volume")

    def close(self) -> None:
        """Close every shard's connection (of this thread) and the key index's."""
        self.keys.close()
        self._fanout.close()
