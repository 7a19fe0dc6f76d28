"""What the simulator's tests hand it: a small valid scenario's text, and settings on the session's servers."""

from __future__ import annotations

from pathlib import Path

from quartet_shared.settings import KernelSettings
from simulator.settings import SimulatorSettings

# One linear-model training job a second for five seconds: a valid scenario, short enough to run in a unit test.
GOOD = """\
name: api
seed: 1
duration_s: 5
rate: {shape: constant, per_second: 1}
mix:
  - action: training
    weight: 1
    pool:
      - spec: {model: {kind: linear}, epochs: 3}
"""


def simulator_settings(settings: KernelSettings, prefix: str, runs: Path) -> SimulatorSettings:
    """The simulator pointed at the session's servers, on topics of its own."""
    return SimulatorSettings(**settings.model_dump(), topic_prefix=prefix, runs_dir=runs, infra="none")
