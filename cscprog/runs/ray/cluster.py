"""Reaching Ray: whether it is installed, and joining (or starting) the cluster a run uses.

Example:
    ```python
    from cscprog.runs.ray.cluster import connect, require_ray

    require_ray()                      # EngineUnavailableError with the install command when Ray is missing
    import ray

    owns = connect(ray, None, {})      # a private Ray on this machine; shut it down after the run when True
    ```
"""

from __future__ import annotations

import logging
from typing import Any

from cscprog.runs.engine import EngineUnavailableError
from cscprog.runs.items import RunInputError

__all__ = ["RAY_INSTALL_HINT", "connect", "first_line", "ray_available", "require_ray"]

RAY_INSTALL_HINT = 'pip install "cscprog[ray]"'
"""How to install what ``--engine ray`` needs."""


def ray_available() -> bool:
    """True when Ray can be imported.

    Example:
        ```python
        engine = "ray" if ray_available() else "local"
        ```
    """
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def require_ray() -> None:
    """Import Ray or explain how to install it.

    Raises:
        EngineUnavailableError: Ray is not installed.
    """
    if not ray_available():
        raise EngineUnavailableError(f"--engine ray needs Ray, which is not installed: {RAY_INSTALL_HINT}")


def first_line(error: BaseException) -> str:
    """``Type: first line of the message`` of ``error`` (at most 300 characters of it), for one-line reports."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}"


def connect(ray: Any, address: str | None, init_options: dict[str, Any]) -> bool:
    """Join the Ray cluster at ``address`` (None: start a private one); True when this call started Ray.

    Raises:
        RunInputError: Ray cannot be started or reached.

    Example:
        ```python
        owns_ray = connect(ray, "auto", {})
        ```
    """
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING, **init_options}
    try:
        ray.init(address=address, **options)
    except Exception as error:
        where = address or "a local Ray"
        raise RunInputError(f"cannot start or reach {where}: {first_line(error)}") from None
    return True
