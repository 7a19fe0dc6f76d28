"""Sign-in throttling: failed attempts counted per account and per client address, in Redis and in-process.

`limits` does the counting (a moving window: the last `window_s` seconds exactly, with no burst at a window
edge). Its Redis storage shares the counts between API replicas; the same failures are also counted in this
process's memory, so while Redis is down (or after it lost its data) the limit still holds per process, and
a failure counted before an outage still counts during it. Accounts are keyed by a hash of the address, so
Redis holds no e-mail addresses.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TypeVar

import redis
from fastapi import Request
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter
from quartet_shared.cache import ResilientRedis

from rental_manager.service.errors import TooManyAttempts

T = TypeVar("T")


def client_address(request: Request) -> str:
    """The peer's address (the proxy's, behind one: forwarded headers are not trusted)."""
    return request.client.host if request.client else "unknown"


class LoginThrottle:
    """Refuses sign-ins for an account or address that failed too often lately; counts and forgets failures."""

    def __init__(
        self, redis_: ResilientRedis, *, per_account: int, per_address: int, window_s: int, namespace: str
    ) -> None:
        self._redis = redis_
        storage = RedisStorage(
            "redis://", connection_pool=redis_.client.connection_pool, key_prefix=f"quartet:{namespace}:login"
        )
        self._shared = MovingWindowRateLimiter(storage)
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._account = RateLimitItemPerSecond(per_account, window_s)
        self._address = RateLimitItemPerSecond(per_address, window_s)

    def _keys(self, account: str, address: str) -> Iterator[tuple[RateLimitItem, str]]:
        yield self._account, "account:" + hashlib.sha256(account.encode()).hexdigest()
        yield self._address, "address:" + address

    def _shared_call(self, op: str, fn: Callable[[], T], default: T) -> T:
        """`fn` on the Redis counts, or `default` while Redis is down (the in-process counts still apply)."""
        if self._redis.skipping(op):
            return default
        try:
            return fn()
        except (StorageError, redis.RedisError, OSError) as exc:
            self._redis.failed(op, exc)
            return default

    def check(self, account: str, address: str) -> None:
        """TooManyAttempts if the account or the address has used up its failures in the window."""
        resets: list[float | None] = []
        for item, key in self._keys(account, address):
            shared = partial(_reset_if_full, self._shared, item, key)
            resets += [_reset_if_full(self._local, item, key), self._shared_call("login_check", shared, None)]
        wait = max((r - time.time() for r in resets if r is not None), default=0.0)
        if wait > 0:
            raise TooManyAttempts(max(1, math.ceil(wait)))

    def failed(self, account: str, address: str) -> None:
        """Count a failed sign-in against the account and the address."""
        for item, key in self._keys(account, address):
            self._local.hit(item, key)
            self._shared_call("login_hit", partial(self._shared.hit, item, key), False)

    def succeeded(self, account: str) -> None:
        """Forget the account's failures (the address's stay: one address may be guessing many accounts)."""
        item, key = next(self._keys(account, ""))
        self._local.clear(item, key)
        self._shared_call("login_clear", partial(self._shared.clear, item, key), None)


def _reset_if_full(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> float | None:
    """When the oldest counted failure leaves the window, if no further failure fits in it; else None."""
    if limiter.test(item, key):
        return None
    return float(limiter.get_window_stats(item, key).reset_time)
