"""Creating the catalogue's topics on a broker, and waiting until a client sees their partitions."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from quartet_contracts.topics import TopicSpec

from quartet_shared.clients import KAFKA, KafkaClients
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)


def ensure_topics(settings: KernelSettings, specs: Iterable[TopicSpec], *, clients: KafkaClients = KAFKA) -> list[str]:
    """Create the topics that are missing (harmless if they exist) and return the names created."""
    wanted = list(specs)
    admin = clients.admin(settings, client_id="quartet-topics")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(
                s.name,
                s.partitions or settings.topic_partitions,
                settings.topic_replication_factor,
                topic_configs=s.config(settings),
            )
            for s in wanted
            if s.name not in existing
        ]
        created: list[str] = []
        for topic in new:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                log.debug("topic %s was created concurrently", topic.name)
        if created:
            log.info("created topics", extra={"topics": created})
        return created
    finally:
        admin.close()


def main() -> None:
    """`quartet-topics`: create the catalogue's missing topics; the one-shot step images run before the services."""
    from quartet_contracts.topics import CORE_TOPICS, expand

    from quartet_shared.logs import configure_logging

    settings = KernelSettings()
    configure_logging(settings.log_level, service="quartet-topics")
    created = ensure_topics(settings, expand(CORE_TOPICS))
    print(json.dumps({"bootstrap_servers": settings.kafka_bootstrap_servers, "created": created}))
