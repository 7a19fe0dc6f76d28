"""The Redis helpers against a real Redis: the dedup cache's one-call lookup, and degrading when Redis is gone."""

from __future__ import annotations

import time
import uuid

import pytest
from quartet_shared.cache import DedupCache, JsonCache, ResilientRedis
from quartet_shared.settings import KernelSettings

pytestmark = pytest.mark.integration


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_dedup_cache_finds_exactly_what_was_remembered(settings: KernelSettings, unique: str) -> None:
    redis_ = ResilientRedis(settings)
    try:
        cache = DedupCache(redis_, f"g-{unique}", ttl_s=7 * 86_400)
        done, fresh = _ids(600), _ids(600)
        assert cache.known(done + fresh) == set()
        cache.remember(done)
        assert cache.known(fresh + done) == set(done)
        assert cache.known([]) == set()
        # Ids remembered on an earlier day (inside the TTL) are still found; the lookup spans every day's hash.
        yesterday = f"quartet:dedup:g-{unique}:{int(time.time()) // 86_400 - 3}"
        redis_.client.hset(yesterday, mapping={fresh[0]: "1"})
        assert cache.known(fresh[:2]) == {fresh[0]}
        ttl = redis_.client.ttl(f"quartet:dedup:g-{unique}:{int(time.time()) // 86_400}")
        assert 7 * 86_400 < ttl <= 8 * 86_400
    finally:
        redis_.close()


def test_dedup_cache_survives_a_script_cache_flush(settings: KernelSettings, unique: str) -> None:
    redis_ = ResilientRedis(settings)
    try:
        cache = DedupCache(redis_, f"g-{unique}", ttl_s=86_400)
        ids = _ids(3)
        cache.remember(ids[:1])
        redis_.client.script_flush()
        assert cache.known(ids) == {ids[0]}
    finally:
        redis_.close()


def test_dedup_cache_keeps_positions_for_ids_holding_the_separator_or_empty(
    settings: KernelSettings, unique: str
) -> None:
    redis_ = ResilientRedis(settings)
    try:
        cache = DedupCache(redis_, f"g-{unique}", ttl_s=86_400)
        odd = ["a\nb", "", "\n", "plain", "tail\n"]
        cache.remember(odd[::2])
        assert cache.known(odd) == {"a\nb", "\n", "tail\n"}
        assert cache.known(["x", "plain", "y"]) == set()
    finally:
        redis_.close()


def test_dedup_cache_pipelines_its_records_and_survives_losing_them(settings: KernelSettings, unique: str) -> None:
    redis_ = ResilientRedis(settings.model_copy(update={"redis_retry_after_s": 0.2}))
    try:
        cache = DedupCache(redis_, f"g-{unique}", ttl_s=86_400)
        first, second, third = _ids(500), _ids(500), _ids(3)
        # A record is sent without waiting for its reply; the next lookup still sees it (replies come in order).
        cache.remember(first)
        answer = cache.lookup(second[:1] + first[:2])
        assert answer() == set(first[:2])
        cache.remember(second)
        cache.settle()
        assert cache.known(second + third) == set(second)
        # The connection dies with a record's reply pending: the lookup degrades to "nothing known" instead of
        # reading a stale reply, and the cache works again on a new connection once the back-off has passed.
        cache.remember(third[:1])
        redis_.client.client_kill_filter(_type="normal", skipme=True)
        assert cache.known(first) == set()
        time.sleep(0.3)
        assert cache.known(first[:3] + third[1:]) == set(first[:3])
    finally:
        redis_.close()


def test_helpers_degrade_when_redis_is_unreachable(settings: KernelSettings) -> None:
    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    redis_ = ResilientRedis(dead)
    try:
        cache = DedupCache(redis_, "down", ttl_s=86_400)
        cache.remember(["a"])
        assert cache.known(["a", "b"]) == set()
        assert not redis_.available
        json_cache = JsonCache(redis_, "down")
        assert json_cache.get("k") is None
        assert json_cache.set("k", {"v": 1}) is False
        assert json_cache.get_or_compute("k", lambda: 42) == 42
    finally:
        redis_.close()


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None]}, ["x"], "s", 3])
def test_json_cache_round_trips(settings: KernelSettings, unique: str, value: object) -> None:
    redis_ = ResilientRedis(settings)
    try:
        cache = JsonCache(redis_, f"ns-{unique}", ttl_s=60)
        assert cache.get("k") is None
        assert cache.set("k", value)
        assert cache.get("k") == value
        cache.delete("k")
        assert cache.get("k") is None
    finally:
        redis_.close()
