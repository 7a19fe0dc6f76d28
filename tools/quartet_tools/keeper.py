"""The keeper each of `make up`'s native service processes runs under: it starts the process, starts it again
with the same command and environment when it dies (so a worker keeps its instance id, and with it its
transactional id and static group membership), after the shared `RestartPolicy`'s backoff and not past its bound
per minute, and logs each restart into the process's own log.

`python -m quartet_tools.keeper --state FILE -- COMMAND...`: the keeper's pid is the one `make up` records (its
SIGTERM ends the process within the contract's 30 s, then the keeper); FILE (JSON) says the live process's pid,
its starts and whether the keeper gave up, for `make up`'s summary and the simulator's chaos panel.

The kept process dies with its keeper: it asks the kernel (prctl PR_SET_PDEATHSIG) for a SIGTERM when the keeper
ends, however it ends, so a keeper SIGKILLed (by a person, the OOM killer, `make down` past its 30 s) leaves no
orphan holding the slot's ports, instance id and group membership for the next `make up`'s process to fight over.

Why not supervisord or circus. Both restart a process that dies, but neither has this policy: supervisord's backoff
only covers a process that dies within `startsecs` of its start (waits growing by 1 s, then FATAL after
`startretries`), while one that dies after running is restarted at once and without bound; circus restarts at once
too, bounded only by `max_retry` over the watcher's life. The 1 s doubling to 30 s and at most 5 restarts a minute,
which the simulator's own supervisor shares (`quartet_shared.restarts`), would have to be rebuilt around either in
an event listener or plugin. Neither counts starts for the console (supervisord's XML-RPC gives the pid and state,
not how often it restarted), and both are one daemon for every process, where `make up` stops, starts and scales
each service and worker slot on its own with a pidfile each: adopting one means rewriting that supervisor
(`quartet_tools.services`), not this module. The simulator's SIGKILL would work unchanged with either (it kills the
kept pid; they restart it). A supervisord killed by SIGKILL orphans its children too.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from quartet_shared.restarts import RestartPolicy, RestartSettings
from quartet_shared.settings import load_settings

# The contract gives a service 30 s to exit on SIGTERM; past it the keeper SIGKILLs it.
STOP_TIMEOUT_S = 30.0
# prctl(2)'s option asking for a signal when the parent ends (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def dies_with_keeper() -> Callable[[], None] | None:
    """A `preexec_fn` under which the started process gets SIGTERM once this keeper ends, even by SIGKILL.

    ctypes rather than python-prctl: that binding has had no release since 2020 and builds against libcap's
    headers, for one syscall. SIGTERM, not SIGKILL: the process gets the contract's clean stop, as from
    `make down`. The kernel sends it when the *thread* that forked the process ends, so the keeper starts it from
    its main thread only. None off Linux, which has no such call.
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    keeper = os.getpid()

    def arm() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # A keeper that died between the fork and the prctl sent no signal: the process is an orphan already.
        if os.getppid() != keeper:
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


@dataclass(frozen=True)
class KeeperState:
    """What a keeper's state file says: the live process (None between two starts), its starts, and whether the
    keeper gave up on it."""

    pid: int | None
    starts: int
    gave_up: bool = False

    @classmethod
    def read(cls, path: Path) -> KeeperState | None:
        """The state in `path`, None when there is none (or it is being replaced)."""
        try:
            data = json.loads(path.read_text())
            return cls(data["pid"], int(data["starts"]), bool(data.get("gave_up", False)))
        except (OSError, ValueError, KeyError):
            return None

    def write(self, path: Path) -> None:
        """Replace `path` at once, so a reader never sees half of it."""
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"pid": self.pid, "starts": self.starts, "gave_up": self.gave_up}))
        partial.replace(path)


@dataclass
class Keeper:
    """Runs `command` until told to stop, restarting it by `policy`."""

    command: list[str]
    state: Path
    policy: RestartPolicy
    _stopping: threading.Event = field(default_factory=threading.Event)
    _proc: subprocess.Popen[bytes] | None = None

    def stop(self, *_: object) -> None:
        """End the process (SIGTERM) and then the keeper; safe from a signal handler."""
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            timer = threading.Timer(STOP_TIMEOUT_S, proc.kill)
            timer.daemon = True
            timer.start()

    def run(self) -> int:
        """Start the process and keep it running; the exit code of its last run once stopped or given up."""
        starts = 0
        while True:
            starts += 1
            started = time.monotonic()
            self._proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, preexec_fn=dies_with_keeper())
            KeeperState(self._proc.pid, starts).write(self.state)
            if self._stopping.is_set():  # a SIGTERM while it was being started
                self.stop()
            # A shell's convention for a death by signal (128 + its number), since an exit code cannot be negative.
            returned = self._proc.wait()
            code = returned if returned >= 0 else 128 - returned
            if self._stopping.is_set():
                KeeperState(None, starts).write(self.state)
                return code
            died = time.monotonic()
            delay = self.policy.next_delay(died)
            if delay is None:
                _log(
                    f"exited with {code} after {died - started:.1f} s; {self.policy.per_window} restarts within "
                    f"{self.policy.window_s:g} s already, not restarted again"
                )
                KeeperState(None, starts, gave_up=True).write(self.state)
                return code or 1
            KeeperState(None, starts).write(self.state)
            _log(f"exited with {code} after {died - started:.1f} s; restart {starts} in {delay:g} s")
            if self._stopping.wait(delay):
                return code
            self.policy.restarted(time.monotonic())


def _log(message: str) -> None:
    """One line in the process's log (the keeper's stdout is that log)."""
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} keeper[{os.getpid()}]: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m quartet_tools.keeper --state FILE -- COMMAND...`."""
    parser = argparse.ArgumentParser(prog="quartet-keeper", description=__doc__)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to keep")
    keeper = Keeper(command, args.state, RestartPolicy.of(load_settings(RestartSettings)))

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        keeper.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return keeper.run()


if __name__ == "__main__":
    sys.exit(main())
