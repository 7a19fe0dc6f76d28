"""Run the `quartet` console script as a user would, for end-to-end tests of the job services."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.auth import ADMIN_KEY

BIN = Path(sys.executable).parent


def quartet(
    *args: str, cwd: Path, timeout_s: float = 600, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`quartet ARGS` in `cwd` (120 columns wide) with the test admin key and `env` (else this process's
    environment), output captured; never raises."""
    env = {**(env or os.environ), "COLUMNS": "120", "QUARTET_API_KEY": ADMIN_KEY}
    return subprocess.run(
        [str(BIN / "quartet"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
