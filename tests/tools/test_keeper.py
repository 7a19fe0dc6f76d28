"""The keeper of `make up`'s native processes, run as `make up` runs it, over a small real process: a process
that dies is started again with the same environment after the backoff, each restart is logged, the keeper gives
up past its bound per minute, and its SIGTERM ends the process and then itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from quartet_tools.keeper import KeeperState

from tests.support.effects import wait_until

# Appends "pid slot" to the file its first argument names, then lives (or, with DIE set, dies at once).
CHILD = (
    "import os, sys, time\n"
    "with open(sys.argv[1], 'a') as f: f.write(f\"{os.getpid()} {os.environ['SLOT']}\\n\")\n"
    "sys.exit(3) if os.environ.get('DIE') else time.sleep(120)\n"
)


def _keeper(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], Path, Path, Path]:
    state, seen, log = tmp_path / "keeper.json", tmp_path / "seen", tmp_path / "log"
    with log.open("ab") as out:
        keeper = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "quartet_tools.keeper",
                "--state",
                str(state),
                "--",
                sys.executable,
                "-c",
                CHILD,
                str(seen),
            ],
            env={**os.environ, "SLOT": "worker-1", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return keeper, state, seen, log


def _state(path: Path) -> KeeperState:
    state = KeeperState.read(path)
    assert state is not None
    return state


def test_a_killed_process_comes_back_with_the_same_environment_and_sigterm_ends_both(tmp_path: Path) -> None:
    keeper, state, seen, log = _keeper(tmp_path, QUARTET_RESTART_DELAY_S="0.2")
    try:
        wait_until(lambda: seen.exists() and len(seen.read_text().splitlines()) == 1, 30, "the first start")
        first = _state(state)
        assert first.starts == 1 and first.pid == int(seen.read_text().split()[0])
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: len(seen.read_text().splitlines()) == 2, 30, "the restart")
        again = seen.read_text().splitlines()[1].split()
        assert again[1] == "worker-1" and int(again[0]) != first.pid
        wait_until(lambda: _state(state).pid == int(again[0]), 10, "the state to name the new process")
        assert _state(state).starts == 2
        assert "exited with 137" in log.read_text() and "restart 1 in 0.2 s" in log.read_text()
        keeper.send_signal(signal.SIGTERM)
        assert keeper.wait(40) == 128 + signal.SIGTERM
        assert not Path(f"/proc/{again[0]}").exists()
        assert _state(state).pid is None
    finally:
        keeper.kill()
        keeper.wait(10)


def test_a_process_that_keeps_dying_is_given_up_past_the_bound_with_growing_waits(tmp_path: Path) -> None:
    keeper, state, seen, log = _keeper(tmp_path, DIE="1", QUARTET_RESTART_DELAY_S="0.1", QUARTET_RESTART_PER_MINUTE="3")
    try:
        assert keeper.wait(30) == 3
    finally:
        keeper.kill()
    assert len(seen.read_text().splitlines()) == 4
    assert _state(state) == KeeperState(None, 4, gave_up=True)
    text = log.read_text()
    assert [f"restart {n} in {d} s" in text for n, d in ((1, "0.1"), (2, "0.2"), (3, "0.4"))] == [True] * 3
    assert "3 restarts within 60 s already, not restarted again" in text


def _alive(pid: int) -> bool:
    """True while `pid` runs: gone from /proc, or a zombie waiting for init to reap it, is not alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_sigkilled_keeper_takes_its_process_with_it(tmp_path: Path) -> None:
    """No handler runs in a SIGKILLed keeper: the kernel's parent-death signal still ends the process it kept."""
    keeper, state, seen, _ = _keeper(tmp_path)
    child: int | None = None
    try:
        wait_until(lambda: seen.exists() and len(seen.read_text().splitlines()) == 1, 30, "the first start")
        child = _state(state).pid
        assert child is not None and _alive(child)
        keeper.kill()
        assert keeper.wait(10) == -signal.SIGKILL
        wait_until(lambda: not _alive(child), 10, "the kept process to end with its keeper")
    finally:
        keeper.kill()
        keeper.wait(10)
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
