"""Redis as a cache that may vanish: every call degrades (log, count, carry on) instead of failing the caller."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis
from redis.connection import Connection

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
        if self.skipping(op):
            return default
        try:
            return fn(self._client)
        except (redis.RedisError, OSError) as exc:
            self.failed(op, exc)
            return default

    def skipping(self, op: str) -> bool:
        """True while Redis is considered down, counting `op` as a call degraded around: the caller skips Redis."""
        if self.available:
            return False
        CACHE_ERRORS.labels(op).inc()
        return True

    def failed(self, op: str, exc: BaseException) -> None:
        """Record a failed call: log the first, count each, and skip Redis for a while."""
        with self._lock:
            first = self.available
            self._down_until = time.monotonic() + self._retry_after
        if first:
            log.warning("redis unavailable, degrading", extra={"op": op, "error": str(exc)})
        CACHE_ERRORS.labels(op).inc()

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

    Ids live in one hash per day; a batch's lookup and a batch's record are one Lua call each (the lookup
    checks every id against the days the TTL spans and returns only the positions it found). The ids travel
    joined in one argument (one string to encode instead of one per id) and the scripts go by body (`EVAL`), so
    a flushed script cache or a restarted Redis needs no reload.

    Both calls are pipelined on a connection of their own: `lookup` sends at once and reads the answer when
    asked, and `remember` sends without waiting, its reply read before the next command. The runner sends a
    batch's lookup before decoding it and its record before committing its offsets, so Redis works on its own
    core while this one decodes or waits on the broker. One runner thread owns an instance.
    """

    _DAY_S = 86_400
    _SEP = "\n"
    # Redis' Lua can unpack about 8,000 values onto its stack, so the scripts pass ids to commands in slices.
    _IDS = """
local function ids_from(first)
  local ids = {}
  if ARGV[first] == 'joined' then
    for id in string.gmatch(ARGV[first + 1], '[^\\n]+') do ids[#ids + 1] = id end
  else
    for i = first + 1, #ARGV do ids[#ids + 1] = ARGV[i] end
  end
  return ids
end
"""
    _LOOKUP = (
        _IDS
        + """
local ids = ids_from(1)
local found, hit = {}, {}
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    for first = 1, #ids, 4000 do
      local got = redis.call('HMGET', key, unpack(ids, first, math.min(first + 3999, #ids)))
      for j = 1, #got do
        local at = first + j - 1
        if got[j] and not hit[at] then
          hit[at] = true
          found[#found + 1] = at - 1
        end
      end
    end
  end
end
return found
"""
    )
    _REMEMBER = (
        _IDS
        + """
local ids = ids_from(3)
for first = 1, #ids, 2000 do
  local fields = {}
  for i = first, math.min(first + 1999, #ids) do
    fields[#fields + 1] = ids[i]
    fields[#fields + 1] = ARGV[1]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return #ids
"""
    )

    def __init__(self, redis_: ResilientRedis, namespace: str, ttl_s: int) -> None:
        self._redis = redis_
        self._prefix = f"quartet:dedup:{namespace}:"
        self._ttl = ttl_s
        self._days = max(1, -(-ttl_s // self._DAY_S))
        self._conn: Connection | None = None
        # Commands sent whose replies are not read yet, oldest first: the protocol answers in order.
        self._unread = 0

    def _buckets(self) -> list[str]:
        today = int(time.time()) // self._DAY_S
        return [f"{self._prefix}{today - back}" for back in range(self._days + 1)]

    def _id_args(self, ids: list[str]) -> list[str]:
        joined = self._SEP.join(ids)
        # An id holding the separator, or an empty one, would shift the positions: such batches go id by id.
        clean = joined.count(self._SEP) == len(ids) - 1 and all((ids[0], ids[-1])) and self._SEP * 2 not in joined
        return ["joined", joined] if clean else ["list", *ids]

    def _send(self, op: str, *args: str | int) -> bool:
        if self._redis.skipping(op):
            return False
        try:
            if self._conn is None:
                self._conn = self._redis.client.connection_pool.get_connection()
            # No health-check PING here: its PONG would be read in place of a reply still pending.
            self._conn.send_command(*args, check_health=False)
        except (redis.RedisError, OSError) as exc:
            self._broken(op, exc)
            return False
        self._unread += 1
        return True

    def _read(self, op: str) -> Any:
        """Read the oldest pending reply; raises what reading raised, with the connection reset."""
        assert self._conn is not None
        try:
            reply = self._conn.read_response()
        except (redis.RedisError, OSError) as exc:
            self._broken(op, exc)
            raise
        self._unread -= 1
        return reply

    def _drain(self) -> bool:
        """Read every pending reply (records already sent); False if the connection failed doing so."""
        while self._unread:
            try:
                self._read("remember")
            except (redis.RedisError, OSError):
                return False
        return True

    def _broken(self, op: str, exc: BaseException) -> None:
        # Replies still pending are lost with the connection; start the next command on a clean one.
        self._unread = 0
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.disconnect()
        self._redis.failed(op, exc)

    def lookup(self, ids: list[str]) -> Callable[[], set[str]]:
        """Send the lookup of `ids` now; the function returned reads which of them Redis remembers as done.

        While Redis is down the answer is the empty set: the durable record decides then.
        """
        if not ids or not self._drain():
            return _nothing
        if not self._send("known", "EVAL", self._LOOKUP, self._days + 1, *self._buckets(), *self._id_args(ids)):
            return _nothing
        expected = self._unread

        def answer() -> set[str]:
            # Only the reply this lookup expects; a reply read by a later command is already gone.
            if self._unread != expected or self._conn is None:
                return set()
            try:
                found = self._read("known")
            except (redis.RedisError, OSError):
                return set()
            return {ids[i] for i in found}

        return answer

    def known(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` Redis remembers as done (none while Redis is down: the durable record decides then)."""
        return self.lookup(list(ids))()

    def remember(self, ids: Iterable[str]) -> None:
        """Mark ids as done in today's hash; sent at once, its reply read before the next command or by `settle`."""
        keys = list(ids)
        if not keys or not self._drain():
            return
        stamp = str(int(time.time() * 1000))
        expiry = self._ttl + self._DAY_S
        self._send("remember", "EVAL", self._REMEMBER, 1, self._buckets()[0], stamp, expiry, *self._id_args(keys))

    def settle(self) -> None:
        """Read the replies still pending, so that everything sent has been applied."""
        self._drain()

    def close(self) -> None:
        """Settle and give the connection back to the pool."""
        self._drain()
        if self._conn is not None:
            self._redis.client.connection_pool.release(self._conn)
            self._conn = None


def _nothing() -> set[str]:
    return set()
