"""The execution engines by name: ``local`` (threads of this process) and ``ray`` (Ray worker processes).

This is the one place that knows every engine; nothing below it imports it (the engines themselves only know
the interface in :mod:`cscprog.runs.engine`).

Example:
    ```python
    from cscprog.runs.engines import ENGINES, make_engine

    engine = make_engine("local")
    ```
"""

from __future__ import annotations

from collections.abc import Callable

from cscprog.runs.engine import EngineUnavailableError, ExecutionEngine
from cscprog.runs.ray.cluster import require_ray
from cscprog.runs.ray.engine import RayEngine
from cscprog.runs.threads import ThreadEngine

__all__ = ["ENGINES", "make_engine"]


def _local(address: str | None) -> ExecutionEngine:
    return ThreadEngine()


def _ray(address: str | None) -> ExecutionEngine:
    require_ray()
    return RayEngine(address=address)


_FACTORIES: dict[str, Callable[[str | None], ExecutionEngine]] = {"local": _local, "ray": _ray}

ENGINES: tuple[str, ...] = tuple(_FACTORIES)
"""The engine names ``--engine`` and ``[run] engine`` accept."""


def make_engine(name: str, *, address: str | None = None) -> ExecutionEngine:
    """The engine called ``name``: ``local`` (threads) or ``ray`` (Ray workers at ``address``; None: a local Ray).

    Raises:
        EngineUnavailableError: an unknown name, or ``ray`` without Ray installed (the message says how to
            install it).

    Example:
        ```python
        engine = make_engine(config.run.engine, address=config.run.ray_address)
        ```
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise EngineUnavailableError(f"unknown engine {name!r}; engines are: {', '.join(ENGINES)}")
    return factory(address)
