"""Fuzzing a real `simulator api` process: schemathesis over its OpenAPI document and the hostile corpus.

Kept harmless whatever the fuzz sends: its key lacks `simulator:admin` (no fault may be injected), it controls
no servers (SIMULATOR_INFRA=none: no broker or Redis stop), its managed workers would be `true` (nothing real
to SIGKILL or SIGSTOP), and its rental manager is a closed port.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from quartet_shared.net import free_port

from tests.support.fuzz import BEARER, api_process, fuzz_service
from tests.support.hostile import SIMULATOR, Hostile, assert_nul_refused_everywhere, assert_refused, corpus_for
from tests.support.jobs import ServiceProcess
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

EXAMPLES = 20


@pytest.fixture(scope="module")
def service(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """`simulator api` on the session's Kafka, unable to touch anything real."""
    workdir = tmp_path_factory.mktemp("simulator-fuzz")
    env = {
        "SIMULATOR_INFRA": "none",
        "SIMULATOR_RUNS_DIR": str(workdir / "runs"),
        "SIMULATOR_WORKER_COMMAND_TRAINING": "true",
        "SIMULATOR_WORKER_COMMAND_PLANNING": "true",
        "SIMULATOR_RENTAL_URL": f"http://127.0.0.1:{free_port()}",
    }
    with api_process(servers, workdir, "simulator", "SIMULATOR_", env) as running:
        yield running


def test_schemathesis_finds_no_server_error_slow_or_undocumented_answer(service: ServiceProcess) -> None:
    fuzz_service(service.base, [BEARER, {}], examples=EXAMPLES).assert_clean()


@pytest.mark.parametrize("row", corpus_for(SIMULATOR), ids=lambda row: row.name)
def test_hostile_request_is_refused_at_once_without_a_leak(
    service: ServiceProcess, row: Hostile, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert_refused(service.base, BEARER, row, tmp_path_factory.getbasetemp())


def test_nul_in_every_path_parameter_and_query_is_refused(
    service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert_nul_refused_everywhere(service.base, BEARER, SIMULATOR, tmp_path_factory.getbasetemp())
