"""What records say about when and with what they were made: UTC timestamps and installed package versions.

Example:
    ```python
    from cscprog.stamps import package_version, utc_iso

    utc_iso(0.0)                             # '1970-01-01T00:00:00+00:00'
    utc_iso(0.0, precise=True)               # '1970-01-01T00:00:00.000Z' (run manifests)
    package_version("dspy")                  # '3.4.1', or None when not installed
    ```
"""

from __future__ import annotations

import datetime
import importlib.metadata

__all__ = ["package_version", "utc_iso"]


def utc_iso(timestamp: float, *, precise: bool = False) -> str:
    """``timestamp`` (epoch seconds) in ISO 8601, UTC.

    Args:
        timestamp: Seconds since the epoch.
        precise: Milliseconds and a ``Z`` suffix (run manifests); else whole seconds and ``+00:00`` (cache
            files and bundles).

    Example:
        ```python
        utc_iso(time.time())
        ```
    """
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    if precise:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.isoformat(timespec="seconds")


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed.

    Example:
        ```python
        package_version("litellm")
        ```
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
