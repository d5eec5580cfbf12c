"""A real HTTP server on 127.0.0.1, serving whatever a test last published at a path (another channel's
calendar, say), and counting the requests it received."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHTTP:
    def __init__(self) -> None:
        self._pages: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="loopback-http", daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def new_path(self) -> str:
        return f"/calendars/{uuid.uuid4().hex}.ics"

    def publish(self, path: str, body: bytes, status: int = 200) -> str:
        """Serve `body` at `path` from now on; answers the full URL."""
        with self._lock:
            self._pages[path] = (status, body)
        return self.origin + path

    def fetched(self, url: str) -> int:
        with self._lock:
            return self.hits[url.removeprefix(self.origin)]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with loopback._lock:
                    loopback.hits[self.path] += 1
                    status, body = loopback._pages.get(self.path, (404, b"not here"))
                self.send_response(status)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests assert on what was served, not on access logs."""

        return Handler
