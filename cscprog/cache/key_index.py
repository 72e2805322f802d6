"""Which keys a cache shard surely lacks, so that a lookup bound to miss skips SQLite.

On a fresh synthesis nearly every lookup misses, and each miss cost two SQLite queries (the result store's and the
LM entry's) plus, on a worker thread that had not used that shard yet, a new SQLite connection: diskcache keeps one
per thread and shard, and opening one (connect, read the settings, set six pragmas) costs more client CPU than the
query. :class:`KeyIndex` answers most of those misses from memory.

Per shard it keeps the hashes of the keys the shard held when it was first consulted, plus every key this store has
written since, and the shard's ``PRAGMA data_version`` read on a connection of its own. SQLite changes that value
whenever *another* connection commits to the file: another process, another store object on the same directory, or
this store's own writes (which run on diskcache's connections). While the value is the one the index last saw, a key
whose hash is not in the set is surely absent. The store's own writes are absorbed: they run under the shard's
index lock, their keys are added before the commit, and the value read right after it becomes the new baseline. A
value the index did not expect turns the shard *unindexed* for the rest of the store's life: every lookup goes to
SQLite, exactly as without the index. So does a shard with more than ``max_keys`` entries, a damaged shard, and any
SQLite error the index meets.

What is not noticed: a commit by another process in the microseconds between one of this store's commits and the
read that follows it (its entry is then fetched again and overwritten, the outcome two processes missing the same
key at the same time already have); and, until this store next writes to that shard, a shard file another process
moved aside as damaged and rebuilt (the watch connection still reads the old file).

Example:
    ```python
    index = KeyIndex([Path("cache/000/cache.db")])
    if index.may_hold(0, key):
        blob = shard.get(key)
    with index.writing(0, [key]) as check, shard.transact():
        check()
        shard.set(key, blob)
    ```
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

__all__ = ["MAX_KEYS", "KeyIndex"]

logger = logging.getLogger(__name__)

MAX_KEYS = 100_000
"""Most entries a shard may hold and still be indexed (about 70 bytes of memory each: at most about 56 MB for a
store's eight shards; a larger shard is looked up in SQLite as before)."""

_UNINDEXED = "unindexed"


class _Shard:
    """One shard's index: key hashes, its watch connection and the data_version last seen on it."""

    __slots__ = ("connection", "hashes", "version")

    def __init__(self, connection: sqlite3.Connection, hashes: set[int], version: int) -> None:
        self.connection = connection
        self.hashes = hashes
        self.version = version

    def current_version(self) -> int:
        return int(self.connection.execute("PRAGMA data_version").fetchone()[0])


class KeyIndex:
    """The keys each shard of a store may hold, trusted while no other connection writes to it.

    Args:
        databases: Each shard's SQLite file, in shard order.
        max_keys: A shard holding more entries is not indexed.
        exact: Watch for other writers (the default). False for derived data, where a key wrongly said to be
            absent costs only its recomputation (the result store: a result another process stores is then not
            seen by this one, whose full path finds the LM entries and stores the result again): no data_version
            is read, on lookups or writes.

    Attributes:
        skipped: Lookups answered "absent" without SQLite.

    Example:
        ```python
        index = KeyIndex([directory / f"{i:03d}" / "cache.db" for i in range(8)])
        index.may_hold(3, "0f3a...")  # False: shard 3 surely lacks the key
        ```
    """

    def __init__(self, databases: Sequence[Path], *, max_keys: int = MAX_KEYS, exact: bool = True) -> None:
        self._databases = list(databases)
        self._max_keys = max_keys
        self.exact = exact
        self._pid = os.getpid()
        self._locks = [threading.RLock() for _ in self._databases]
        self._shards: list[_Shard | str | None] = [None] * len(self._databases)
        self.skipped = 0

    def _forked(self) -> None:
        """In a child process (a fork of the one that built the index): start afresh, as diskcache does with its
        connections. The parent's watch connections are not used here (SQLite forbids carrying one across a
        fork); the child indexes each shard again on first use."""
        self._pid = os.getpid()
        self._locks = [threading.RLock() for _ in self._databases]
        self._shards = [None] * len(self._databases)

    def indexed(self, shard: int) -> bool:
        """True while shard ``shard`` is indexed (loaded, trusted)."""
        return isinstance(self._shards[shard], _Shard)

    def may_hold(self, shard: int, key: str) -> bool:
        """False when shard ``shard`` surely lacks ``key``; True when it must be looked up."""
        if os.getpid() != self._pid:
            self._forked()
        with self._locks[shard]:
            state = self._shards[shard]
            if state is None:
                state = self._load(shard)
            if not isinstance(state, _Shard) or hash(key) in state.hashes:
                return True  # a hit (or a hash collision) costs no more than without the index
            if self.exact and self._trusted(shard) is None:
                return True
            self.skipped += 1
            return False

    @contextlib.contextmanager
    def writing(self, shard: int, keys: Iterable[str] = ()) -> Iterator[Callable[[], None]]:
        """Hold shard ``shard``'s index while this store writes ``keys`` to it (or deletes), and absorb the commit.

        Yields the check to call inside the write transaction, once SQLite's write lock is held: a commit by
        another connection since the index last looked unindexes the shard there, and no other commit can come
        before this one. When the block ends, the shard's data_version (this commit) is the new baseline; a block
        that never called the check unindexes the shard.

        Example:
            ```python
            with index.writing(2, ["k1"]) as check, shard.transact():
                check()
                shard.set("k1", b"...")
            ```
        """
        if os.getpid() != self._pid:
            self._forked()
        with self._locks[shard]:
            state = self._shards[shard] if isinstance(self._shards[shard], _Shard) else None
            checked = False
            if state is not None:
                state.hashes.update(hash(key) for key in keys)  # before the commit: never a moment without them
                if len(state.hashes) > self._max_keys:
                    self._unindex(shard, f"more than {self._max_keys} keys")
                    state = None

            def check() -> None:
                nonlocal checked
                if self.exact and state is not None and self._shards[shard] is state:
                    self._trusted(shard)
                checked = True

            try:
                yield check
            finally:
                if self.exact and state is not None and self._shards[shard] is state:
                    if not checked:
                        self._unindex(shard, "written without the check")
                    else:
                        try:
                            state.version = state.current_version()
                        except sqlite3.Error as error:
                            self._unindex(shard, f"data_version: {error}")

    def forget(self, shard: int, why: str) -> None:
        """Stop indexing shard ``shard`` (it was damaged and rebuilt, or replaced)."""
        with self._locks[shard]:
            self._unindex(shard, why)

    def close(self) -> None:
        """Close the watch connections; the index then answers "look it up" for every key."""
        for shard in range(len(self._databases)):
            self.forget(shard, "store closed")

    # --- internals (called with the shard's lock held) -------------------------------------------------------

    def _trusted(self, shard: int) -> _Shard | None:
        state = self._shards[shard]
        if not isinstance(state, _Shard):
            return None
        try:
            seen = state.current_version()
        except sqlite3.Error as error:
            self._unindex(shard, f"data_version: {error}")
            return None
        if seen != state.version:
            self._unindex(shard, "another connection wrote to it")
            return None
        return state

    def _load(self, shard: int) -> _Shard | None:
        connection = None
        try:
            connection = sqlite3.connect(self._databases[shard], timeout=30, isolation_level=None,
                                         check_same_thread=False)
            version = int(connection.execute("PRAGMA data_version").fetchone()[0])
            hashes: set[int] = set()
            rows = connection.execute("SELECT key FROM Cache")
            while batch := rows.fetchmany(4096):
                hashes.update(hash(row[0]) for row in batch)
                if len(hashes) > self._max_keys:
                    raise OverflowError(f"more than {self._max_keys} keys")
        except (sqlite3.Error, OSError, OverflowError) as error:
            if connection is not None:
                connection.close()
            self._shards[shard] = _UNINDEXED
            logger.debug("cache shard %s is not indexed (%s): every lookup goes to SQLite", self._databases[shard],
                         error)
            return None
        state = _Shard(connection, hashes, version)
        self._shards[shard] = state
        return state

    def _unindex(self, shard: int, why: str) -> None:
        state = self._shards[shard]
        self._shards[shard] = _UNINDEXED
        if isinstance(state, _Shard):
            with contextlib.suppress(sqlite3.Error):
                state.connection.close()
            logger.debug("cache shard %s no longer indexed (%s): every lookup goes to SQLite",
                         self._databases[shard], why)
