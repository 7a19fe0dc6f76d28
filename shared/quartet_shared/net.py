"""Loopback ports for processes a service starts (the simulator's workers) and for the tooling's servers, and
the `host:port` form of an address."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def host_port(host: str, port: int | str) -> str:
    """`host:port`, an IPv6 address in brackets (`[::1]:8474`), as URLs and listen addresses write it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
