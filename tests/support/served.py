"""An ASGI app served by uvicorn in a thread on a free loopback port, for tests of HTTP clients."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from quartet_shared.net import free_port


class Served:
    """An ASGI app served by uvicorn in a thread on a free port."""

    def __init__(self, api: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
