"""A fake OpenAI-compatible chat-completions server for tests: real HTTP on 127.0.0.1, scripted replies.

Tests queue replies (`fake.script(text_reply("..."), tool_call_reply(card), http_error_reply(500), ...)`);
each POST to /v1/chat/completions takes the next one and is recorded (path, headers, JSON body) so a
test can assert the system prompt, the schema sent, the model name and the Authorization header.
An empty queue answers HTTP 500 "no scripted reply left", so a test that sends one request too many
fails loudly. It must never reach the network beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

COMPLETIONS_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class ScriptedReply:
    """One HTTP answer: a status, a body (dict → JSON, str/bytes → as is) and an optional delay."""

    status: int = 200
    body: Any = None
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.json["messages"]

    @property
    def system_prompt(self) -> str:
        return next(m["content"] for m in self.messages if m["role"] == "system")


def completion(message: Mapping[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    """A chat.completion body in OpenAI's shape around one assistant message."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def text_reply(content: str, finish_reason: str = "stop") -> ScriptedReply:
    return ScriptedReply(body=completion({"content": content, "refusal": None}, finish_reason))


def json_card_reply(card: Mapping[str, Any] | str) -> ScriptedReply:
    """The card as message content, as a server honouring response_format json_schema sends it."""
    content = card if isinstance(card, str) else json.dumps(card)
    return text_reply(content)


def tool_call_reply(card: Mapping[str, Any] | str, name: str = "submit_values_card") -> ScriptedReply:
    arguments = card if isinstance(card, str) else json.dumps(card)
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return ScriptedReply(body=completion({"content": None, "tool_calls": [call]}, "tool_calls"))


def malformed_json_reply() -> ScriptedReply:
    return text_reply('{"title": "Honest Care", "description": "cut off mid-way", "policies": ["MOMENTS')


def refusal_reply(text: str = "I'm sorry, I can't help with that.") -> ScriptedReply:
    return ScriptedReply(body=completion({"content": None, "refusal": text}))


def content_filter_reply() -> ScriptedReply:
    return ScriptedReply(body=completion({"content": ""}, finish_reason="content_filter"))


def http_error_reply(status: int = 500, message: str = "internal server error") -> ScriptedReply:
    return ScriptedReply(status=status, body={"error": {"message": message, "type": "server_error"}})


def not_json_reply() -> ScriptedReply:
    return ScriptedReply(body="<html><body>Bad gateway</body></html>", content_type="text/html")


def slow_reply(delay: float, content: str = "Sorry for the wait.") -> ScriptedReply:
    reply = text_reply(content)
    return ScriptedReply(status=reply.status, body=reply.body, delay=delay)


class FakeLlm:
    """The running server; `base_url` ends in /v1 like real OpenAI-compatible endpoints."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._queue: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        # Set at close so a handler sleeping out a slow reply wakes at once instead of delaying teardown.
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-llm", daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: ScriptedReply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, request: RecordedRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            if request.path != COMPLETIONS_PATH:
                return http_error_reply(404, f"fake_llm: no route {request.path}")
            if not self._queue:
                return http_error_reply(500, "fake_llm: no scripted reply left")
            return self._queue.popleft()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                recorded = RecordedRequest(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                reply = fake._next(recorded)
                if reply.delay and fake._closing.wait(reply.delay):
                    return
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                elif isinstance(reply.body, str):
                    payload = reply.body.encode()
                else:
                    payload = reply.body or b""
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its timeout fired); nothing to answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base)
                pass  # keep test output clean

        return Handler


@pytest.fixture(name="fake_llm")
def fake_llm_server() -> Iterator[FakeLlm]:
    """A running FakeLlm, closed after the test. Import either name to register the `fake_llm` fixture;
    `fake_llm_server` keeps ruff's F811 quiet in test functions that take a `fake_llm` argument."""
    server = FakeLlm()
    try:
        yield server
    finally:
        server.close()


fake_llm = fake_llm_server
