"""How the native PostgreSQL starts: `pg_ctl start -w -t` bounded by the caller, the server's own log read when it
does not start, and a fresh port when another process took the one found free before the server could bind it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from quartet_shared.net import free_port
from quartet_tools.infra import InfraError, NativePostgres, Stack

from tests.support.effects import wait_until
from tests.support.listening import listening
from tests.support.started import StartedKafka, StartedRedis


@pytest.fixture
def postgres() -> Iterator[NativePostgres]:
    """A server of the test's own, not started; stopped and removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="quartet-pg-start-"))
    workdir.chmod(0o755)  # the postgres user must reach its data directory under this one
    server = NativePostgres("postgres", free_port(), workdir / "postgres")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.integration
def test_a_port_taken_before_the_server_binds_it_is_left_for_a_fresh_one(postgres: NativePostgres) -> None:
    """What failed a cluster test under load: the port was free when chosen, another process's by the start."""
    with listening() as taken:
        held = postgres.port = taken.getsockname()[1]
        postgres.start()
        assert postgres.port != held
        with psycopg.connect(postgres.admin_url, connect_timeout=5) as conn:
            assert conn.execute("SHOW port").fetchone() == (str(postgres.port),)
    log = postgres.logfile.read_text()
    assert 'could not bind IPv4 address "127.0.0.1": Address already in use' in log
    assert f"Is another postmaster already running on port {held}?" in log


@pytest.mark.integration
def test_a_start_past_its_bound_fails_with_pg_ctls_reason(postgres: NativePostgres) -> None:
    """pg_ctl's -t is the caller's bound (0 here: it stops waiting at once), and its words reach the error."""
    with pytest.raises(InfraError, match=r"(?s)its logs say:.*pg_ctl: server did not start in time"):
        postgres.start(timeout_s=0)
    # pg_ctl stopped waiting, not the server: it comes up by itself, and the fixture stops it.
    wait_until(postgres.running, 60, "the postmaster to write its pidfile")


@pytest.mark.integration
def test_a_server_that_exits_for_another_reason_is_not_moved_and_its_log_says_why(postgres: NativePostgres) -> None:
    postgres.start()
    postgres.stop()
    wait_until(lambda: not postgres.running(), 60, "the server to stop")
    port = postgres.port
    with (postgres.workdir / "data" / "postgresql.conf").open("a") as conf:
        conf.write("no_such_setting = 1\n")
    with pytest.raises(InfraError, match=r'unrecognized configuration parameter "no_such_setting"'):
        postgres.start()
    assert postgres.port == port


class _MovedPostgres(NativePostgres):
    def start(self, timeout_s: float = 120.0) -> None:
        """Up on the next port, as after its own was taken."""
        self.port += 1


def test_the_stack_saves_the_port_postgres_moved_to(tmp_path: Path) -> None:
    """`make up` writes the moved port, so `make down` and the next `make up` find the server where it is."""
    stack = Stack(
        kafka=StartedKafka("kafka", 9092, tmp_path / "kafka"),
        redis=StartedRedis("redis", 6379, tmp_path / "redis"),
        postgres=_MovedPostgres("postgres", 5432, tmp_path / "postgres"),
    )
    stack.start()
    assert (tmp_path / "postgres" / "port").read_text() == "5433"
