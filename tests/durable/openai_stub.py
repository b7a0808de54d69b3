"""A scripted OpenAI-compatible chat server on loopback whose calls fail on demand, like a flaky model server.

It answers ``POST /v1/chat/completions`` the way ``tests.fakes.ScriptedChatModel`` does (the example sentence the
prompt gives for each fact; ``first`` rewrites a first attempt), and answers ``503`` to a prompt that contains one
of ``refuse_for`` (a string, or a tuple of strings it must all contain), or to every prompt while ``down``. The
client is the real one (``langchain-openai``, its ``openai`` SDK), so the run sees the errors a real server gives.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HINT = re.compile(r'\(for example: "([^"]*)"\)')
CORRECTION = "It has these errors"


class FlakyOpenAI:
    """What the server does; change the attributes between runs (or during one) to script it."""

    def __init__(self, first: Callable[[str], str] | None = None) -> None:
        self.first = first
        self.refuse_for: tuple[str | tuple[str, ...], ...] = ()
        self.down = False
        self.down_after: int | None = None  # every call after this many goes down
        self.calls = 0
        self.refused = 0
        self._lock = threading.Lock()

    def reply(self, messages: list[dict[str, Any]]) -> str | None:
        """The text for one request, or None for a 503."""
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        with self._lock:
            self.calls += 1
            down = self.down or (self.down_after is not None and self.calls > self.down_after)
            refused = any(all(s in prompt for s in ((r,) if isinstance(r, str) else r)) for r in self.refuse_for)
            if down or refused:
                self.refused += 1
                return None
        text = " ".join(_HINT.findall(str(messages[1]["content"])))
        if self.first is not None and CORRECTION not in prompt:
            text = self.first(text)
        return text


def _handler(script: FlakyOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            text = script.reply(body.get("messages", []))
            if text is None:
                self._send(503, {"error": {"message": "server overloaded", "type": "server_error"}})
                return
            words = len(text.split())
            self._send(200, {"id": "stub", "object": "chat.completion", "created": 0, "model": body.get("model"),
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": words,
                                       "total_tokens": 10 + words}})  # fmt: skip

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

    return Handler


@contextmanager
def serve(script: FlakyOpenAI) -> Iterator[str]:
    """Serve ``script`` on 127.0.0.1 (a free port) for the block; yields the base URL (``http://.../v1``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
