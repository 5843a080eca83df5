"""A real HTTP server that answers from a script: for what a client does with each answer.

It stands where a hub would, for the answers a live hub is not made to give
on demand (a 503, a Retry-After longer than a client waits).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest


class Scripted(BaseHTTPRequestHandler):
    """Answers each GET with the next scripted (status, headers, body); records when it came."""

    script: ClassVar[list[tuple[int, dict[str, str], bytes]]]
    seen: ClassVar[list[float]]

    def do_GET(self) -> None:
        type(self).seen.append(time.monotonic())
        status, headers, body = type(self).script.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[Scripted]]]:
    handler = type("Handler", (Scripted,), {"script": [], "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()
