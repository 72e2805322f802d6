"""A structured output cut off by its token budget: stored like any response, replayed as the truncation it was.

An LM that runs out of ``max_tokens`` in the middle of a JSON object returns half an object (``finish_reason``
``"length"``). Parsing it is wrong: DSPy's JSON adapter "repairs" broken JSON, so half a dialogue could pass for
a whole one. Raising inside the engine is wrong too: DSPy stores only responses that came back, so the cut-off
call would never be cached, would be made again on every warm run, and could not be replayed at all.

So the response is stored as it came, and :class:`cscprog.cache.router.CacheRouter` checks every record it
stores or serves with :func:`structured_truncation`: a record whose request asked for a structured output
(``response_format``) and whose response stopped at ``"length"`` raises :class:`OutputTruncated`, fresh or
replayed alike. :func:`cscprog.lm.invoke.invoke` answers it with a larger budget (a new cache entry).

Example:
    ```python
    error = structured_truncation(request, record)
    if error is not None:
        raise error   # invoke() retries with twice error.max_tokens
    ```
"""

from __future__ import annotations

from typing import Any

from dspy.utils.exceptions import LMError

__all__ = ["OutputTruncated", "structured_truncation"]


class OutputTruncated(LMError):
    """A structured completion reached its token budget before the structure was complete.

    Raised instead of handing the cut-off text to a parser; :func:`cscprog.lm.invoke.invoke` retries with a
    larger budget.

    Attributes:
        max_tokens: The budget that was reached (the tokens the cut-off response holds when the request
            did not say).
    """

    default_code = "output_truncated"

    def __init__(self, message: str, *, max_tokens: int, model: str | None = None, provider: str | None = "local"):
        super().__init__(message, model=model, provider=provider)
        self.max_tokens = max_tokens


def _request_parts(request: dict[str, Any]) -> tuple[Any, Any, Any]:
    """``(response_format, max_tokens, model)`` of a DSPy cache request, native (lm15) or LiteLLM-shaped."""
    native = request.get("request")
    if isinstance(native, dict):
        config = native.get("config") or {}
        return config.get("response_format"), config.get("max_tokens"), native.get("model")
    budget = request.get("max_tokens", request.get("max_completion_tokens"))
    return request.get("response_format"), budget, request.get("model")


def _stopped_at_length(record: Any) -> tuple[bool, int | None]:
    """Whether any response in ``record`` stopped at its budget, and how many tokens it produced."""
    if not isinstance(record, dict) and callable(getattr(record, "model_dump", None)):
        record = record.model_dump()  # a LiteLLM response object on its way to the store
    if not isinstance(record, dict):
        return False, None
    items = record.get("responses") if isinstance(record.get("responses"), list) else record.get("choices")
    for item in items or []:
        if isinstance(item, dict) and item.get("finish_reason") == "length":
            usage = item.get("usage") if isinstance(item.get("usage"), dict) else record.get("usage")
            produced = (usage or {}).get("output_tokens", (usage or {}).get("completion_tokens"))
            return True, produced if isinstance(produced, int) else None
    return False, None


def structured_truncation(request: dict[str, Any], record: Any) -> OutputTruncated | None:
    """The :class:`OutputTruncated` that ``record`` stands for, or None when it is a usable response.

    Args:
        request: The DSPy cache request (what ``dspy.cache.get``/``put`` receive).
        record: The stored (or about to be stored) response record.

    Example:
        ```python
        structured_truncation({"request": {"model": "local/m", "config": {"response_format": {...},
                               "max_tokens": 64}}}, {"responses": [{"finish_reason": "length", ...}]})
        # OutputTruncated(max_tokens=64)
        ```
    """
    if not isinstance(request, dict):
        return None
    response_format, budget, model = _request_parts(request)
    if not response_format:
        return None
    truncated, produced = _stopped_at_length(record)
    if not truncated:
        return None
    reached = budget if isinstance(budget, int) and budget > 0 else produced
    if not isinstance(reached, int) or reached <= 0:
        reached = 1
    shown = str(model) if model is not None else None
    provider = "local" if shown is not None and shown.startswith("local/") else None
    return OutputTruncated(
        f"the structured output reached max_tokens={reached} before it was complete",
        max_tokens=reached, model=shown, provider=provider,
    )
