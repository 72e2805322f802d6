"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks, with fault injection.

It serves ``POST /v1/chat/completions`` and ``GET /v1/models`` from a background thread, answers DSPy
prompts exactly as :class:`cscprog.testing.ScriptedEngine` does (the same :func:`render_reply`), records
every request (method, path, headers, JSON body), and can inject faults (:mod:`cscprog.testing.faults`):
``429`` (with ``Retry-After``), ``500``, ``401`` (a rejected key), ``timeout`` (the answer comes after the
client gave up), ``garbage`` (a reply no adapter parses), ``malformed`` and ``empty`` (HTTP 200 with a body
that is cut-off JSON, or nothing).

It is built on the standard library's ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive, one thread per
connection). Compared with uvicorn+FastAPI on a 2-core machine it served more calls a second, starts faster and
needs no extra dependency.

Example:
    ```python
    import dspy
    from cscprog.testing import OpenAICompatibleServer

    with OpenAICompatibleServer(answer=lambda field, request: "hello", latency=0.1) as server:
        server.inject("429", "500")  # the next two requests fail, the third succeeds
        lm = dspy.LM("openai/test-model", api_base=server.url, api_key="sk-test", num_retries=3)
        print(dspy.Predict("question -> answer")(question="hi", lm=lm).answer, server.count)  # hello 3
    ```
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cscprog.testing.engines import AnswerFn, parse_prompt, render_reply
from cscprog.testing.faults import MALFORMED_BODY, Fault, FaultSpec, RecordedRequest

__all__ = ["Fault", "FaultSpec", "OpenAICompatibleServer", "RecordedRequest"]

logger = logging.getLogger(__name__)

def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, owner: OpenAICompatibleServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "cscprog-test-openai/1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._connections_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._connections_closed(self.connection)

    def handle_one_request(self) -> None:
        if self.server.owner._stopping.is_set():
            self.close_connection = True
            return
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("%s " + format, self.address_string(), *args)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(payload).encode("utf-8"), headers)

    def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        owner = self.server.owner
        owner._record(self, None, None)
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [{"id": owner.model_name, "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        owner = self.server.owner
        body = self._body()
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            owner._record(self, body, None)
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        index, fault = owner._next(body)
        owner._record(self, body, fault)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send_json(400, {"error": {"message": "body must be a JSON object with messages", "type": "invalid"}})
            return
        if owner.latency:
            owner._stopping.wait(owner.latency)
        if fault is not None and fault.kind == "429":
            retry = f"{fault.retry_after:g}"
            error = {"message": "rate limit exceeded (injected)", "type": "rate_limit_error", "code": "rate_limit"}
            self._send_json(429, {"error": error}, {"Retry-After": retry})
            return
        if fault is not None and fault.kind == "500":
            self._send_json(500, {"error": {"message": "internal server error (injected)", "type": "server_error"}})
            return
        if fault is not None and fault.kind == "401":
            error = {"message": "Incorrect API key provided (injected)", "type": "invalid_request_error",
                     "code": "invalid_api_key"}
            self._send_json(401, {"error": error})
            return
        if fault is not None and fault.kind in ("malformed", "empty"):
            self._send_bytes(200, MALFORMED_BODY if fault.kind == "malformed" else b"")
            return
        if fault is not None and fault.kind == "timeout":
            owner._stopping.wait(owner.timeout_delay if fault.delay is None else fault.delay)
        self._send_json(200, owner._completion(body, index, fault))


class OpenAICompatibleServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, on a free port, in a background thread.

    Args:
        answer: ``answer(field, request) -> str`` for every output field (see
            :class:`cscprog.testing.engines.AnswerRequest`); a deterministic default when None.
        latency: Seconds every chat completion waits before answering.
        model_name: The model id ``/v1/models`` lists and completions report.
        faults: Faults to inject, one per chat completion in order (a queue: strings such as ``"429"``,
            :class:`Fault` objects, None for a normal answer), or a callable ``(index, body) -> fault``.
        timeout_delay: Seconds a ``timeout`` fault waits (set it above the client's timeout).

    Attributes:
        url: ``http://127.0.0.1:PORT/v1``, the ``api_base`` for clients.

    Example:
        ```python
        with OpenAICompatibleServer(latency=0.1, faults=["500"]) as server:
            ...  # point an LM at server.url; server.requests lists what arrived
        ```
    """

    def __init__(
        self,
        answer: AnswerFn | None = None,
        *,
        latency: float = 0.0,
        model_name: str = "test-model",
        faults: Iterable[FaultSpec] | Callable[[int, Any], FaultSpec] | None = None,
        timeout_delay: float = 5.0,
    ) -> None:
        if latency < 0 or timeout_delay < 0:
            raise ValueError("latency and timeout_delay must be >= 0")
        self.answer = answer
        self.latency = latency
        self.model_name = model_name
        self.timeout_delay = timeout_delay
        self._fault_fn = faults if callable(faults) else None
        self._faults: deque[Fault | None] = deque(
            Fault.of(item) for item in ([] if faults is None or callable(faults) else faults)
        )
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._completions = 0
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> OpenAICompatibleServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread (idempotent)."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="openai-test-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the listening socket and every open (keep-alive) connection (idempotent).

        Requests in flight are abandoned; a client's pooled connection cannot reach the stopped server.
        """
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAICompatibleServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # inspection and faults -------------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        """The number of requests received (all paths, faulted ones included)."""
        with self._lock:
            return len(self._requests)

    def inject(self, *faults: FaultSpec) -> None:
        """Queue faults for the next chat completions, in order (None: one normal answer)."""
        with self._lock:
            self._faults.extend(Fault.of(item) for item in faults)

    def clear(self) -> None:
        """Forget recorded requests and queued faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    # internals ------------------------------------------------------------------------------------------------
    def _connections_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _connections_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _next(self, body: Any) -> tuple[int, Fault | None]:
        with self._lock:
            index = self._completions
            self._completions += 1
            fault = self._faults.popleft() if self._faults else None
        if fault is None and self._fault_fn is not None:
            fault = Fault.of(self._fault_fn(index, body))
        return index, fault

    def _record(self, handler: BaseHTTPRequestHandler, body: Any, fault: Fault | None) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        entry = RecordedRequest(
            handler.command, handler.path, headers, body, fault.kind if fault else None, time.time()
        )
        with self._lock:
            self._requests.append(entry)

    def _completion(self, body: dict[str, Any], index: int, fault: Fault | None) -> dict[str, Any]:
        system = "\n".join(_content_text(m.get("content")) for m in body["messages"] if m.get("role") == "system")
        messages = [
            (str(m.get("role")), _content_text(m.get("content"))) for m in body["messages"] if m.get("role") != "system"
        ]
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        request = parse_prompt(
            str(body.get("model", self.model_name)),
            system,
            messages,
            temperature=body.get("temperature"),
            max_tokens=max_tokens,
            seed=body.get("seed"),
            index=index,
        )
        n = body.get("n") or 1
        choices = []
        for choice in range(int(n)):
            text = fault.text if fault is not None and fault.kind == "garbage" else render_reply(request, self.answer)
            choices.append(
                {"index": choice, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            )
        prompt_tokens = max(1, (len(system) + sum(len(text) for _, text in messages)) // 4)
        completion_tokens = max(1, sum(len(c["message"]["content"]) for c in choices) // 4)
        return {
            "id": f"chatcmpl-{index}",
            "object": "chat.completion",
            "created": 0,
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
