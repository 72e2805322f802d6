"""What an observer (rate limiter, budget, usage ledger) learns about each LM call at the cache boundary.

:class:`CallInfo` describes one call; :class:`CallObserver` is the protocol the cache calls on every real call
and every hit. The helpers here read a DSPy cache request (adapter messages or an explicit lm15 request): its
size, completion limit, number of completions and last user message.

Example:
    ```python
    from cscprog.cache import CallInfo, ResponseCache

    class Printer:
        def before_call(self, call: CallInfo) -> None:
            logging.info("calling %s (%d prompt chars)", call.model, call.prompt_chars)

        def after_call(self, call, usage, cost) -> None: ...

        def on_hit(self, call, usage, cost) -> None: ...

    cache = ResponseCache("cache", observer=Printer())
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class CallInfo:
    """What an observer learns about one LM call at the cache boundary.

    Attributes:
        key: The cache key.
        model: The model string.
        endpoint: The normalized ``api_base``/``base_url``, or None for the provider's default.
        role: The ``cscprog_role`` set in ``dspy.settings`` around the call, or None.
        n: The number of completions asked for.
        prompt_chars: Characters in the rendered messages (a cheap size estimate before tokenizing).
        max_tokens: The completion limit of the call, when set.
    """

    key: str
    model: str
    endpoint: str | None
    role: str | None
    n: int
    prompt_chars: int
    max_tokens: int | None


@runtime_checkable
class CallObserver(Protocol):
    """Hears about calls at the cache boundary: rate limiting, budgets, usage ledgers.

    ``before_call`` runs on every miss (in every mode, ``off`` and ``refresh`` included) right before DSPy makes
    the real request; it may block (rate limit) or raise (budget exhausted), and its exception reaches the caller.
    A failed request is followed by no ``after_call``. ``after_call`` runs once a real call finished and its record
    was stored; ``on_hit`` runs when a call is served from the cache, with the usage it saved.
    """

    def before_call(self, call: CallInfo) -> None:
        """A real request is about to be made."""

    def after_call(self, call: CallInfo, usage: dict[str, int], cost: float | None) -> None:
        """A real request finished with this usage and cost (USD, None when unknown)."""

    def on_hit(self, call: CallInfo, usage: dict[str, int], cost: float | None) -> None:
        """A call was served from the cache; ``usage`` and ``cost`` are what the original call spent."""


def _text_of(content: Any) -> str:
    """The text of a message content: a string, a list of parts, or an lm15 message dict."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return content["text"]
        for name in ("content", "parts"):
            if name in content:
                return _text_of(content[name])
        return ""
    if isinstance(content, (list, tuple)):
        return "".join(_text_of(part) for part in content)
    return ""


def _messages_of(request: dict[str, Any]) -> tuple[list[Any], Any]:
    """(messages, system) of a DSPy cache request: adapter calls or explicit lm15 requests."""
    messages = request.get("messages")
    if isinstance(messages, list):
        return messages, None
    inner = request.get("request")
    if isinstance(inner, dict):
        return list(inner.get("messages") or ()), inner.get("system")
    prompt = request.get("prompt")
    return ([{"role": "user", "content": prompt}] if prompt is not None else []), None


def _last_user_text(request: dict[str, Any]) -> str:
    messages, _ = _messages_of(request)
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return _text_of(message)
    return _text_of(messages[-1]) if messages else ""


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[: _EXCERPT_CHARS - 1] + "…"


def _prompt_chars(request: dict[str, Any]) -> int:
    messages, system = _messages_of(request)
    return len(_text_of(system)) + sum(len(_text_of(message)) for message in messages)


def _max_tokens(request: dict[str, Any]) -> int | None:
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(request.get(name), int):
            return request[name]
    inner = request.get("request")
    if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
        value = inner["config"].get("max_tokens")
        return value if isinstance(value, int) else None
    return None


def _n(request: dict[str, Any]) -> int:
    n = request.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def call_info(request: dict[str, Any], key: str, model: str, endpoint: str | None, role: str | None) -> CallInfo:
    """The :class:`CallInfo` of a DSPy cache request whose key, model and endpoint are already known.

    Example:
        ```python
        info = call_info({"model": "openai/m", "messages": [{"role": "user", "content": "hi"}]},
                         "0" * 64, "openai/m", None, role="judge")
        assert info.prompt_chars == 2 and info.n == 1
        ```
    """
    return CallInfo(
        key=key,
        model=model,
        endpoint=endpoint,
        role=role,
        n=_n(request),
        prompt_chars=_prompt_chars(request),
        max_tokens=_max_tokens(request),
    )


def miss_excerpt(request: dict[str, Any]) -> str:
    """The first ~200 characters of the request's last user message, blanks collapsed (for replay errors).

    Example:
        ```python
        assert miss_excerpt({"messages": [{"role": "user", "content": "Where  is\\nmy parcel?"}]}) == (
            "Where is my parcel?"
        )
        ```
    """
    return _excerpt(_last_user_text(request))
