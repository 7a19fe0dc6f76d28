"""Schemathesis against the OpenAPI document, in process on the ASGI app: no input gives a 5xx.

Every generated request is sent as each role (admin, landlord, tenant) and anonymously, on a database of
its own that holds one world of users, houses, leases and bills, so authorised paths are exercised too.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from quartet_shared.settings import KernelSettings
from rental_manager.api import create_api
from rental_manager.bootstrap import bootstrap
from schemathesis.checks import not_a_server_error

from tests.support.rental import build_world, cast, rental_settings

pytestmark = pytest.mark.integration

EXAMPLES = 10


def test_no_request_gets_a_server_error(settings: KernelSettings, own_database: str, unique: str) -> None:
    rental = bootstrap(rental_settings(settings, own_database, unique))
    try:
        world = build_world(rental, cast(rental))
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_api(rental))
        callers = [dict(world.admin.headers), dict(world.l1.headers), dict(world.t1.headers), {}]
        # Signing out revokes the callers' tokens, so it goes last or every later operation sees only 401s.
        operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda o: o.label == "POST /auth/logout")
        assert len(operations) > 40
        answered: dict[str, Counter[int]] = defaultdict(Counter)
        real = {
            "house_id": str(world.house),
            "photo_id": str(world.photo),
            "viewing_id": str(world.viewing),
            "application_id": str(world.pending),
            "lease_id": str(world.lease),
            "bill_id": str(world.bill),
            "request_id": str(world.request),
        }
        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )
            def no_server_error(case: schemathesis.Case) -> None:
                variants = [dict(case.path_parameters or {})]
                if case.path_parameters:
                    # Also aim the generated request at things that exist, so it gets past the 404s.
                    variants.append({k: real.get(k, v) for k, v in case.path_parameters.items()})
                for path in variants:
                    case.path_parameters = path
                    for headers in callers:
                        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
                        answered[case.operation.label][response.status_code] += 1

            no_server_error()
        # The run reached the handlers, not only the validators: most operations succeeded for someone.
        succeeded = {label for label, codes in answered.items() if any(200 <= c < 300 for c in codes)}
        assert len(succeeded) >= len(operations) // 2, sorted(set(answered) - succeeded)
    finally:
        rental.close()
