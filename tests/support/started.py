"""Servers the stack takes for started without starting anything: the others of a test about one server's start."""

from __future__ import annotations

from quartet_tools.infra import NativeKafka, NativePostgres, NativeRedis


class StartedKafka(NativeKafka):
    def start(self, timeout_s: float = 90.0) -> None:
        """Already up, as far as the stack can tell."""


class StartedRedis(NativeRedis):
    def start(self, timeout_s: float = 30.0) -> None:
        """Already up, as far as the stack can tell."""


class StartedPostgres(NativePostgres):
    def start(self, timeout_s: float = 120.0) -> None:
        """Already up, as far as the stack can tell."""
