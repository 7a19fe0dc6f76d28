"""Loopback ports for processes a service starts (the simulator's workers) and for the tooling's servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
