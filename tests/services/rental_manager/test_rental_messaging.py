"""The outbox relay, the command inbox, dead letters and the event-driven search cache, on real Kafka,
Redis and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from quartet_contracts.envelope import Envelope
from quartet_contracts.registry import lookup
from quartet_contracts.schemas.rental import CommandRejected, SubmitApplication
from quartet_shared.cache import ResilientRedis
from quartet_shared.consumer import ConsumerRunner, Context, Subscription
from quartet_shared.db import processed_messages
from quartet_shared.net import free_port
from quartet_shared.producer import Producer
from quartet_shared.settings import KernelSettings
from quartet_tools.harness.effects import effect_counts, record_effect, setup_db
from rental_manager.adapters.orm import OutboxMessage
from rental_manager.bootstrap import Rental
from rental_manager.domain.entities import Application
from rental_manager.domain.model import Role
from rental_manager.entrypoints.worker import COMMANDS_GROUP, command_runner
from rental_manager.service import houses
from rental_manager.service.commands import UpdateHouse
from rental_manager.service.schemas import HouseQuery
from rental_manager.service.search import SearchCache
from sqlalchemy import func, select

from tests.support.effects import read_all, wait_until
from tests.support.rental import house_data, person

pytestmark = pytest.mark.integration


def outbox(rental: Rental) -> list[OutboxMessage]:
    with rental.engine.connect() as conn:
        return list(conn.execute(select(OutboxMessage).order_by(OutboxMessage.created_at)).all())  # type: ignore[arg-type]


def unsent(rental: Rental) -> int:
    with rental.engine.connect() as conn:
        return conn.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None))) or 0


def test_the_relay_publishes_each_row_under_its_id_keyed_by_house(isolated: Rental) -> None:
    landlord = person(isolated, Role.LANDLORD)
    house = isolated.service.run(houses.create_house, landlord.actor, house_data())
    isolated.ensure_topics()
    relay = isolated.relay()
    while relay.relay_once():
        pass
    assert unsent(isolated) == 0
    rows = {str(r.id): r for r in outbox(isolated)}
    events = [e for e in read_all(isolated.settings, [isolated.service.topics.events]) if e.id in rows]
    assert {e.id for e in events} == set(rows)
    house_events = [e for e in events if e.key == str(house.id)]
    assert [e.type for e in house_events] == ["quartet.rental.HouseCreated.v1", "quartet.rental.HouseListed.v1"]
    for event in events:
        assert event.source == "/quartet/rental-test"
        assert event.parse() == lookup(event.type).model.model_validate(rows[event.id].payload)


def test_a_relay_killed_between_publish_and_mark_loses_nothing_and_consumers_see_each_event_once(
    isolated: Rental, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    landlord = person(isolated, Role.LANDLORD)
    # Committed while no relay runs: the events wait in the outbox.
    for i in range(3):
        isolated.service.run(houses.create_house, landlord.actor, house_data(title=f"House {i}"))
    ids = {str(r.id) for r in outbox(isolated)}
    isolated.ensure_topics()
    topic = isolated.service.topics.events

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RENTAL_", "QUARTET_"))},
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": isolated.settings.database_url or "",
        "RENTAL_TOPIC_PREFIX": isolated.settings.topic_prefix,
        "RENTAL_JWT_SECRET": "x" * 40,
        "RENTAL_RELAY_FAULT_PAUSE_S": "120",
    }
    script = Path(sys.executable).parent / "rental-manager"
    log = (tmp_path / "relay.log").open("wb")
    relay = subprocess.Popen([str(script), "relay"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def published() -> bool:
            assert relay.poll() is None, (tmp_path / "relay.log").read_text()[-3000:]
            return ids <= {e.id for e in read_all(settings, [topic], idle_ms=1000)}

        wait_until(published, 90, "the relay to publish the batch")
        relay.kill()  # SIGKILL while it pauses before marking the rows sent
        relay.wait(10)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait(10)
    assert unsent(isolated) == len(ids), "the killed relay must not have marked anything"

    # A new relay publishes the same rows again, under the same ids, and marks them.
    fresh = isolated.relay()
    while fresh.relay_once():
        pass
    assert unsent(isolated) == 0
    copies = Counter(e.id for e in read_all(settings, [topic]) if e.id in ids)
    assert copies == dict.fromkeys(ids, 2)

    # A consumer that keeps an inbox applies each event once.
    engine = setup_db(settings.database_url or "")
    run = f"relay-{unique}"

    def handle(_event: object, ctx: Context) -> None:
        record_effect(engine, run, f"audit-{unique}", ctx, 0)

    runner = ConsumerRunner(settings, f"audit-{unique}", [Subscription(topic, handle, retry=False)])
    runner.start()
    try:
        wait_until(lambda: set(effect_counts(engine, run)) >= ids, 60, "the consumer to see every event")
    finally:
        runner.stop(10)
    assert {k: v for k, v in effect_counts(engine, run).items() if k in ids} == dict.fromkeys(ids, 1)


def _send(settings: KernelSettings, topic: str, envelope: Envelope) -> None:
    producer = Producer(settings)
    try:
        producer.send_confirmed(topic, envelope, timeout_s=30)
    finally:
        producer.close()


def _apply_command(tenant: uuid.UUID, house: uuid.UUID, start: date, command_id: str) -> Envelope:
    command = SubmitApplication(tenant_id=tenant, house_id=house, start_date=start, end_date=start + timedelta(30))
    return Envelope.of(command, source="/tests", id=command_id, key=str(house))


def test_the_same_command_twice_has_one_effect(isolated: Rental) -> None:
    svc = isolated.service
    landlord, tenant = person(isolated, Role.LANDLORD), person(isolated, Role.TENANT)
    house = svc.run(houses.create_house, landlord.actor, house_data()).id
    isolated.ensure_topics()
    topic = svc.topics.commands
    # Without the Redis fast path, so the duplicate reaches the handler and only the inbox stops it.
    runner = command_runner(svc, isolated.settings, None)
    runner.start()
    start = svc.today() + timedelta(days=10)
    try:
        command = _apply_command(tenant.actor.id, house, start, str(uuid.uuid4()))
        _send(isolated.settings, topic, command)

        def applications() -> int:
            with isolated.engine.connect() as conn:
                return conn.scalar(select(func.count()).where(Application.house_id == house)) or 0

        wait_until(lambda: applications() == 1, 60, "the command to be applied")
        _send(isolated.settings, topic, command)  # redelivered, as after a crash before the offset commit
        sentinel = _apply_command(tenant.actor.id, house, start + timedelta(days=100), str(uuid.uuid4()))
        _send(isolated.settings, topic, sentinel)  # same key, same partition: applied after the duplicate
        wait_until(lambda: applications() == 2, 60, "the sentinel command to be applied")
    finally:
        runner.stop(10)
    with isolated.engine.connect() as conn:
        claimed = conn.scalar(
            select(func.count()).where(
                processed_messages.c.consumer == COMMANDS_GROUP, processed_messages.c.message_id == command.id
            )
        )
        submitted = conn.scalar(
            select(func.count()).where(OutboxMessage.ce_type == "quartet.rental.ApplicationSubmitted.v1")
        )
    assert claimed == 1
    assert submitted == 2  # the command and the sentinel, not the duplicate


def test_a_refused_command_is_answered_with_command_rejected(isolated: Rental) -> None:
    svc = isolated.service
    tenant = person(isolated, Role.TENANT)
    isolated.ensure_topics()
    runner = command_runner(svc, isolated.settings, isolated.redis)
    runner.start()
    missing = uuid.uuid4()
    command = _apply_command(tenant.actor.id, missing, svc.today() + timedelta(days=3), str(uuid.uuid4()))
    try:
        _send(isolated.settings, svc.topics.commands, command)

        def rejections() -> list[OutboxMessage]:
            return [r for r in outbox(isolated) if r.ce_type == "quartet.rental.CommandRejected.v1"]

        wait_until(lambda: len(rejections()) == 1, 60, "the rejection")
    finally:
        runner.stop(10)
    [row] = rejections()
    event = CommandRejected.model_validate(row.payload)
    assert (event.command_id, event.status, event.command_type) == (
        command.id,
        404,
        "quartet.rental.SubmitApplication.v1",
    )
    assert row.key == str(missing)


def dead_letters(settings: KernelSettings, topic: str) -> list[ConsumerRecord]:
    """Every raw record in `topic`'s dead-letter topic (garbage cannot be decoded as events)."""
    reader = KafkaConsumer(
        topic + ".dlq",
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
    )
    try:
        return list(reader)
    finally:
        reader.close()


