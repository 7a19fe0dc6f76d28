"""Fuzzing a service's real process over HTTP: schemathesis on its OpenAPI document, with credentials.

Every generated request is sent once per caller; each answer must not be a server error, must conform to the
document (status code, content type, body schema) and must come within `SLOW_S` seconds. Failures are
collected, not raised inside hypothesis, so one run lists every operation that fails (without shrinking, which
would cost minutes) and the assertion at the end names each with a curl command that reproduces it.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from quartet_shared.auth import SCOPES, SIMULATOR_ADMIN, bearer_headers
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.jobs import ServiceProcess, service_process
from tests.support.servers import Servers, kernel_settings

# The credentials every fuzzed job service and the simulator accept (QUARTET_API_KEYS): every scope but
# simulator:admin, so no generated scenario may inject a fault.
API_KEY = "fuzz-key-" + "0123456789abcdef" * 2
API_KEYS = json.dumps({"fuzz": {"key": API_KEY, "scopes": sorted(SCOPES - {SIMULATOR_ADMIN})}})
BEARER = bearer_headers(API_KEY)
# "No response slower than a few seconds" (issue 16, section 7): a guard against unbounded work, not a benchmark.
SLOW_S = 5.0
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class FuzzRun:
    """What a fuzzing run saw: status codes per operation, and every failure once per operation and kind."""

    answered: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def fail(self, case: schemathesis.Case, kind: str, detail: str, curl: str) -> None:
        """Remember the first example of failure `kind` on the case's operation."""
        self.failures.setdefault((case.operation.label, kind), f"{detail[:300]}\n    {curl[:500]}")

    def report(self) -> str:
        """One line per failure, with an example and a command that reproduces it."""
        lines = [f"{label}: {kind}: {example}" for (label, kind), example in sorted(self.failures.items())]
        return f"{len(lines)} failures\n" + "\n".join(lines)

    def succeeded(self) -> set[str]:
        """Operations some request got a 2xx from."""
        return {label for label, codes in self.answered.items() if any(200 <= c < 300 for c in codes)}

    def assert_clean(self) -> None:
        """No failure, and the run reached the handlers, not only the validators: most operations succeeded."""
        assert not self.failures, self.report()
        assert len(self.succeeded()) >= len(self.answered) // 2, sorted(set(self.answered) - self.succeeded())


@contextmanager
def api_process(
    servers: Servers, workdir: Path, script: str, prefix: str, env: Mapping[str, str]
) -> Iterator[ServiceProcess]:
    """`script api` on a free loopback port and the session's servers, accepting the fuzz's API key."""
    unique = uuid.uuid4().hex[:10]
    settings = kernel_settings(servers)
    with service_process(
        script, prefix, settings, unique, workdir, role="api", env={"QUARTET_API_KEYS": API_KEYS, **env}
    ) as running:
        yield running


def fuzz_service(
    base: str,
    callers: Sequence[Mapping[str, str]],
    *,
    examples: int,
    real: Mapping[str, str] | None = None,
) -> FuzzRun:
    """Send `examples` generated requests per operation of the service at `base`, once per caller.

    `real` maps path parameter names to things that exist, so a second variant of each request gets past the
    404s to the handlers.
    """
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    run = FuzzRun()
    # Signing out revokes the callers' tokens, so it goes last or every later operation sees only 401s.
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda o: "logout" in o.label)
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def send(case: schemathesis.Case) -> None:
            variants = [dict(case.path_parameters or {})]
            if case.path_parameters and real:
                variants.append({k: real.get(k, v) for k, v in case.path_parameters.items()})
            for path in variants:
                case.path_parameters = path
                for headers in callers:
                    _call(run, case, base, dict(headers))

        send()
    return run


def _call(run: FuzzRun, case: schemathesis.Case, base: str, headers: dict[str, str]) -> None:
    curl = case.as_curl_command(headers=headers)
    try:
        response = case.call(base_url=base, headers=headers, timeout=60)
    except Exception as exc:  # a dropped connection is a finding too, not the end of the run
        run.fail(case, "no answer", f"{type(exc).__name__}: {exc}", curl)
        return
    status = response.status_code
    run.answered[case.operation.label][status] += 1
    if response.elapsed > SLOW_S:
        run.fail(case, f"{status} slow", f"answered after {response.elapsed:.1f} s", curl)
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises its failures as an exception group
        for failure in getattr(exc, "exceptions", [exc]):
            title = getattr(failure, "title", type(failure).__name__)
            message = " ".join(str(getattr(failure, "message", failure)).split())
            run.fail(case, f"{status} {title}", message, curl)
