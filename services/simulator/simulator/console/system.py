"""The console's system pages: the dead letters (with replay) and the topology (services, topics, groups, lag)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from quartet_shared.auth import SIMULATOR_ADMIN
from quartet_shared.dlq import DeadLetter, list_dead_letters, replay_dead_letters
from quartet_shared.http import Problem
from quartet_shared.settings import KernelSettings

from simulator.console.csrf import Checked
from simulator.console.feed import LiveFeed, dead_letter_topics
from simulator.console.model import DeadLetterTopic, dead_letter_topic, letter_row
from simulator.console.views import Feed, PageViewer, render
from simulator.settings import SimulatorSettings

SHOWN_LETTERS = 50
READY_TIMEOUT_S = 2.0

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class DeadLetterTools:
    """The kernel's dead-letter tooling (the same the `quartet dlq` commands use)."""

    read: Callable[[KernelSettings, str], list[DeadLetter]] = list_dead_letters
    replay: Callable[[KernelSettings, str], int] = replay_dead_letters


def tools_of(request: Request) -> DeadLetterTools:
    """The app's dead-letter tools."""
    tools: DeadLetterTools = request.app.state.console_dlq
    return tools


Tools = Annotated[DeadLetterTools, Depends(tools_of)]


def read_dead_letters(feed: LiveFeed, tools: DeadLetterTools) -> tuple[list[DeadLetterTopic], str | None]:
    """Each dead-letter topic's letters, or why they cannot be read now."""
    if feed.health.kafka:
        return [], "Dead letters cannot be read while Kafka is down."
    out = []
    try:
        for topic in dead_letter_topics(feed.settings):
            rows = [letter_row(letter) for letter in tools.read(feed.settings, topic)]
            out.append(dead_letter_topic(topic, rows, SHOWN_LETTERS))
    except Exception as exc:  # the broker may go away mid-read; the page says so instead of failing
        return out, f"Reading the dead letters failed: {type(exc).__name__}: {exc}"
    return out, None


@router.get("/console/dead-letters")
async def dead_letters(request: Request, viewer: PageViewer, feed: Feed, tools: Tools) -> HTMLResponse:
    """Per dead-letter topic: the count, the reasons, each letter's original coordinates, and a replay button."""
    topics, error = await asyncio.to_thread(read_dead_letters, feed, tools)
    replayed = request.query_params.get("replayed")
    return render(request, "dead_letters.html", topics=topics, error=error, replayed=replayed)


@router.post("/console/dead-letters/replay")
async def replay(
    viewer: PageViewer, _csrf: Checked, feed: Feed, tools: Tools, topic: Annotated[str, Form(max_length=300)]
) -> RedirectResponse:
    """Send a dead-letter topic's letters not yet replayed back to their original topics (needs simulator:admin)."""
    viewer.key.require(SIMULATOR_ADMIN, "replaying dead letters needs")
    known = dead_letter_topics(feed.settings)
    if topic not in known:
        raise Problem(
            422,
            "Invalid request",
            f"no dead-letter topic {topic!r}",
            errors=[{"field": "topic", "message": f"one of {known}"}],
        )
    count = await asyncio.to_thread(tools.replay, feed.settings, topic)
    return RedirectResponse(f"/console/dead-letters?replayed={count}+from+{topic}", status_code=303)


def service_urls(settings: SimulatorSettings) -> dict[str, str]:
    """The services the console knows, by name."""
    return {
        "training-worker": settings.training_url,
        "path-planner": settings.planner_url,
        "rental-manager": settings.rental_url,
    }


def readiness(url: str) -> str:
    """`ready`, or why the service at `url` is not."""
    try:
        response = httpx.get(f"{url.rstrip('/')}/readyz", timeout=READY_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    if response.status_code == 200:
        return "ready"
    return f"not ready ({response.status_code})"


@router.get("/console/topology")
async def topology_page(request: Request, viewer: PageViewer, feed: Feed) -> HTMLResponse:
    """The services and their readiness, the topics with produce rates, the consumer groups with members and lag."""
    urls = service_urls(feed.settings)
    states = await asyncio.gather(*(asyncio.to_thread(readiness, url) for url in urls.values()))
    services = [(name, url, state) for (name, url), state in zip(urls.items(), states, strict=True)]
    topics, groups = feed.topology()
    return render(request, "topology.html", services=services, topics=topics, groups=groups)
