"""The kernel benchmark's raw loops end when they stall instead of waiting forever."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
from quartet_contracts.topics import TopicSpec
from quartet_shared.settings import KernelSettings
from quartet_shared.topics import ensure_topics

BENCH = Path(__file__).parents[2] / "bench"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """bench/bench_kernel.py, imported once: it registers its event type, which a second import would repeat."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("bench_kernel")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("loop", ["consume_raw", "consume_raw_transactional"])
def test_a_raw_loop_that_reads_nothing_ends_at_its_limit(
    loop: str, bench: ModuleType, settings: KernelSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare kafka-python consumer can stop fetching for good under load; the loop then fails, naming its count."""
    monkeypatch.setattr(bench, "RAW_LOOP_LIMIT_S", 3.0)
    topic = f"bench-empty-{unique}"
    ensure_topics(settings, [TopicSpec(topic, "", partitions=1), TopicSpec(f"{topic}-out", "", partitions=1)])
    args = (settings, topic, f"{topic}-out", 1) if loop == "consume_raw_transactional" else (settings, topic, 1)
    with pytest.raises(TimeoutError, match="read 0 of 1 records"):
        getattr(bench, loop)(*args)
