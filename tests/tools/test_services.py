"""`make up`'s native launch: every service process reaches PostgreSQL as its own role, never as the superuser."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from quartet_shared.auth import SCOPES, ApiKeys, bearer_headers, write_api_keys_file
from quartet_shared.settings import KernelSettings
from quartet_tools import images, services
from quartet_tools.infra import NativePostgres, password_variable
from quartet_tools.services import launch_env, manifest
from sqlalchemy.engine import make_url

from tests.support.jobs import service_process
from tests.support.rental_process import rental_manager_process
from tests.support.servers import Servers


def _libpq(url: str) -> str:
    """A URL psycopg takes (testcontainers hands out SQLAlchemy's postgresql+psycopg://)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _as_role(env: dict[str, str]) -> psycopg.Connection:
    """Connect the way the service does: its URL, and libpq's PGPASSWORD."""
    url = next(value for key, value in env.items() if key.endswith("DATABASE_URL") and "WORKER" not in key)
    return psycopg.connect(_libpq(url), password=env["PGPASSWORD"], autocommit=True, connect_timeout=5)


def test_every_service_has_a_role_of_its_own() -> None:
    """The manifest names one role per service, and no two share one."""
    roles = {svc.name: svc.database_role for svc in manifest()}
    assert roles == {
        "training-worker": "training",
        "path-planner": "planning",
        "rental-manager": "rental",
        "simulator": "simulator",
    }


def test_launch_env_hands_every_service_the_generated_api_keys_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make up`'s keys reach every process; a QUARTET_API_KEYS of the user's own is left to win."""
    monkeypatch.delenv("QUARTET_API_KEYS", raising=False)
    monkeypatch.delenv("QUARTET_API_KEY", raising=False)
    keys = write_api_keys_file(tmp_path / "api-keys.env")
    for svc in manifest():
        env = launch_env(svc, lambda role: {}, keys)
        key = ApiKeys.parse(env["QUARTET_API_KEYS"]).identify(env["QUARTET_API_KEY"])
        assert key is not None and key.scopes == SCOPES
    monkeypatch.setenv("QUARTET_API_KEYS", "{}")
    assert "QUARTET_API_KEYS" not in launch_env(manifest()[0], lambda role: {}, keys)


def test_launch_env_hands_each_service_its_roles_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its URL names its role and database with no password in it; PGPASSWORD is that role's; no superuser."""
    for name in ("POSTGRES_PASSWORD", *(password_variable(r) for r in ("training", "planning", "rental", "simulator"))):
        monkeypatch.delenv(name, raising=False)
    postgres = NativePostgres("postgres", 5432, tmp_path)
    passwords = postgres.passwords()
    for svc in manifest():
        assert svc.database_role is not None
        env = launch_env(svc, postgres.service_env)
        assert env["QUARTET_SERVICE_NAME"] == svc.name
        assert env["PGPASSWORD"] == passwords[password_variable(svc.database_role)]
        urls = {key: make_url(value) for key, value in env.items() if "DATABASE_URL" in key}
        own = urls.pop("SIMULATOR_RENTAL_DATABASE_URL" if svc.name == "simulator" else "DATABASE_URL")
        assert (own.username, own.password) == (svc.database_role, None)
        assert own.database == {"simulator": "rental"}.get(svc.database_role, svc.database_role)
        # The simulator's managed workers connect as their services' roles, each URL with its own password.
        assert {(u.username, u.password) for u in urls.values()} == (
            {
                ("training", passwords["POSTGRES_TRAINING_PASSWORD"]),
                ("planning", passwords["POSTGRES_PLANNING_PASSWORD"]),
            }
            if svc.name == "simulator"
            else set()
        )
        assert passwords["POSTGRES_PASSWORD"] not in env.values()


@pytest.mark.integration
def test_a_job_service_started_as_make_up_does_uses_its_own_role(
    servers: Servers, settings: KernelSettings, unique: str, tmp_path: Path
) -> None:
    """training-worker connects to the training database as `training`, creates its tables there, keeps no SQLite."""
    svc = next(s for s in manifest() if s.name == "training-worker")
    keys = write_api_keys_file(tmp_path / "api-keys.env")
    env = launch_env(svc, servers.service_env, keys)
    with service_process("training-worker", "TRAINING_", settings, unique, tmp_path, env=env) as running:
        # The key `make up` generated is the one the service accepts (the test keys are replaced by it).
        assert httpx.get(f"{running.base}/jobs", timeout=10).status_code == 401
        listed = httpx.get(f"{running.base}/jobs", headers=bearer_headers(keys["QUARTET_API_KEY"]), timeout=10)
        assert listed.status_code == 200
        with psycopg.connect(_libpq(servers.database_url), autocommit=True) as admin:
            users = admin.execute("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'training'")
            assert users.fetchall() == [("training",)]
    with _as_role(env) as conn:
        owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
    assert owners == [("training",)]
    assert not (tmp_path / ".local" / "data").exists(), "it fell back to SQLite"


@pytest.mark.integration
def test_the_rental_manager_migrates_as_its_role_and_the_simulator_reads_what_it_made(
    servers: Servers, unique: str, tmp_path: Path
) -> None:
    """Alembic runs as `rental` in the rental database; the simulator's role reads those tables and nothing more."""
    svc = next(s for s in manifest() if s.name == "rental-manager")
    env = launch_env(svc, servers.service_env)
    database_url = env.pop("DATABASE_URL")
    with rental_manager_process(
        servers.kafka_bootstrap, servers.redis_url, database_url, tmp_path, f"p{unique}.", extra_env=env
    ):
        with _as_role(servers.service_env("rental")) as conn:
            owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
        assert owners == [("rental",)]
    with _as_role(servers.service_env("simulator")) as sim:
        assert sim.execute("SELECT count(*) FROM leases").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sim.execute("DELETE FROM leases")


def test_make_up_with_compose_builds_the_service_images_from_staged_wheels_before_compose_runs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compose alone cannot stage the wheels a service image is built from: `make up` has the image registry build
    every service image first, then asks Compose only to run them (a fresh clone failed on `up --build`)."""
    calls: list[object] = []
    monkeypatch.setattr(services, "API_KEYS_FILE", tmp_path / "api-keys.env")
    monkeypatch.setattr(services, "compose_active", lambda: True)
    monkeypatch.setattr(services, "compose_command", lambda: ["docker", "compose"])
    monkeypatch.setattr(images, "build", lambda names: calls.append(("build", sorted(names))))
    monkeypatch.setattr(services.subprocess, "run", lambda command, check: calls.append(command))
    services.up()
    assert calls == [
        ("build", sorted(set(images.IMAGES) - set(images.SERVERS))),
        ["docker", "compose", "up", "-d", "--wait"],
    ]
