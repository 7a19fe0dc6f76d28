"""API keys for tests: one with every scope, and narrower ones for the 403 cases."""

from __future__ import annotations

import json

from pydantic import SecretStr
from quartet_shared.auth import JOBS_READ, JOBS_WRITE, SCOPES, SIMULATOR_RUN, bearer_headers

ADMIN_KEY = "test-admin-key-with-every-scope"
READ_KEY = "test-key-with-jobs-read-only"
WRITE_KEY = "test-key-with-jobs-write-only"
RUN_KEY = "test-key-with-simulator-run-only"

API_KEYS_JSON = json.dumps(
    {
        "test-admin": {"key": ADMIN_KEY, "scopes": sorted(SCOPES)},
        "test-reader": {"key": READ_KEY, "scopes": [JOBS_READ]},
        "test-writer": {"key": WRITE_KEY, "scopes": [JOBS_WRITE]},
        "test-runner": {"key": RUN_KEY, "scopes": [SIMULATOR_RUN]},
    }
)
API_KEYS = SecretStr(API_KEYS_JSON)
ADMIN = bearer_headers(ADMIN_KEY)
READER = bearer_headers(READ_KEY)
WRITER = bearer_headers(WRITE_KEY)
RUNNER = bearer_headers(RUN_KEY)
