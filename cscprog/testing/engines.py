"""Deterministic offline DSPy engines for tests, and the prompt-answering code shared with the test server.

DSPy 3.4 renders a signature either in the ChatAdapter format (``[[ ## field ## ]]`` sections) or in the
JSONAdapter format (a JSON object). Both :class:`ScriptedEngine` and
:class:`cscprog.testing.openai_server.OpenAICompatibleServer` read the rendered prompt into an
:class:`AnswerRequest`, ask an ``answer(field, request) -> str`` function for every output field, and render
the reply in the format the prompt asked for (:func:`render_reply`).

Example:
    ```python
    import dspy
    from cscprog.testing import scripted_lm

    lm = scripted_lm(lambda field, request: request.inputs["question"].upper())
    with dspy.context(lm=lm):
        print(dspy.Predict("question -> answer")(question="hi").answer)  # HI
    print(lm.engine.calls)  # 1
    ```
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage

__all__ = [
    "AnswerFn",
    "AnswerRequest",
    "AsyncScriptedEngine",
    "ScriptItem",
    "ScriptedEngine",
    "default_answer",
    "parse_prompt",
    "render_reply",
    "scripted_lm",
]

_CHAT_REMINDER = re.compile(r"`\[\[ ## (\w+) ## \]\]`")
_JSON_REMINDER = re.compile(r"Respond with a JSON object in the following order of fields: (.*)", re.DOTALL)
_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n")
# "1. `name` (type): description": the type ends at the first ")" followed by ":" or the end of the line, so
# parentheses in the description (or inside a Literal value) do not leak into it.
_FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \((.*?)\)(?::|$)", re.MULTILINE)
_LITERAL = re.compile(r"Literal\[(.*)\]")


@dataclass(frozen=True)
class AnswerRequest:
    """One prompt as the answering function sees it, whatever transport carried it.

    Attributes:
        model: The model string of the request (``scripted/model``, or the ``model`` of the HTTP body).
        system: The system message text.
        messages: Every non-system message as ``(role, text)`` pairs, demos included.
        last: The text of the last message (the current user turn).
        format: ``"chat"`` (``[[ ## field ## ]]`` sections), ``"json"`` (a JSON object) or ``"plain"``.
        inputs: The input fields of the current turn, by name.
        outputs: The output fields the prompt asks for, in order.
        output_types: The declared type of every output field (``str``, ``int``, ``Literal['a', 'b']``).
        temperature: The sampling temperature, if any.
        max_tokens: The completion limit, if any.
        seed: The sampling seed, if any.
        index: 0-based number of this request at its engine or server.
    """

    model: str
    system: str
    messages: tuple[tuple[str, str], ...]
    last: str
    format: str
    inputs: dict[str, str]
    outputs: tuple[str, ...]
    output_types: dict[str, str]
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    index: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


AnswerFn = Callable[[str, AnswerRequest], str]
"""``answer(field, request) -> str``: the value of one output field."""

ScriptItem = BaseException | str | None
"""One scripted step: an exception to raise, a raw reply text to return verbatim, or None (answer normally)."""


def parse_prompt(
    model: str,
    system: str,
    messages: Sequence[tuple[str, str]],
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    index: int = 0,
) -> AnswerRequest:
    """Read a DSPy-rendered prompt into an :class:`AnswerRequest`.

    Args:
        model: The model string.
        system: The system message text ("" when absent).
        messages: The other messages as ``(role, text)``.
        temperature: The request's temperature.
        max_tokens: The request's completion limit.
        seed: The request's seed.
        index: The number of the request at its engine or server.

    Returns:
        The parsed view.

    Example:
        ```python
        request = parse_prompt("m", "", [("user", "[[ ## q ## ]]\\nhi\\n\\nRespond with ... `[[ ## a ## ]]` ...")])
        assert request.inputs == {"q": "hi"} and request.outputs == ("a",)
        ```
    """
    last = messages[-1][1] if messages else ""
    json_match = _JSON_REMINDER.search(last)
    if json_match:
        fmt = "json"
        outputs = tuple(re.findall(r"`(\w+)`", json_match.group(1)))
        body = last[: json_match.start()]
    else:
        outputs = tuple(name for name in _CHAT_REMINDER.findall(last) if name != "completed")
        fmt = "chat" if outputs else "plain"
        marker = last.find("Respond with the corresponding output fields")
        body = last if marker < 0 else last[:marker]
    inputs: dict[str, str] = {}
    sections = list(_SECTION.finditer(body))
    for position, match in enumerate(sections):
        end = sections[position + 1].start() if position + 1 < len(sections) else len(body)
        inputs[match.group(1)] = body[match.end() : end].strip()
    declared = dict(_FIELD_LINE.findall(system.split("Your output fields are:", 1)[-1])) if system else {}
    output_types = {name: declared.get(name, "str") for name in outputs}
    return AnswerRequest(
        model=model,
        system=system,
        messages=tuple((role, text) for role, text in messages),
        last=last,
        format=fmt,
        inputs=inputs,
        outputs=outputs,
        output_types=output_types,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        index=index,
    )


def default_answer(field: str, request: AnswerRequest) -> str:
    """A deterministic value for ``field`` that parses as its declared type.

    Strings are ``"<field>-<8 hex digits of the prompt's hash>"``; ints, floats, bools, lists, dicts and
    ``Literal`` types get a valid value.

    Example:
        ```python
        lm = scripted_lm(default_answer)
        ```
    """
    digest = hashlib.sha256(request.last.encode("utf-8")).hexdigest()
    kind = request.output_types.get(field, "str")
    literal = _LITERAL.search(kind)
    if literal:
        first = literal.group(1).split(",")[0].strip()
        return first.strip("'\"")
    if kind == "int":
        return str(int(digest[:4], 16) % 10)
    if kind == "float":
        return "0.5"
    if kind == "bool":
        return "True"
    if kind.startswith("list"):
        return "[]"
    if kind.startswith("dict"):
        return "{}"
    return f"{field}-{digest[:8]}"


def _json_value(value: str, kind: str) -> Any:
    if kind == "str" or _LITERAL.search(kind):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def render_reply(request: AnswerRequest, answer: AnswerFn | None = None) -> str:
    """The reply text to ``request``: every output field answered by ``answer``, in the prompt's format.

    Args:
        request: The parsed prompt.
        answer: ``answer(field, request) -> str``; :func:`default_answer` when None.

    Returns:
        ChatAdapter sections ending with ``[[ ## completed ## ]]``, a JSON object, or (for a prompt that
        names no output field) the answer to the pseudo-field ``"text"``.

    Example:
        ```python
        text = render_reply(parse_prompt("m", "", [("user", "hello")]), lambda f, r: "hi")  # "hi"
        ```
    """
    answer = answer or default_answer
    if request.format == "json":
        payload = {
            name: _json_value(str(answer(name, request)), request.output_types[name]) for name in request.outputs
        }
        return json.dumps(payload, ensure_ascii=False)
    if request.format == "chat":
        parts = [f"[[ ## {name} ## ]]\n{answer(name, request)}" for name in request.outputs]
        return "\n\n".join([*parts, "[[ ## completed ## ]]"])
    return str(answer("text", request))


def _text(parts: Any) -> str:
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    return "".join(getattr(part, "text", "") or "" for part in parts)


class ScriptedEngine:
    """A deterministic offline DSPy 3.4 engine (``complete(Request) -> Response``).

    Every output field is answered by ``answer(field, request)``; a ``script`` of steps, consumed one per
    call, can make calls raise an exception or return a raw text instead (a parse failure). Thread-safe.

    Attributes:
        requests: Every request received, as :class:`AnswerRequest` (the lm15 ``Request`` is in
            ``extra["request"]``).

    Example:
        ```python
        from dspy.utils.exceptions import LMRateLimitError

        engine = ScriptedEngine(script=[LMRateLimitError("slow down", retry_after=0.01), "no fields here"])
        lm = dspy.LM("scripted/model", engine=engine, async_engine=AsyncScriptedEngine(engine))
        ```
    """

    def __init__(self, answer: AnswerFn | None = None, *, script: Iterable[ScriptItem] = ()) -> None:
        self.answer = answer or default_answer
        self._script: deque[ScriptItem] = deque(script)
        self._lock = threading.Lock()
        self._requests: list[AnswerRequest] = []

    @property
    def requests(self) -> list[AnswerRequest]:
        """A snapshot of the requests received so far."""
        with self._lock:
            return list(self._requests)

    @property
    def calls(self) -> int:
        """The number of requests received (failed ones included)."""
        with self._lock:
            return len(self._requests)

    def push(self, *items: ScriptItem) -> None:
        """Append steps to the script (an exception, a raw text, or None for a normal answer)."""
        with self._lock:
            self._script.extend(items)

    def complete(self, request: Any) -> Response:
        """Answer one lm15 ``Request`` (DSPy calls this once per attempt and candidate)."""
        config = request.config
        with self._lock:
            view = parse_prompt(
                request.model,
                _text(request.system),
                [(message.role, message.text or "") for message in request.messages],
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=config.seed,
                index=len(self._requests),
            )
            view.extra["request"] = request
            self._requests.append(view)
            step = self._script.popleft() if self._script else None
        if isinstance(step, BaseException):
            raise step
        text = step if isinstance(step, str) else render_reply(view, self.answer)
        prompt_chars = len(view.system) + sum(len(text) for _, text in view.messages)
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=max(1, prompt_chars // 4), output_tokens=max(1, len(text) // 4)),
        )

    def stream(self, request: Any) -> Any:
        """Streaming is not scripted."""
        raise NotImplementedError("ScriptedEngine does not stream")

    def close(self) -> None:
        """Nothing to release."""


class AsyncScriptedEngine:
    """The async counterpart of a :class:`ScriptedEngine`, sharing its script and its recorded requests.

    Example:
        ```python
        engine = ScriptedEngine()
        lm = dspy.LM("scripted/model", engine=engine, async_engine=AsyncScriptedEngine(engine))
        ```
    """

    def __init__(self, engine: ScriptedEngine) -> None:
        self.engine = engine

    async def complete(self, request: Any) -> Response:
        """Answer one lm15 ``Request``."""
        return self.engine.complete(request)

    def stream(self, request: Any) -> Any:
        """Streaming is not scripted."""
        raise NotImplementedError("AsyncScriptedEngine does not stream")

    async def aclose(self) -> None:
        """Nothing to release."""


def scripted_lm(
    answer: AnswerFn | None = None,
    model: str = "scripted/model",
    *,
    script: Iterable[ScriptItem] = (),
    **lm_kwargs: Any,
) -> dspy.LM:
    """A ``dspy.LM`` on a :class:`ScriptedEngine` (sync and async), cached like any managed LM.

    Args:
        answer: ``answer(field, request) -> str``; :func:`default_answer` when None.
        model: The model string (any ``provider/name``).
        script: Initial script steps (see :class:`ScriptedEngine`).
        **lm_kwargs: More ``dspy.LM`` arguments (``temperature``, ``max_tokens``, ``cache``...);
            ``num_retries`` defaults to 0.

    Returns:
        The LM; its engine is ``lm.engine``.

    Example:
        ```python
        lm = scripted_lm(lambda field, request: "42", temperature=0.0)
        ```
    """
    engine = ScriptedEngine(answer, script=script)
    lm_kwargs.setdefault("num_retries", 0)
    return dspy.LM(model, engine=engine, async_engine=AsyncScriptedEngine(engine), **lm_kwargs)
