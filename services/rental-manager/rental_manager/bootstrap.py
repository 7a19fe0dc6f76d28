"""One place that wires the rental manager's real adapters; nothing here connects at import time."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from argon2 import PasswordHasher
from quartet_contracts.topics import TopicSpec, expand
from quartet_shared.cache import ResilientRedis
from quartet_shared.consumer import ConsumerRunner
from quartet_shared.producer import Producer
from quartet_shared.settings import load_settings
from quartet_shared.topics import ensure_topics
from sqlalchemy import Engine

from rental_manager.adapters.db import migrate, rental_engine
from rental_manager.adapters.relay import OutboxRelay
from rental_manager.adapters.throttle import LoginThrottle
from rental_manager.adapters.unit_of_work import SqlTransactions
from rental_manager.entrypoints.worker import BillingScheduler, cache_runner, command_runner
from rental_manager.service import users
from rental_manager.service.errors import Conflict
from rental_manager.service.facade import RentalService
from rental_manager.service.search import SearchCache
from rental_manager.service.unit import SYSTEM
from rental_manager.settings import RentalSettings

log = logging.getLogger(__name__)


def jwt_secret(settings: RentalSettings) -> str:
    """The token signing key: from the settings, else a random one kept in a private local file."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = Path(settings.jwt_secret_file)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    log.warning("no RENTAL_JWT_SECRET set; generated a local signing key", extra={"path": str(path)})
    return key


@dataclass
class Rental:
    """The wired service: settings, database, cache, the service layer, and factories for its processes."""

    settings: RentalSettings
    engine: Engine
    redis: ResilientRedis
    cache: SearchCache
    service: RentalService
    relays: list[OutboxRelay] = field(default_factory=list)
    _producers: list[Producer] = field(default_factory=list)

    def ensure_topics(self) -> None:
        """Create the rental topics (and their retry and dead-letter companions) if missing."""
        topics = self.service.topics
        ensure_topics(
            self.settings,
            expand(
                [
                    TopicSpec(
                        topics.events, "Rental state changes from the outbox; key = house id.", with_retry_and_dlq=True
                    ),
                    TopicSpec(
                        topics.commands, "Commands for the rental manager; key = house id.", with_retry_and_dlq=True
                    ),
                ]
            ),
        )

    def migrate(self) -> None:
        """Bring the schema to the latest migration (safe to call from many processes at once)."""
        migrate(self.engine)

    def relay(self) -> OutboxRelay:
        """An outbox relay with its own idempotent producer; commits in this process wake it."""
        producer = Producer(self.settings)
        self._producers.append(producer)
        relay = OutboxRelay(
            self.engine,
            producer,
            source=f"/quartet/{self.settings.service_name}",
            batch_size=self.settings.relay_batch_size,
            idle_s=self.settings.relay_idle_s,
            publish_timeout_s=self.settings.relay_publish_timeout_s,
            fault_pause_s=self.settings.relay_fault_pause_s,
        )
        self.relays.append(relay)
        return relay

    def command_runner(self) -> ConsumerRunner:
        """The consumer of `rental.commands`."""
        return command_runner(self.service, self.settings, self.redis)

    def cache_runner(self) -> ConsumerRunner:
        """The consumer of `rental.events` that invalidates cached searches."""
        return cache_runner(self.cache, self.service, self.settings)

    def scheduler(self) -> BillingScheduler:
        """The periodic billing run."""
        return BillingScheduler(partial(self.service.run_billing, SYSTEM), self.settings.billing_interval_s)

    def ensure_admin(self) -> None:
        """Create the configured admin account if it does not exist yet."""
        if self.settings.admin_email and self.settings.admin_password:
            try:
                created = self.service.run(
                    users.ensure_admin,
                    self.service.credentials,
                    self.settings.admin_email,
                    self.settings.admin_password.get_secret_value(),
                )
            except Conflict:
                # Another API replica starting at the same moment inserted it first: the account exists.
                created = False
            if created:
                log.info("created the configured admin account", extra={"email": self.settings.admin_email})

    def wake_relays(self) -> None:
        """Tell this process's relays that the outbox has new rows."""
        for relay in self.relays:
            relay.wake()

    def close(self) -> None:
        """Close producers, Redis and the engine."""
        for producer in self._producers:
            producer.close(timeout_s=5)
        self._producers.clear()
        self.redis.close()
        self.engine.dispose()


def bootstrap(settings: RentalSettings | None = None) -> Rental:
    """Wire the real adapters: SQL (PostgreSQL, or SQLite when DATABASE_URL is unset), Redis and Kafka."""
    cfg = settings or load_settings(RentalSettings)
    engine = rental_engine(cfg.database_url, pool_size=cfg.pool_size, service=cfg.service_name)
    redis = ResilientRedis(cfg)
    cache = SearchCache(redis, ttl_s=cfg.search_cache_ttl_s, namespace=f"rental{cfg.topic_prefix}")
    hasher = PasswordHasher(time_cost=cfg.argon2_time_cost, memory_cost=cfg.argon2_memory_kib, parallelism=1)
    credentials = users.Credentials(hasher, jwt_secret(cfg), cfg.token_ttl_s)
    guard = LoginThrottle(
        redis,
        per_account=cfg.login_failures_per_account,
        per_address=cfg.login_failures_per_address,
        window_s=cfg.login_window_s,
        namespace=f"rental{cfg.topic_prefix}",
    )
    rental = Rental(
        cfg,
        engine,
        redis,
        cache,
        RentalService(cfg, credentials, cache, login_guard=guard, unit_of_work=SqlTransactions(engine)),
    )
    rental.service.on_commit = rental.wake_relays
    return rental