def test_garbage_on_the_command_topic_goes_to_its_dead_letters(isolated: Rental, settings: KernelSettings) -> None:
    svc = isolated.service
    landlord, tenant = person(isolated, Role.LANDLORD), person(isolated, Role.TENANT)
    house = svc.run(houses.create_house, landlord.actor, house_data()).id
    isolated.ensure_topics()
    topic = svc.topics.commands
    producer = Producer(settings)
    key = str(house).encode()
    bad_id = str(uuid.uuid4())
    producer.send_raw(topic, key, b"not json at all", [])
    producer.send_raw(
        topic,
        key,
        b'{"tenant_id": "nope"}',
        [
            (h, v.encode())
            for h, v in {
                "ce_id": bad_id,
                "ce_source": "/tests",
                "ce_type": "quartet.rental.SubmitApplication.v1",
                "ce_specversion": "1.0",
                "content-type": "application/json",
            }.items()
        ],
    )
    unknown = Envelope(type="quartet.rental.EvictEveryone.v1", source="/tests", data={"x": 1}, key=str(house))
    producer.send(topic, unknown)
    producer.flush(30)
    producer.close()
    sentinel = _apply_command(tenant.actor.id, house, svc.today() + timedelta(days=5), str(uuid.uuid4()))
    _send(settings, topic, sentinel)
    runner = command_runner(svc, isolated.settings, isolated.redis)
    runner.start()
    try:
        wait_until(lambda: len(dead_letters(settings, topic)) >= 3, 60, "three dead letters")
        wait_until(
            lambda: any(r.ce_type == "quartet.rental.ApplicationSubmitted.v1" for r in outbox(isolated)),
            60,
            "the good command after the bad ones",
        )
    finally:
        runner.stop(10)
    letters = dead_letters(settings, topic)
    reasons = {dict(r.headers).get("dlq_error_type", b"").decode() for r in letters}
    assert reasons == {"EnvelopeError", "SchemaError"}
    assert all(dict(r.headers)["dlq_original_topic"].decode() == topic for r in letters)
    assert {r.key for r in letters} == {key}
    assert bad_id in {dict(r.headers).get("ce_id", b"").decode() for r in letters}


