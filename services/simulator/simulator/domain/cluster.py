"""Which node a cluster fault strikes, and toxics' attributes: pure choices, made when the fault fires."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from quartet_shared.topics import PartitionState, main_leader

from simulator.domain.scenario import BandwidthFault, BrokerChoice, KillLeaderFault, LatencyFault

# Toxiproxy's bandwidth toxic counts its rate in KB/s of 1000 bytes.
TOXIPROXY_KB = 1000


class NoTarget(RuntimeError):
    """The fault has no node to strike (a node the cluster does not have, a topic with no leader)."""


def choose_node(
    choice: BrokerChoice | KillLeaderFault, nodes: Sequence[int], pick: float, partitions: Iterable[PartitionState]
) -> int:
    """The node a fault strikes: the one named, the leader of most of the topic's `partitions`, or one drawn by
    `pick` in [0, 1) among `nodes`."""
    if not nodes:
        raise NoTarget("the cluster has no nodes")
    if isinstance(choice, KillLeaderFault) or choice.topic is not None:
        leader = main_leader(partitions)
        if leader is None:
            raise NoTarget(f"no partition of {choice.topic} has a leader")
        return leader
    if isinstance(choice.node, int):
        if choice.node not in nodes:
            raise NoTarget(f"node {choice.node} is not in the cluster (nodes {sorted(nodes)})")
        return choice.node
    ordered = sorted(nodes)
    return ordered[min(int(pick * len(ordered)), len(ordered) - 1)]


def under_replicated(partitions: Iterable[PartitionState]) -> list[PartitionState]:
    """The partitions with no leader or a replica out of sync."""
    return [p for p in partitions if not p.in_sync]


def toxic_attributes(fault: LatencyFault | BandwidthFault) -> tuple[str, dict[str, int]]:
    """The Toxiproxy toxic type and attributes for a latency or bandwidth fault."""
    if isinstance(fault, LatencyFault):
        return "latency", {"latency": fault.ms, "jitter": fault.jitter_ms}
    return "bandwidth", {"rate": max(1, round(fault.kib_per_s * 1024 / TOXIPROXY_KB))}
