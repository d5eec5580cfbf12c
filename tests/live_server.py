"""The real HTTP stack for tests that need it: the app served by uvicorn on a loopback port, in a thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from service.app import create_app
from service.settings import Settings


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Serve a fresh app for `settings`; yields its base URL and stops it on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        config = uvicorn.Config(create_app(settings), log_config=None, backlog=1024, limit_concurrency=None)
        server = uvicorn.Server(config)
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
