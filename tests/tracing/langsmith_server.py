"""A loopback HTTP server that records what the real langsmith client sends, and reads the runs back out.

The client posts runs to ``/runs/multipart`` (multipart/form-data: one part per run and field, named
``post.<id>``, ``post.<id>.inputs``, ``patch.<id>.outputs``, ...) or, when that is refused, to ``/runs/batch``
(JSON ``{"post": [...], "patch": [...]}``). Both are decoded into one dict per run id.
"""

from __future__ import annotations

import gzip
import json
import threading
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Recorder:
    """Requests received, and the runs they describe (fields of posts and patches merged per run id)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes, dict[str, str]]] = []
        self.runs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def merge(self, run_id: str, fields: dict[str, Any]) -> None:
        with self.lock:
            self.runs.setdefault(run_id, {}).update({k: v for k, v in fields.items() if v is not None})

    def paths(self) -> list[str]:
        return [p for _, p, _, _ in self.requests]


def _decode(body: bytes, headers: dict[str, str]) -> bytes:
    encoding = headers.get("content-encoding", "")
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    return body


def _multipart(recorder: Recorder, body: bytes, content_type: str) -> None:
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        event, _, rest = name.partition(".")
        run_id, _, field = rest.partition(".")
        if event not in ("post", "patch") or not run_id:
            continue
        data = json.loads(payload) if payload.strip() else None
        recorder.merge(run_id, {field: data} if field else (data or {}))


def start(recorder: Recorder) -> tuple[ThreadingHTTPServer, str]:
    """Start the server on 127.0.0.1 (a free port) in a daemon thread; return it and its URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _reply(self, code: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            recorder.requests.append(("GET", self.path, b"", dict(self.headers)))
            if self.path.startswith("/info"):
                self._reply(
                    200,
                    {
                        "version": "0.0.0",
                        "batch_ingest_config": {
                            "use_multipart_endpoint": True,
                            "size_limit": 100,
                            "size_limit_bytes": 20_000_000,
                            "scale_up_qsize_trigger": 1000,
                            "scale_up_nthreads_limit": 1,
                            "scale_down_nempty_trigger": 4,
                        },
                    },
                )
            else:
                self._reply(404, {"detail": "not here"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = _decode(self.rfile.read(length), headers)
            recorder.requests.append(("POST", self.path, body, headers))
            if self.path.startswith("/runs/multipart"):
                _multipart(recorder, body, headers["content-type"])
            elif self.path.startswith("/runs/batch"):
                batch = json.loads(body)
                for kind in ("post", "patch"):
                    for run in batch.get(kind, []):
                        recorder.merge(str(run["id"]), run)
            elif self.path.rstrip("/").endswith("/runs"):
                run = json.loads(body)
                recorder.merge(str(run["id"]), run)
            self._reply(202, {})

        def do_PATCH(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            recorder.requests.append(("PATCH", self.path, body, dict(self.headers)))
            run_id = self.path.rstrip("/").rsplit("/", 1)[-1]
            recorder.merge(run_id, json.loads(body))
            self._reply(200, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
