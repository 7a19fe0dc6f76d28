"""The console's Kafka side against a real broker: the cluster sample's lag, the live feed's audit, and a capacity
search started, followed and finished through the console."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from quartet_contracts.envelope import Envelope
from quartet_contracts.schemas.training import TrainingRequested
from quartet_contracts.topics import TopicSpec
from quartet_shared.clients import kafka_consumer
from quartet_shared.producer import Producer
from quartet_shared.safe_yaml import safe_load
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics
from simulator.api import create_api
from simulator.console.chaos import Chaos
from simulator.console.cluster import sample_cluster
from simulator.console.feed import LiveFeed, job_topics
from simulator.scenario_io import BUNDLED_DIR
from simulator.settings import SimulatorSettings

from tests.support.auth import ADMIN_KEY
from tests.support.console import page_csrf_token
from tests.support.effects import wait_until
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


def simulator_settings(settings: KernelSettings, prefix: str) -> SimulatorSettings:
    return SimulatorSettings(**settings.model_dump(), topic_prefix=prefix)


def test_the_cluster_sample_finds_a_groups_members_committed_offsets_and_lag(
    settings: KernelSettings, unique: str
) -> None:
    topic, group = f"c{unique}.lag", f"c{unique}.group"
    ensure_topics(settings, [TopicSpec(topic, "console lag test", partitions=1)])
    producer = Producer(settings)
    for i in range(5):
        producer.send_raw(topic, f"k{i}".encode(), b"{}", [])
    producer.flush()
    producer.close()
    consumer = kafka_consumer(settings, group_id=group, client_id=f"member-{unique}")
    try:
        consumer.subscribe([topic])
        wait_until(lambda: bool(consumer.poll(timeout_ms=500) or consumer.assignment()), 30, "an assignment")
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})

        sample = sample_cluster(simulator_settings(settings, ""))
    finally:
        consumer.close()

    state = next(t for t in sample.topics if t.name == topic)
    mine = next(g for g in sample.groups if g.group == group)
    assert (state.partitions, state.end) == (1, 5)
    assert (mine.topics, mine.committed, mine.lag) == ((topic,), 2, 3)
    assert any(m.startswith(f"member-{unique}@") for m in mine.members)


def test_the_live_feed_counts_a_committed_job_request_as_accepted_and_in_flight(
    settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    cfg = simulator_settings(settings, f"c{unique}.")
    for topics in job_topics(cfg).values():
        ensure_topics(cfg, topics.specs())
    feed = LiveFeed(cfg)
    feed.tick()
    assert feed.collector is not None and feed.health.notices == []
    spec = TrainingRequested.model_validate(safe_load((BUNDLED_DIR / "jobs" / "training-linear.yaml").read_text()))
    producer = Producer(cfg)
    try:
        producer.send(
            job_topics(cfg)["training"].jobs, Envelope.of(spec, source="test", id=unique, subject=unique, key=unique)
        )
        producer.flush()
    finally:
        producer.close()

    try:
        wait_until(lambda: feed.audit().accepted == 1, 30, "the request to be seen")
        view = feed.audit()
        assert (view.in_flight, view.completed, view.lost, view.doubled) == (1, 0, 0, 0)
        sample = feed.samples[1]
        assert sample is not None and job_topics(cfg)["training"].jobs in {t.name for t in sample.topics}
    finally:
        feed.stop()


def test_a_short_capacity_search_started_in_the_console_is_followed_live_and_ends_with_a_rate_and_its_plot(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    cfg = SimulatorSettings(**settings.model_dump(), topic_prefix=f"k{unique}.", runs_dir=tmp_path, infra="none")
    form = {
        "kinds": "training",
        "interval_s": "2",
        "hold_s": "2",
        "start_rate": "1",
        "max_rate": "4",
        "max_duration_s": "60",
        "workers": "1",
    }
    seen: list[dict[str, Any]] = []

    def ended() -> bool:
        seen.append(client.get("/console/capacity/state").json())
        return seen[-1]["status"] in ("done", "failed")

    with TestClient(create_api(cfg, chaos=Chaos(cfg)), base_url="http://127.0.0.1:8004") as client:
        assert client.post("/console/login", data={"api_key": ADMIN_KEY}, follow_redirects=False).status_code == 303
        form["csrf_token"] = page_csrf_token(client, "/console/capacity")
        started = client.post("/console/capacity", data=form, follow_redirects=False)
        # The search's own worker joins the group (up to 90 s on a loaded host), then at most 60 s of intervals.
        deadline = time.monotonic() + 240
        while not ended() and time.monotonic() < deadline:
            time.sleep(1)
        page = client.get("/console/capacity").text
        view = seen[-1]
        plot = client.get(f"/console/capacity/{view['id']}/capacity.png")

    assert started.status_code == 303
    assert view["status"] == "done", view.get("error")
    assert any(v["status"] == "running" and v["intervals"] >= 1 for v in seen), "never seen mid-search"
    result = view["result"]
    assert result["sustained_rate"] is not None and result["sustained_rate"] > 0, result["summary"]
    assert 1 <= view["intervals"] <= 30 and view["series"]["move"][-1] == "done"
    assert max(view["series"]["achieved"]) > 0, view["series"]
    assert f'data-result="sustained_rate">{result["sustained_rate"]:.2f}<' in page
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert (tmp_path / f"capacity-{view['id']}" / "capacity.json").is_file()
