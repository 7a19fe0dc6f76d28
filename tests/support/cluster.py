"""The fault tests' length of a held fault."""

from __future__ import annotations

import os

# How long the tests that hold a fault (a node down, a leader cut off or slowed) hold it: the 60 s, shortened
# for `make test` but kept past the runner's 10 s transaction stall bound, so a transaction stuck behind the fault
# has its producer replaced. QUARTET_TEST_FAULT_S=60 runs them at the length.
FAULT_S = float(os.environ.get("QUARTET_TEST_FAULT_S", "12"))
