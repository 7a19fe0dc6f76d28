"""Where a bench's CPU went: the CPU time of every process under the bench's own, by kind, and the machine's.

Read from /proc every couple of seconds, since the processes come and go (a SIGKILLed worker, a restarted node):
each process counts the CPU time it had at its last sample (one that existed before the sampler started counts
from its first), so a process that dies loses at most its last interval. The machine's busy time, against what
the bench's processes used, says how much the other work on the host took.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
# A process's kind by what its command line holds; the first match wins, the bench's own process is "simulator".
KINDS = (
    ("kafka nodes", "kafka.Kafka"),
    ("training workers", "training-worker"),
    ("planning workers", "path-planner"),
    ("rental manager", "rental-manager"),
    ("toxiproxy", "toxiproxy"),
    ("redis", "redis-server"),
    ("postgres", "postgres"),
)


def _stat(pid: int) -> tuple[int, float] | None:
    """A process's parent and its CPU seconds (user + system) so far, or None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    """Every live process under `root` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def machine_cpu() -> tuple[float, float]:
    """The machine's busy and total CPU seconds since boot, over all cores."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    total = sum(values[:8])  # up to steal; guest time is counted in user already
    return (total - idle) / TICKS, total / TICKS


def kind_of(cmdline: str) -> str:
    """The kind of process a command line belongs to ("other" when none matches)."""
    return next((kind for kind, marker in KINDS if marker in cmdline), "other")


@dataclass(frozen=True)
class CpuShares:
    """CPU seconds by kind of process over a wall time, and the machine's busy seconds over its cores."""

    wall_s: float
    cores: int
    by_kind: dict[str, float]
    machine_busy_s: float

    @property
    def ours_s(self) -> float:
        """Everything the bench's processes used."""
        return sum(self.by_kind.values())


@dataclass
class CpuSampler:
    """Samples the CPU time of `root` and every process under it in a thread, from `with` to its end."""

    root: int
    interval_s: float = 2.0
    _first: dict[int, float] = field(default_factory=dict)
    _last: dict[int, float] = field(default_factory=dict)
    _kind: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _ended: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __enter__(self) -> CpuSampler:
        self._started = (time.monotonic(), *machine_cpu())
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.sample()
        self._ended = (time.monotonic(), *machine_cpu())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        """Read every process under the root once."""
        first_round = not self._last
        for pid in [self.root, *descendants(self.root)]:
            stat = _stat(pid)
            if stat is None:
                continue
            if pid not in self._kind:
                self._kind[pid] = "simulator" if pid == self.root else kind_of(_cmdline(pid))
                # A process already running when the sampler started counts from there; a later one from its start.
                self._first[pid] = stat[1] if first_round else 0.0
            self._last[pid] = stat[1]

    def shares(self) -> CpuShares:
        """What the processes used between the start and the end of the `with`."""
        by_kind: dict[str, float] = {}
        for pid, last in self._last.items():
            kind = self._kind[pid]
            by_kind[kind] = by_kind.get(kind, 0.0) + last - self._first[pid]
        (t0, busy0, _), (t1, busy1, _) = self._started, self._ended
        return CpuShares(wall_s=t1 - t0, cores=os.cpu_count() or 1, by_kind=by_kind, machine_busy_s=busy1 - busy0)
