"""The real HTTP stack for tests that need it: an app served by uvicorn on a loopback port, in a thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from service.app import create_app
from service.cli import UVICORN_OPTIONS
from service.settings import Settings


@contextmanager
def serving(app: Any, port: int = 0, send_buffer_bytes: int | None = None, **config: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port (a free one unless given) in a thread; yields its base URL,
    stops it on exit. The same port can be served again right after (SO_REUSEADDR), as a restarted server would.

    `send_buffer_bytes` caps the kernel's send buffer of every accepted connection (they inherit it from the
    listening socket), so that a client that stops reading backs up into the server within a few frames instead
    of the megabytes Linux would otherwise queue for it.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if send_buffer_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        server = uvicorn.Server(uvicorn.Config(app, backlog=1024, **{**UVICORN_OPTIONS, **config}))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("uvicorn stopped during start-up")
                threading.Event().wait(0.01)
            host, port = sock.getsockname()
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)


@contextmanager
def live_server(settings: Settings, port: int = 0) -> Iterator[str]:
    """Serve a fresh app for `settings`; yields its base URL and stops it on exit."""
    with serving(create_app(settings), port, limit_concurrency=None) as url:
        yield url
