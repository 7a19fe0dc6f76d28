"""Fuzzing a real `path-planner api` process: schemathesis over its OpenAPI document and the hostile corpus.

The process runs the API without a worker, so generated jobs are accepted and queued but never planned: the fuzz
costs HTTP round trips, not CPU. Its store is its own database on the session's PostgreSQL under its own role,
as deployed; its terrain directory the default one.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.fuzz import BEARER, api_process, fuzz_service
from tests.support.hostile import (
    PLANNING,
    Hostile,
    assert_nul_refused_everywhere,
    assert_refused,
    corpus_for,
    planning_spec,
)
from tests.support.jobs import ServiceProcess
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

EXAMPLES = 20


@pytest.fixture(scope="module")
def service(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """`path-planner api` on the session's servers."""
    workdir = tmp_path_factory.mktemp("planner-fuzz")
    with api_process(servers, workdir, "path-planner", "PLANNER_", servers.service_env("planning")) as running:
        yield running


def test_schemathesis_finds_no_server_error_slow_or_undocumented_answer(service: ServiceProcess) -> None:
    job = httpx.post(f"{service.base}/jobs", json=planning_spec(), headers=BEARER, timeout=30)
    assert job.status_code == 202, job.text
    fuzz_service(service.base, [BEARER, {}], examples=EXAMPLES, real={"job_id": job.json()["id"]}).assert_clean()


@pytest.mark.parametrize("row", corpus_for(PLANNING), ids=lambda row: row.name)
def test_hostile_request_is_refused_at_once_without_a_leak(
    service: ServiceProcess, row: Hostile, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert_refused(service.base, BEARER, row, tmp_path_factory.getbasetemp())


def test_nul_in_every_path_parameter_and_query_is_refused(
    service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert_nul_refused_everywhere(service.base, BEARER, PLANNING, tmp_path_factory.getbasetemp())
