"""Offline test doubles for cscprog and its users: scripted DSPy engines and a loopback OpenAI server.

Example:
    ```python
    import dspy
    from cscprog.testing import OpenAICompatibleServer, scripted_lm

    lm = scripted_lm(lambda field, request: "ok")          # in-process, no HTTP
    with OpenAICompatibleServer(latency=0.05) as server:    # real HTTP on 127.0.0.1
        remote = dspy.LM("openai/test-model", api_base=server.url, api_key="sk-test")
    ```
"""

from __future__ import annotations

from cscprog.testing.engines import (
    AnswerFn,
    AnswerRequest,
    AsyncScriptedEngine,
    ScriptedEngine,
    default_answer,
    parse_prompt,
    render_reply,
    scripted_lm,
)
from cscprog.testing.openai_server import Fault, OpenAICompatibleServer, RecordedRequest

__all__ = [
    "AnswerFn",
    "AnswerRequest",
    "AsyncScriptedEngine",
    "Fault",
    "OpenAICompatibleServer",
    "RecordedRequest",
    "ScriptedEngine",
    "default_answer",
    "parse_prompt",
    "render_reply",
    "scripted_lm",
]
