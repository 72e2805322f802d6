"""A DSPy engine request as the local models read it: chat-template messages (text only) and a response format.

Shared by the llama.cpp engine (:mod:`cscprog.lm.local.engine`) and the fine-tuned transformers engine
(:mod:`cscprog.finetune.engine`), which take the same messages.

Example:
    ```python
    from dspy.lm15 import Message, Request
    from cscprog.lm.local.messages import chat_messages, json_schema_of

    chat_messages(Request(model="local/x", messages=(Message.user("hi"),)))  # [{'role': 'user', 'content': 'hi'}]
    json_schema_of({"type": "json_object"})                                  # (True, None)
    ```
"""

from __future__ import annotations

from typing import Any

from dspy.lm15 import Request, TextPart, UnsupportedFeatureError

__all__ = ["chat_messages", "json_schema_of"]


def _text_of(parts: Any) -> str:
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    texts = []
    for part in parts:
        if not isinstance(part, TextPart):
            raise UnsupportedFeatureError(f"the local model reads text only, got a {type(part).__name__}")
        texts.append(part.text)
    return "".join(texts)


def chat_messages(request: Request) -> list[dict[str, str]]:
    """The request as chat-template messages (system first, then the turns' text); no tools, text only.

    Example:
        ```python
        chat_messages(Request(model="local/x", messages=(Message.user("hi"),)))   # [{'role': 'user', ...}]
        ```
    """
    if request.tools:
        raise UnsupportedFeatureError("the local model has no native tool calling; use a text-based adapter")
    messages = []
    system = _text_of(request.system)
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role == "tool":
            raise UnsupportedFeatureError("the local model has no native tool calling (got a tool message)")
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": _text_of(message.parts)})
    return messages


def json_schema_of(response_format: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
    """Read a ``response_format``: ``(wants_json, schema)``.

    Accepts DSPy's canonical ``{"type": "json_schema", "schema": ...}``, OpenAI's nested
    ``{"type": "json_schema", "json_schema": {"schema": ...}}`` and ``{"type": "json_object"[, "schema": ...]}``.

    Example:
        ```python
        json_schema_of({"type": "json_object"})  # (True, None): any JSON object
        ```
    """
    if not response_format:
        return False, None
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = response_format.get("schema")
        if schema is None and isinstance(response_format.get("json_schema"), dict):
            schema = response_format["json_schema"].get("schema")
        return True, schema
    if kind == "json_object":
        return True, response_format.get("schema")
    if kind in (None, "text"):
        return False, None
    raise UnsupportedFeatureError(f"the local model does not support response_format type {kind!r}")
