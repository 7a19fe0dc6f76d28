"""What the broker says about topics and consumer groups, sampled for the console's topology page."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from kafka import TopicPartition
from quartet_shared.clients import kafka_admin, kafka_consumer

from simulator.console.model import ClusterSample, GroupState, TopicState
from simulator.settings import SimulatorSettings


def _member(member: Mapping[str, Any]) -> str:
    return f"{member.get('client_id') or member.get('member_id')}@{member.get('client_host', '?')}"


def sample_cluster(settings: SimulatorSettings) -> ClusterSample:
    """Every topic's partitions and end offsets, and every consumer group's members, committed offsets and lag."""
    admin = kafka_admin(settings, client_id="simulator-console", request_timeout_ms=5000)
    reader = kafka_consumer(settings, client_id="simulator-console", request_timeout_ms=5000)
    try:
        names = sorted(t for t in admin.list_topics() if not t.startswith("__"))
        partitions = [TopicPartition(t, p) for t in names for p in sorted(reader.partitions_for_topic(t) or ())]
        ends = {tp: int(end) for tp, end in reader.end_offsets(partitions).items()}
        topics = tuple(
            TopicState(t, sum(1 for tp in ends if tp.topic == t), sum(e for tp, e in ends.items() if tp.topic == t))
            for t in names
        )
        group_ids = sorted(str(g["group_id"]) for g in admin.list_groups())
        described = admin.describe_groups(group_ids) if group_ids else {}
        offsets = admin.list_group_offsets(dict.fromkeys(group_ids)) if group_ids else {}
        groups = tuple(_group(g, described.get(g, {}), offsets.get(g, {}), ends) for g in group_ids)
        return ClusterSample(time.time(), topics, groups)
    finally:
        for client in (reader, admin):
            with contextlib.suppress(Exception):
                client.close()


def _group(group: str, info: Mapping[str, Any], committed: Mapping[Any, Any], ends: Mapping[Any, int]) -> GroupState:
    done = {tp: int(meta.offset) for tp, meta in committed.items() if meta is not None and meta.offset >= 0}
    return GroupState(
        group=group,
        state=str(info.get("group_state") or info.get("state") or "unknown"),
        members=tuple(sorted(_member(m) for m in info.get("members") or [])),
        topics=tuple(sorted({tp.topic for tp in done})),
        committed=sum(done.values()),
        lag=sum(max(0, ends[tp] - offset) for tp, offset in done.items() if tp in ends),
    )
