"""The house-search cache: cache-aside in Redis, keyed by a generation that rental events move on.

A search reads the generation first, then looks for `search:<generation>:<query>`; on a miss it queries
the database and stores the page under the generation it read. Invalidation is one INCR of the generation,
so it costs the same however many searches are cached, and a page computed from data older than an
invalidation is stored under a generation nobody reads any more. Old entries expire with their TTL.
While Redis is down every search goes to the database.
"""

from __future__ import annotations

from quartet_shared.cache import ResilientRedis
from quartet_shared.metrics import CACHE_HITS, CACHE_MISSES

GENERATION = "search-generation"

# The generation and the page under it in one round trip: a hit is the API's hottest path.
_LOOKUP = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""


class SearchCache:
    """Cached search pages, invalidated all at once by bumping the generation."""

    def __init__(self, redis: ResilientRedis, namespace: str = "rental", ttl_s: int = 300) -> None:
        self._redis = redis
        self._namespace = namespace
        self._prefix = f"quartet:{namespace}:"
        self._ttl_s = ttl_s
        self._generation_key = self._prefix + GENERATION

    def generation(self) -> int | None:
        """The current generation, or None while Redis is unavailable."""
        raw = self._redis.call("get", lambda r: r.get(self._generation_key) or b"0", None)
        return int(raw) if raw is not None else None

    def _key(self, generation: int, query_key: str) -> str:
        return f"{self._prefix}search:{generation}:{query_key}"

    def get(self, generation: int, query_key: str) -> bytes | None:
        """The cached page (its JSON, as served) for the query at `generation`, or None."""
        raw = self._redis.call("get", lambda r: r.get(self._key(generation, query_key)), None)
        (CACHE_MISSES if raw is None else CACHE_HITS).labels(self._namespace).inc()
        return raw

    def lookup(self, query_key: str) -> tuple[int | None, bytes | None]:
        """The current generation and the page cached under it (None, None while Redis is unavailable)."""
        found = self._redis.call(
            "lookup",
            # redis-py leaves eval untyped; the script returns [generation, page or nil].
            lambda r: r.eval(_LOOKUP, 1, self._generation_key, f"{self._prefix}search:", query_key),  # type: ignore[no-untyped-call]
            None,
        )
        if found is None:
            return None, None
        generation, raw = int(found[0]), found[1]
        (CACHE_MISSES if raw is None else CACHE_HITS).labels(self._namespace).inc()
        return generation, raw

    def put(self, generation: int, query_key: str, page_json: bytes) -> None:
        """Store a page computed after reading `generation` (kept as JSON bytes: a hit is served as is)."""
        self._redis.call("set", lambda r: r.set(self._key(generation, query_key), page_json, ex=self._ttl_s), None)

    def invalidate(self) -> int | None:
        """Move every cached search out of reach; the new generation, or None while Redis is down."""
        value = self._redis.call("incr", lambda r: r.incr(self._generation_key), None)
        return int(value) if value is not None else None
