"""The faults the loopback OpenAI-compatible server can inject, and the record of each request it received.

A fault replaces the normal answer to one chat completion:

* ``429``: rate limited, with a ``Retry-After`` header;
* ``500``: a server error;
* ``401``: the API key is rejected (an OpenAI-style ``invalid_api_key`` error);
* ``timeout``: the answer comes ``delay`` seconds late, after the client gave up;
* ``garbage``: HTTP 200 with a well-formed completion whose text no adapter parses;
* ``malformed``: HTTP 200 whose body is cut off in the middle of the JSON (a proxy that truncates replies);
* ``empty``: HTTP 200 with an empty body.

Example:
    ```python
    from cscprog.testing import Fault, OpenAICompatibleServer

    with OpenAICompatibleServer(faults=["malformed", "empty", Fault("429", retry_after=0.01)]) as server:
        ...  # the first three completions fail, the fourth is answered
    ```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FAULT_KINDS", "GARBAGE_TEXT", "Fault", "FaultKind", "FaultSpec", "RecordedRequest"]

FaultKind = Literal["429", "500", "401", "timeout", "garbage", "malformed", "empty"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "401", "timeout", "garbage", "malformed", "empty")
"""Every fault kind, by its short name."""

GARBAGE_TEXT = "I am not going to follow your format. ### answer? maybe {not json"
"""The completion text of a ``garbage`` fault."""

MALFORMED_BODY = b'{"id": "chatcmpl-cut", "object": "chat.completion", "choices": [{"index": 0, "mess'
"""The body of a ``malformed`` fault: a completion cut off mid-JSON."""


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    Attributes:
        kind: One of :data:`FAULT_KINDS` (see the module docstring).
        retry_after: Seconds sent in the ``Retry-After`` header of a 429.
        delay: Seconds a ``timeout`` waits (None: the server's ``timeout_delay``).
        text: The reply of a ``garbage`` fault.

    Example:
        ```python
        server.inject(Fault("429", retry_after=0.05), "500", "garbage", "malformed")
        ```
    """

    kind: FaultKind
    retry_after: float = 0.05
    delay: float | None = None
    text: str = GARBAGE_TEXT

    @classmethod
    def of(cls, spec: FaultSpec) -> Fault | None:
        """A fault from its short form (``"429"``, ``429``, ``"timeout"``...), or None for no fault."""
        if spec is None or isinstance(spec, Fault):
            return spec
        kind = str(spec)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {spec!r}: use one of {', '.join(FAULT_KINDS)}")
        return cls(kind)  # type: ignore[arg-type]


FaultSpec = Fault | str | int | None
"""A fault or its short form; None means "answer normally"."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received.

    Attributes:
        method: ``GET`` or ``POST``.
        path: The request path (``/v1/chat/completions``).
        headers: The headers, names lower-cased.
        body: The parsed JSON body (None when empty or not JSON).
        fault: The fault injected into the answer, if any.
        time: When it arrived (epoch seconds).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    fault: str | None = None
    time: float = field(default=0.0, compare=False)
