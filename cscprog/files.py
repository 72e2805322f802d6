"""Files written whole or not at all: the one atomic write of cscprog.

Every file cscprog replaces (manifests, outputs rewritten in order, ``last_run.json``, cache bundles, exports,
assembled model weights) is written to a temporary file in the same directory, flushed, ``fsync``\\ ed and
renamed over the target with :func:`os.replace`, and the directory is ``fsync``\\ ed so the rename survives a
power loss. A reader sees the old file or the new one, never half of one; an interrupted write leaves at most a
temporary file, which :func:`stale_temporaries` finds.

Example:
    ```python
    from cscprog.files import atomic_write, atomic_writer

    atomic_write("run/manifest.json", '{"ok": true}\\n')
    with atomic_writer("run/big.bin") as out:      # streamed: the target appears only when the block ends
        for block in blocks:
            out.write(block)
    ```
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["TEMPORARY_SUFFIX", "atomic_write", "atomic_writer", "exclusive_lock", "fsync_directory",
           "stale_temporaries"]

TEMPORARY_SUFFIX = ".tmp"
"""The suffix of the temporary file of an atomic write: ``.<name>.<random>.tmp`` beside the target."""


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make a rename inside directory ``path`` durable (a no-op where directories cannot be opened).

    Example:
        ```python
        fsync_directory(Path("runs"))
        ```
    """
    with contextlib.suppress(OSError):
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, fsync: bool = True, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` when the block ends without an exception.

    Args:
        path: The file to replace; its directory must exist.
        fsync: Flush the data and the directory entry to disk before returning (False: crash-safe only
            against other processes, not against power loss; for caches that can be rebuilt).
        mode: The permission bits of the new file (temporary files start as 0600).

    Raises:
        OSError: the file cannot be written; the target is unchanged and no temporary file is left.

    Example:
        ```python
        with atomic_writer("weights.gguf", mode=0o644) as out:
            out.write(b"GGUF...")
        ```
    """
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if fsync:
        fsync_directory(target.parent)


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, fsync: bool = True, mode: int = 0o644) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step; see :func:`atomic_writer`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        ```python
        atomic_write("out/last_run.json", json.dumps(counters), fsync=False)
        ```
    """
    with atomic_writer(path, fsync=fsync, mode=mode) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files that interrupted atomic writes of ``path`` left beside it.

    Only delete them while no write of ``path`` can be running (e.g. while holding the file's lock).

    Example:
        ```python
        for leftover in stale_temporaries("out.jsonl"):
            leftover.unlink(missing_ok=True)
        ```
    """
    target = Path(path)
    pattern = re.compile(re.escape(f".{target.name}.") + r"[A-Za-z0-9_]+" + re.escape(TEMPORARY_SUFFIX))
    if not target.parent.is_dir():
        return []
    return sorted(candidate for candidate in target.parent.iterdir() if pattern.fullmatch(candidate.name))


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on the file ``path`` (created when missing) for the block.

    POSIX ``flock``, so it serializes threads and processes alike (it is released when the process dies); where
    ``fcntl`` does not exist (Windows) it does nothing, and only atomic renames protect what it guards.

    Raises:
        OSError: the lock file cannot be created or opened (e.g. an unwritable directory).

    Example:
        ```python
        with exclusive_lock(models / "e5.lock"):
            build_once(models / "e5")
        ```
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with Path(path).open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
