"""The ops endpoints a worker or relay serves beside its work: health, readiness and metrics."""

from __future__ import annotations

import httpx
from quartet_shared.net import free_port
from quartet_shared.ops import OpsServer, ops_server


def test_serves_health_readiness_and_metrics() -> None:
    """/healthz answers while the block runs; /readyz reports each check; /metrics is Prometheus text."""
    port = free_port()
    state = {"kafka": True}
    checks = {"kafka": lambda: state["kafka"], "database": lambda: True}
    with ops_server("test worker", "127.0.0.1", port, checks) as server:
        assert server.serving
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/healthz")
        assert health.json() == {"status": "ok"}
        assert "server" not in health.headers  # no banner naming the server software
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"kafka": "ok", "database": "ok"}
        state["kafka"] = False
        unready = httpx.get(f"{base}/readyz")
        assert unready.status_code == 503
        assert unready.headers["content-type"].startswith("application/problem+json")
        assert unready.json()["checks"]["kafka"] == "unreachable"
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200 and "quartet_messages_consumed_total" in metrics.text
    assert not server.serving
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the ops server still answers after the block")


def test_a_taken_port_does_not_stop_the_role() -> None:
    """When the port is taken (two roles on one host), the second server reports it and the role goes on."""
    port = free_port()
    with ops_server("first", "127.0.0.1", port) as first:
        second = OpsServer("second", "127.0.0.1", port)
        assert second.start(timeout_s=5) is False
        assert not second.serving
        second.stop()
        assert first.serving