def test_searches_are_cached_and_rental_events_invalidate_them(isolated: Rental) -> None:
    svc, cache = isolated.service, isolated.cache
    landlord = person(isolated, Role.LANDLORD)
    city = f"Cache{uuid.uuid4().hex[:6]}"
    house = svc.run(houses.create_house, landlord.actor, house_data(city=city)).id
    isolated.ensure_topics()
    relay, invalidator = isolated.relay(), isolated.cache_runner()
    relay.start()
    invalidator.start()
    try:
        query = HouseQuery(city=city)
        # HouseListed moves the generation on once; search after that, so the page stays where it was put.
        wait_until(lambda: (cache.generation() or 0) >= 1, 30, "the HouseListed event to reach the invalidator")
        generation = cache.generation()
        assert generation is not None
        first = svc.search(query)
        cached = cache.get(generation, query.cache_key())
        assert cached is not None
        assert json.loads(cached) == first.model_dump(mode="json")
        svc.run(houses.update_house, landlord.actor, UpdateHouse(house_id=house, monthly_rent_cents=123_456))
        # The cache is not touched by the update itself: the HouseUpdated event moves the generation on.
        wait_until(lambda: (cache.generation() or 0) > generation, 30, "the HouseUpdated event to invalidate")
        assert svc.search(query).items[0].monthly_rent_cents == 123_456
    finally:
        invalidator.stop(10)
        relay.stop(10)


def test_search_works_while_redis_is_unreachable(isolated: Rental) -> None:
    landlord = person(isolated, Role.LANDLORD)
    city = f"NoRedis{uuid.uuid4().hex[:6]}"
    isolated.service.run(houses.create_house, landlord.actor, house_data(city=city))
    dead = ResilientRedis(isolated.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    isolated.service.search_cache = SearchCache(dead)
    assert isolated.service.search(HouseQuery(city=city)).total == 1
    assert isolated.service.search(HouseQuery(city=city)).total == 1


def test_rental_manager_all_serves_relays_and_stops_on_sigterm(
    isolated: Rental, settings: KernelSettings, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RENTAL_", "QUARTET_"))},
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "DATABASE_URL": isolated.settings.database_url or "",
        "RENTAL_TOPIC_PREFIX": isolated.settings.topic_prefix,
        "RENTAL_PORT": str(port),
        "RENTAL_TOPIC_PARTITIONS": "3",
        "RENTAL_ADMIN_EMAIL": "root@example.com",
        "RENTAL_ADMIN_PASSWORD": "root-password-1",
    }
    script = Path(sys.executable).parent / "rental-manager"
    log = (tmp_path / "all.log").open("wb")
    proc = subprocess.Popen([str(script), "all"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "all.log").read_text()[-3000:]
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 90, "rental-manager to answer /healthz")
        token = httpx.post(f"{base}/auth/token", data={"username": "root@example.com", "password": "root-password-1"})
        assert token.status_code == 200
        assert "server" not in token.headers  # uvicorn's banner is off
        assert "frame-ancestors 'none'" in httpx.get(f"{base}/ui/login").headers["content-security-policy"]
        assert (tmp_path / ".local" / "data" / "rental-manager.jwt-key").is_file()  # no secret set: a local key
        wait_until(lambda: unsent(isolated) == 0 and len(outbox(isolated)) > 0, 60, "the relay inside `all`")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - sent < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
