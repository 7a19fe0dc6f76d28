"""The search cache's one-round-trip lookup against a real Redis: hit, invalidation, and Redis down."""

from __future__ import annotations

import pytest
from quartet_shared.cache import ResilientRedis
from quartet_shared.settings import KernelSettings
from rental_manager.service.search import SearchCache

pytestmark = pytest.mark.integration


def test_lookup_reads_the_generation_and_its_page_together(settings: KernelSettings, unique: str) -> None:
    redis = ResilientRedis(settings)
    try:
        cache = SearchCache(redis, namespace=f"t{unique}")
        assert cache.lookup("q=1") == (0, None)
        cache.put(0, "q=1", b'{"items": []}')
        assert cache.lookup("q=1") == (0, b'{"items": []}')
        assert cache.lookup("q=2") == (0, None)
        assert cache.invalidate() == 1
        assert cache.lookup("q=1") == (1, None)
        cache.put(1, "q=1", b'{"items": [1]}')
        assert cache.lookup("q=1") == (1, b'{"items": [1]}')
    finally:
        redis.close()


def test_lookup_while_redis_is_down_is_a_miss_without_a_generation(settings: KernelSettings) -> None:
    dead = ResilientRedis(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    try:
        assert SearchCache(dead).lookup("q=1") == (None, None)
    finally:
        dead.close()
