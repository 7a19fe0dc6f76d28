"""Latency and bandwidth on a Compose Kafka node: Linux traffic control in the node's network namespace.

Compose puts no fault proxy in front of a node, so (as Pumba does) a short-lived helper container joins the
node's network namespace (`network_mode="container:<id>"`) with NET_ADMIN and sets the root queueing discipline
of the node's interfaces: netem's delay for latency, a token bucket filter (tbf) for bandwidth, both chained
when both are on. A root qdisc shapes what the node sends, the direction of the native proxy's downstream toxics
that the scenarios add; it shapes what the node sends to the other nodes too, where the native proxy sits only
between the clients and the node.

The helper is an image of its own (deploy/docker/netem, iproute2 on the debootstrap base) rather than iproute2
in the Kafka image with `tc` exec'd in the broker's container: the broker then runs without NET_ADMIN in every
profile, and the only container that holds the capability lives for one `tc` script.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.domain.cluster import TOXIPROXY_KB

# The helper's tag: tools/quartet_tools/images.py builds it (`make images`).
NETEM_IMAGE = "quartet/netem:bookworm"
# The toxics traffic control stands in for; the others (timeouts, resets, slicing) need a proxy.
SHAPED_KINDS = ("latency", "bandwidth")
# The longest a packet waits in the token bucket before it is dropped (TCP then slows down to the rate).
TBF_LATENCY = "1s"
# The bucket holds at least a few full-size frames, or a rate of a few KiB/s could never send one.
MIN_BURST_BYTES = 4096
Toxic = tuple[str, Mapping[str, Any]]


def qdisc_script(devices: Iterable[str], toxics: Iterable[Toxic]) -> str:
    """The shell script that leaves each device with exactly these toxics (none: the kernel's default qdisc).

    Delays and Toxiproxy's rates (KB/s, 1000 bytes) keep their meaning: latencies add up as stacked toxics do,
    the smallest rate holds."""
    toxics = list(toxics)
    delays = [a for kind, a in toxics if kind == "latency"]
    rates = [int(a["rate"]) * TOXIPROXY_KB for kind, a in toxics if kind == "bandwidth"]
    lines = []
    for device in devices:
        # Deleting the default root qdisc fails ("handle of zero"), as after a node's restart: nothing to undo.
        lines.append(f"tc qdisc del dev {shlex.quote(device)} root 2>/dev/null || true")
        parent = ["root", "handle", "1:"]
        if delays:
            delay = [f"{sum(int(a['latency']) for a in delays)}ms"]
            jitter = sum(int(a.get("jitter", 0)) for a in delays)
            lines.append(
                shlex.join(
                    ["tc", "qdisc", "add", "dev", device, *parent, "netem", "delay", *delay]
                    + ([f"{jitter}ms"] if jitter else [])
                )
            )
            parent = ["parent", "1:1", "handle", "10:"]
        if rates:
            rate = min(rates)
            bucket = ["rate", f"{rate * 8}bit", "burst", str(max(MIN_BURST_BYTES, rate // 10)), "latency", TBF_LATENCY]
            lines.append(shlex.join(["tc", "qdisc", "add", "dev", device, *parent, "tbf", *bucket]))
    return "\n".join(lines)


def interfaces(container: Any) -> list[str]:
    """The container's interfaces other than loopback: eth0, eth1, ... one for each network it is on."""
    container.reload()
    return [f"eth{n}" for n in range(len(container.attrs["NetworkSettings"]["Networks"]))]


@dataclass
class TrafficControl:
    """Runs the helper image against a container's network namespace through the Docker API `client`."""

    client: Any
    image: str = NETEM_IMAGE
    _netem: bool | None = None

    def refusal(self, kind: str) -> str | None:
        """Why a toxic of `kind` cannot be had here, or None when it can."""
        if kind not in SHAPED_KINDS:
            return f"under Compose only {' and '.join(SHAPED_KINDS)} are shaped (no fault proxy for {kind})"
        if not self._image_present():
            return f"the traffic-control helper image {self.image} is missing (make images builds it)"
        if kind == "latency" and not self._kernel_has_netem():
            return "the engine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), which latency needs under Compose"
        return None

    def shape(self, container: Any, toxics: Iterable[Toxic]) -> None:
        """Leave `container`'s interfaces with exactly `toxics` (ContainerError with tc's message if tc fails)."""
        devices = interfaces(container)
        toxics = list(toxics)
        if not devices:
            # A node cut off has no interface but loopback; its qdiscs went with the interfaces.
            if toxics:
                raise RuntimeError(f"{container.name} is on no network: nothing to shape")
            return
        self._run(["sh", "-ec", qdisc_script(devices, toxics)], f"container:{container.id}")

    def _run(self, command: list[str], network_mode: str) -> None:
        self.client.containers.run(self.image, command, network_mode=network_mode, cap_add=["NET_ADMIN"], remove=True)

    def _image_present(self) -> bool:
        from docker.errors import ImageNotFound

        try:
            self.client.images.get(self.image)
        except ImageNotFound:
            return False
        return True

    def _kernel_has_netem(self) -> bool:
        """Whether netem loads (asked once, in a namespace of the helper's own: the kernel does not change)."""
        if self._netem is None:
            from docker.errors import ContainerError

            try:
                self._run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], "none")
                self._netem = True
            except ContainerError:
                self._netem = False
        return self._netem
