"""The README's "Publishing jobs to topics" commands, run as written there: natively or inside Compose.

The commands come from the README itself, so the documentation and its tests cannot drift: the section's first
shell block says where the Kafka scripts run (one assignment line per place), its second block publishes and
reads. A run is that place's line, then the second block as it is, then one line that prints the job ids the
block made up, so a test can look for them.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Publishing jobs to topics"
Where = Literal["natively", "inside Compose"]
IDS_MARK = "published job ids:"


def section() -> str:
    """The README's section on publishing jobs, up to the next section."""
    readme = (REPO / "README.md").read_text()
    return readme.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]


def shell_blocks() -> list[str]:
    """The section's bash blocks, in order."""
    return re.findall(r"^```bash\n(.*?)^```", section(), flags=re.MULTILINE | re.DOTALL)


def setup_line(where: Where) -> str:
    """The first block's line that points `kafka` and `bootstrap` at `where`."""
    lines = [line for line in shell_blocks()[0].splitlines() if line.startswith("kafka=") and line.endswith(where)]
    assert len(lines) == 1, f"the README's section names no single setup line for {where!r}"
    return lines[0]


@dataclass(frozen=True)
class PublishRun:
    """What the section's commands printed, and the ids of the jobs they published."""

    returncode: int
    stdout: str
    stderr: str
    training: str
    planning: str
    broken: str

    def record_about(self, job_id: str) -> tuple[dict[str, str], str, dict[str, Any]]:
        """The consumer's line about `job_id`: its headers, key and JSON value."""
        lines = [line for line in self.stdout.splitlines() if line.count("\t") == 2 and job_id in line]
        assert len(lines) == 1, f"expected one record about {job_id} in:\n{self.stdout}\n{self.stderr[-3000:]}"
        headers, key, value = lines[0].split("\t")
        parsed = dict(header.split(":", 1) for header in headers.split(","))
        return parsed, key, json.loads(value)


def run_publish_section(where: Where, env: Mapping[str, str], timeout_s: float = 900) -> PublishRun:
    """Run the README's commands in the repo for `where` with `env` (all of it: it needs PATH with `quartet`,
    KAFKA_BOOTSTRAP_SERVERS for `quartet` and, natively, the scripts; for Compose, the Docker client's variables
    and the Compose project's variables, e.g. ComposeStack.variables())."""
    script = "\n".join(
        ["set -e", setup_line(where), shell_blocks()[1], f'echo "{IDS_MARK} $training $planning $broken"']
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    ids = [line for line in done.stdout.splitlines() if line.startswith(IDS_MARK)]
    training, planning, broken = ids[0].removeprefix(IDS_MARK).split() if ids else ("", "", "")
    return PublishRun(done.returncode, done.stdout, done.stderr, training, planning, broken)
