"""Redis as a cache that may vanish: every call degrades (log, count, carry on) instead of failing the caller."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from quartet_shared.metrics import CACHE_ERRORS, CACHE_HITS, CACHE_MISSES
from quartet_shared.settings import KernelSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class ResilientRedis:
    """A Redis client that, after a failure, skips Redis for a short while and then tries again by itself."""

    def __init__(self, settings: KernelSettings) -> None:
        self._client = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_socket_timeout_s,
            socket_connect_timeout=settings.redis_socket_timeout_s,
            health_check_interval=10,
        )
        self._retry_after = settings.redis_retry_after_s
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def client(self) -> redis.Redis[bytes]:
        """The raw client, for callers that handle errors themselves."""
        return self._client

    @property
    def available(self) -> bool:
        """False while Redis is considered down."""
        return time.monotonic() >= self._down_until

    def call(self, op: str, fn: Callable[[redis.Redis[bytes]], T], default: T) -> T:
        """Run `fn` against Redis, or return `default` if Redis is down or fails."""
        if not self.available:
            CACHE_ERRORS.labels(op).inc()
            return default
        try:
            return fn(self._client)
        except (redis.RedisError, OSError) as exc:
            with self._lock:
                first = self.available
                self._down_until = time.monotonic() + self._retry_after
            if first:
                log.warning("redis unavailable, degrading", extra={"op": op, "error": str(exc)})
            CACHE_ERRORS.labels(op).inc()
            return default

    def ping(self) -> bool:
        """True if Redis answers now (ignores the back-off window)."""
        try:
            return bool(self._client.ping())
        except (redis.RedisError, OSError):
            return False

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class JsonCache:
    """A namespaced JSON cache-aside helper with hit and miss metrics."""

    def __init__(self, redis_: ResilientRedis, namespace: str, ttl_s: int = 3600) -> None:
        self._redis = redis_
        self._ns = namespace
        self._ttl = ttl_s

    def key(self, name: str) -> str:
        """The Redis key for `name`."""
        return f"quartet:{self._ns}:{name}"

    def get(self, name: str) -> Any | None:
        """The cached value, or None on a miss or while Redis is down."""
        raw = self._redis.call("get", lambda r: r.get(self.key(name)), None)
        if raw is None:
            CACHE_MISSES.labels(self._ns).inc()
            return None
        CACHE_HITS.labels(self._ns).inc()
        return json.loads(raw)

    def set(self, name: str, value: Any, ttl_s: int | None = None) -> bool:
        """Cache a JSON-serialisable value; False if Redis is down."""
        payload = json.dumps(value, separators=(",", ":"), default=str)
        return bool(
            self._redis.call("set", lambda r: bool(r.set(self.key(name), payload, ex=ttl_s or self._ttl)), False)
        )

    def delete(self, *names: str) -> None:
        """Drop cached values (best effort)."""
        if names:
            self._redis.call("delete", lambda r: r.delete(*(self.key(n) for n in names)), 0)

    def delete_prefix(self, prefix: str) -> None:
        """Drop every cached value whose name starts with `prefix` (best effort)."""

        def scan_delete(r: redis.Redis[bytes]) -> int:
            keys = list(r.scan_iter(match=self.key(prefix) + "*", count=500))
            return int(r.delete(*keys)) if keys else 0

        self._redis.call("delete_prefix", scan_delete, 0)

    def get_or_compute(self, name: str, compute: Callable[[], T], ttl_s: int | None = None) -> T:
        """Cache-aside: the cached value, or compute, cache and return it."""
        hit = self.get(name)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        value = compute()
        self.set(name, value, ttl_s)
        return value


class DedupCache:
    """The fast duplicate check: ids already processed, remembered in Redis after their effect is durable.

    Ids live in one hash per day (`HSET` of a whole batch in one command); a batch's lookup is one Lua call
    that checks every id against the days the TTL spans and returns only the positions it found, so the
    client sends each id once and reads back almost nothing.
    """

    _DAY_S = 86_400
    _LOOKUP = """
local days = {}
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then days[#days + 1] = key end
end
local found = {}
if #days == 0 then return found end
for i, id in ipairs(ARGV) do
  for _, key in ipairs(days) do
    if redis.call('HEXISTS', key, id) == 1 then
      found[#found + 1] = i - 1
      break
    end
  end
end
return found
"""

    def __init__(self, redis_: ResilientRedis, namespace: str, ttl_s: int) -> None:
        self._redis = redis_
        self._prefix = f"quartet:dedup:{namespace}:"
        self._ttl = ttl_s
        self._days = max(1, -(-ttl_s // self._DAY_S))
        self._lookup = redis_.client.register_script(self._LOOKUP)

    def _buckets(self) -> list[str]:
        today = int(time.time()) // self._DAY_S
        return [f"{self._prefix}{today - back}" for back in range(self._days + 1)]

    def known(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` Redis remembers as done (none while Redis is down: the durable record decides then)."""
        keys = list(ids)
        if not keys:
            return set()
        empty: list[int] = []
        found = self._redis.call("known", lambda r: self._lookup(self._buckets(), keys, client=r), empty)
        return {keys[i] for i in found}

    def remember(self, ids: Iterable[str]) -> None:
        """Mark ids as done in today's hash (HSETNX semantics are not needed: any writer's stamp will do)."""
        keys = list(ids)
        if not keys:
            return
        stamp = str(int(time.time() * 1000))
        bucket = self._buckets()[0]

        def write(r: redis.Redis[bytes]) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.hset(bucket, mapping=dict.fromkeys(keys, stamp))
            pipe.expire(bucket, self._ttl + self._DAY_S)
            return pipe.execute()

        self._redis.call("remember", write, [])
