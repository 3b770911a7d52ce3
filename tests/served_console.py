"""The console app served by a real uvicorn on 127.0.0.1 in a thread of this process, for the tests
that need HTTP (live updates, load, a browser): `with served_console(settings) as url: ...`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from console.app import create_app
from console.settings import ConsoleSettings
from local.stack import free_port


@contextmanager
def served_console(settings: ConsoleSettings, name: str = "console") -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
