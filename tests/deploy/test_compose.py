"""docker-compose.yml against the Compose specification and against the services it runs.

No Docker engine is needed: the file is checked against the Compose specification's JSON schema (vendored
from compose-go, see deploy/schemas/SOURCES.json), its references are followed, and every service container's
environment (.env.example, then its own `environment`) is loaded into that service's real settings class.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from dotenv import dotenv_values
from quartet_shared.auth import write_api_keys_file
from quartet_shared.settings import KernelSettings
from quartet_tools.infra import ROLE_DATABASES, ROLES_SQL, SERVICE_ROLES, kafka_version, password_variable
from sqlalchemy.engine import make_url

from tests.deploy.compose_file import (
    ENV_EXAMPLE,
    INTERPOLATION,
    app_containers,
    compose,
    container_env,
    is_app,
    program_of,
    published,
)
from tests.deploy.conftest import (
    BY_PROGRAM,
    LIBPQ_VARIABLES,
    REPO,
    SERVICE_ROLE,
    Roles,
    load_with,
    require_roles,
    required_variables,
    settings_class,
    variable_names,
)

LOOPBACK_UNLESS_TOLD = "${QUARTET_PUBLISH_ADDR:-127.0.0.1}"
SCHEMA = REPO / "deploy" / "schemas" / "compose-spec.json"
SERVERS = ("kafka", "redis", "postgres")


def test_compose_file_follows_the_compose_specification() -> None:
    """Every key and value shape is one the Compose specification allows."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_rejects_a_misspelt_key() -> None:
    """The schema check is not vacuous: an unknown service key fails it."""
    schema = json.loads(SCHEMA.read_text())
    broken = compose()
    broken["services"]["kafka"]["helthcheck"] = broken["services"]["kafka"].pop("healthcheck")
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


def test_references_resolve() -> None:
    """depends_on names services, named volumes are declared, and files the stack mounts or builds exist."""
    data = compose()
    services = data["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for volume in svc.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in data["volumes"], f"{name} uses undeclared volume {source}"
        if "build" in svc:
            assert (REPO / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        for entry in svc.get("env_file", []):
            if isinstance(entry, dict) and entry.get("required") is False:
                continue
            assert (REPO / (entry["path"] if isinstance(entry, dict) else entry)).is_file()


def test_servers_have_healthchecks_and_named_volumes() -> None:
    """Kafka, Redis and PostgreSQL report health; Kafka's and PostgreSQL's data survive a restart."""
    services = compose()["services"]
    for name in SERVERS:
        assert services[name]["healthcheck"]["test"], name
    assert any(v.startswith("kafka-data:") for v in services["kafka"]["volumes"])
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])


def test_kafka_is_the_local_broker_version_in_kraft_mode() -> None:
    """The project's Kafka image, tagged with the version deploy/kafka/pom.xml pins, in KRaft mode."""
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == f"quartet/kafka:{kafka_version()}"
    assert re.fullmatch(r"4\.\d+\.\d+", kafka_version())
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert not any("ZOOKEEPER" in key for key in env)


def test_servers_run_the_images_the_project_builds() -> None:
    """Kafka, Redis and PostgreSQL are the image registry's own (tag and Dockerfile), never a registry's pull."""
    from quartet_tools.images import IMAGES

    services = compose()["services"]
    for name in SERVERS:
        image = IMAGES[name]
        assert services[name]["image"] == image.tag, name
        assert services[name]["build"] == {"context": ".", "dockerfile": image.dockerfile}, name


def test_the_testcontainers_fixtures_run_the_images_compose_runs() -> None:
    """Where a Docker engine answers, the tests' servers are the same images the Compose file deploys."""
    from tests.support.servers import POSTGRES_IMAGE, REDIS_IMAGE

    services = compose()["services"]
    assert (services["redis"]["image"], services["postgres"]["image"]) == (REDIS_IMAGE, POSTGRES_IMAGE)


def test_services_wait_for_servers_topics_and_migrations() -> None:
    """No service container starts before the servers are healthy and the one-shot steps have succeeded."""
    services = compose()["services"]
    topics = services["kafka-topics"]
    assert topics["entrypoint"] == ["quartet-topics"] and not topics.get("command")
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name, svc in app_containers().items():
        if name in ("kafka-topics", "rental-migrate"):
            assert svc["restart"] == "no", f"{name} is a one-shot step"
            continue
        deps = svc["depends_on"]
        assert deps["kafka-topics"] == {"condition": "service_completed_successfully"}, name
        for server in ("redis", "postgres"):
            assert deps[server] == {"condition": "service_healthy"}, name
        if program_of(svc) == "rental-manager":
            assert deps["rental-migrate"] == {"condition": "service_completed_successfully"}, name
        # The image's HEALTHCHECK (GET /healthz) applies unless a container turns it off.
        assert not svc.get("healthcheck", {}).get("disable"), f"{name} disables its health check"
        # Past the contract's 30 s for a clean stop, so Docker never SIGKILLs a service mid-shutdown.
        assert svc["stop_grace_period"] == "35s", name


def test_every_service_runs_its_api_and_workers_in_separate_containers() -> None:
    """Job services: an API and a worker container; rental also a relay; the simulator optional."""
    runs: dict[str, set[str]] = {}
    for svc in app_containers().values():
        if svc.get("entrypoint"):
            continue
        runs.setdefault(program_of(svc), set()).add(svc["command"][0])
    assert runs["training-worker"] >= {"api", "worker"}
    assert runs["path-planner"] >= {"api", "worker"}
    assert runs["rental-manager"] >= {"api", "worker", "relay", "migrate"}
    assert runs["simulator"] == {"api"}
    services = compose()["services"]
    assert services["simulator"]["profiles"] == ["simulator"]
    assert services["kafka-ui"]["profiles"] == ["ui"]


@pytest.mark.parametrize("name", sorted(app_containers()))
def test_container_runs_a_role_its_service_has(name: str, service_roles: dict[str, Roles]) -> None:
    """The command of every container is a role the service's console script accepts."""
    svc = app_containers()[name]
    if svc.get("entrypoint"):
        return
    require_roles(program_of(svc), {svc["command"][0]}, service_roles)


@pytest.mark.parametrize("name", sorted(app_containers()))
def test_container_environment_satisfies_its_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable without a default is provided, every variable given is one the service reads,
    and the settings load from exactly what the container gets."""
    svc = app_containers()[name]
    env = container_env(svc)
    program = program_of(svc)
    cls = KernelSettings if svc.get("entrypoint") == ["quartet-topics"] else settings_class(BY_PROGRAM[program].package)
    missing = required_variables(cls) - set(env)
    assert not missing, f"{name} lacks {sorted(missing)}"
    known = set(variable_names(cls)) | LIBPQ_VARIABLES
    prefix = str(cls.model_config.get("env_prefix", ""))
    # Variables of this service's prefix and the kernel's unprefixed ones must be real settings (no typos);
    # other services' variables from the shared .env.example are ignored by this one.
    ours = {var for var in env if var.startswith((prefix, "KAFKA_", "REDIS_", "DATABASE_", "LOG_", "PG"))}
    unknown = ours - known
    assert not unknown, f"{name} sets {sorted(unknown)}, which {cls.__name__} does not read"
    settings = load_with(cls, env, monkeypatch)
    if "DATABASE_URL" in env:
        assert settings.database_url == env["DATABASE_URL"]
        assert "@" in env["DATABASE_URL"] and ":" not in env["DATABASE_URL"].split("//")[1].split("@")[0], (
            "DATABASE_URL must not carry the password (libpq takes it from PGPASSWORD)"
        )


@pytest.mark.parametrize("name", sorted(app_containers()))
def test_ports_match_the_contract(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Image port, published port and the service's own port setting are the contract's port."""
    svc = app_containers()[name]
    if svc.get("entrypoint"):
        return
    service = BY_PROGRAM[program_of(svc)]
    assert int(svc["build"]["args"]["PORT"]) == service.port
    for mapping in svc.get("ports", []):
        _address, host, container = published(mapping)
        assert int(host) == int(container) == service.port, f"{name} publishes {mapping}"
    settings = load_with(settings_class(service.package), container_env(svc), monkeypatch)
    assert getattr(settings, "port", None) == service.port


def test_api_ports_are_published_and_workers_keep_theirs_inside() -> None:
    """Users reach the APIs on the contract's ports; workers serve health and metrics only to Docker."""
    published = {
        program_of(svc): svc["ports"] for name, svc in app_containers().items() if svc.get("command") == ["api"]
    }
    assert published == {p: [f"{LOOPBACK_UNLESS_TOLD}:{s.port}:{s.port}"] for p, s in BY_PROGRAM.items()}
    for name, svc in app_containers().items():
        if svc.get("command") not in (["api"], None):
            assert "ports" not in svc, f"{name} should not publish a port"


# Published on the loopback whatever QUARTET_PUBLISH_ADDR says: the fault proxy's API has no authentication.
LOOPBACK_ALWAYS = {("toxiproxy", "127.0.0.1:8474:8474")}


def test_every_port_is_published_on_loopback_unless_the_user_opts_in() -> None:
    """No container is reachable from other machines by default: QUARTET_PUBLISH_ADDR defaults to 127.0.0.1."""
    mappings = [(name, m) for name, svc in compose()["services"].items() for m in svc.get("ports", [])]
    assert len(mappings) >= 8
    assert set(mappings) >= LOOPBACK_ALWAYS
    for name, mapping in mappings:
        if (name, mapping) not in LOOPBACK_ALWAYS:
            assert published(mapping)[0] == LOOPBACK_UNLESS_TOLD, f"{name} publishes {mapping}"


def test_every_app_container_listens_on_all_of_its_own_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a container 127.0.0.1 would be unreachable from Docker's port forward and the other containers."""
    for name, svc in app_containers().items():
        if svc.get("entrypoint") or svc.get("restart") == "no":
            continue
        service = BY_PROGRAM[program_of(svc)]
        settings = load_with(settings_class(service.package), container_env(svc), monkeypatch)
        assert getattr(settings, "host", None) == "0.0.0.0", name


def test_worker_instance_ids_are_unique() -> None:
    """Each running process names its own transactional id; two equal ids would fence each other. An empty one
    is the container's host name, its id: unique per replica, so the job workers may be scaled."""
    ids: dict[str, str] = {}
    for name, svc in app_containers().items():
        for var, value in (svc.get("environment") or {}).items():
            if var.endswith("INSTANCE_ID"):
                assert value == "" or value not in ids.values(), f"{name} reuses instance id {value}"
                ids[name] = value
    assert {name for name, value in ids.items() if value == ""} == {"training-worker", "planner-worker"}
    long_running = {n for n, s in app_containers().items() if s.get("restart") != "no"}
    assert long_running <= set(ids), f"no instance id for {sorted(long_running - set(ids))}"


def test_env_example_holds_placeholders_only() -> None:
    """No secret in the repository: every secret-looking value says it is a local placeholder."""
    values = dotenv_values(ENV_EXAMPLE)
    secretish = re.compile(r"(PASSWORD|SECRET|TOKEN|KEY)$")
    for var, value in values.items():
        if secretish.search(var):
            assert value and "local-only" in value, f"{var} in .env.example must be an obvious placeholder"
    assert not (REPO / ".env").exists() or ".env" in (REPO / ".gitignore").read_text().split()


def test_every_service_connects_as_its_own_role_with_its_own_password() -> None:
    """Each container's database URL names its service's role (never the superuser) and that role's database,
    and its PGPASSWORD is that role's own variable, interpolated from .env, not a value in the file."""
    superuser = dotenv_values(ENV_EXAMPLE)["POSTGRES_USER"]
    seen: dict[str, str] = {}
    for name, svc in app_containers().items():
        environment = svc.get("environment") or {}
        urls = {k: v for k, v in environment.items() if k.endswith("DATABASE_URL")}
        if not urls:
            assert "PGPASSWORD" not in environment, f"{name} gets a password but no database"
            continue
        role = SERVICE_ROLE[program_of(svc)]
        for url in urls.values():
            parsed = make_url(url)
            assert parsed.username == role != superuser, f"{name} connects as {parsed.username}"
            assert parsed.database == ROLE_DATABASES[role], f"{name} uses the {parsed.database} database"
            assert parsed.password is None, f"{name}'s URL carries a password"
        assert INTERPOLATION.fullmatch(environment["PGPASSWORD"])[1] == password_variable(role), name  # type: ignore[index]
        seen[name] = role
    assert set(seen.values()) == set(SERVICE_ROLES), "every role is used by its service's containers"


SECRETISH = re.compile(r"(PASSWORD|SECRET|TOKEN|KEYS?)$")
ROLE_PASSWORD = re.compile(r"POSTGRES_(\w+)_PASSWORD")
# The containers whose service checks API keys: the job APIs and the simulator's. The rental manager signs its
# users in with its own tokens, and a worker serves only health and metrics.
KEY_CHECKERS = {("training-worker", "api"), ("path-planner", "api"), ("simulator", "api")}


def owns(secret: str, name: str, svc: dict[str, Any]) -> bool:
    """Whether the container `name` may hold the secret variable `secret` (under any name)."""
    program = program_of(svc) if is_app(svc) else None
    command = (svc.get("command") or [""])[0]
    role_password = ROLE_PASSWORD.fullmatch(secret)
    if secret == "POSTGRES_PASSWORD":
        return name == "postgres"
    if role_password:
        # PostgreSQL's init step creates every role; a service uses its own role's only, as PGPASSWORD.
        return name == "postgres" or (program is not None and SERVICE_ROLE[program] == role_password[1].lower())
    if secret.startswith("RENTAL_ADMIN_"):
        return program == "rental-manager" and command == "api"
    if secret.startswith("RENTAL_"):
        return program == "rental-manager"
    if secret == "QUARTET_API_KEYS":
        return (program, command) in KEY_CHECKERS
    # QUARTET_API_KEY is the CLI's, on the host: no container calls another's protected routes (the simulator
    # submits jobs through Kafka).
    return False


def test_each_container_sees_only_its_own_secrets(tmp_path: Path) -> None:
    """Resolved as Compose resolves it for `make up` (.env.example, then the API keys it writes), no container's
    environment holds another's secret: role passwords only in PostgreSQL and each role's own as its service's
    PGPASSWORD, rental secrets only in rental containers, the API keys only where they are checked."""
    keys = tmp_path / "api-keys.env"
    write_api_keys_file(keys)
    values = {**dotenv_values(ENV_EXAMPLE), **dotenv_values(keys)}
    secrets = {var: value for var, value in values.items() if SECRETISH.search(var) and value}
    assert {"QUARTET_API_KEYS", "QUARTET_API_KEY", "RENTAL_JWT_SECRET", "POSTGRES_RENTAL_PASSWORD"} <= set(secrets)
    # Distinct values, so a secret is recognised under any name it is passed as.
    assert len(set(secrets.values())) == len(secrets), "two secrets of .env.example share a placeholder"
    leaks: list[str] = []
    for name, svc in compose()["services"].items():
        env = container_env(svc, values, {".local/api-keys.env": keys})
        for var, value in env.items():
            held = {secret for secret, secret_value in secrets.items() if var == secret or value == secret_value}
            leaks += [f"{name}: {var} holds {secret}" for secret in sorted(held) if not owns(secret, name, svc)]
        if is_app(svc) and "PGPASSWORD" in env:
            assert env["PGPASSWORD"] == secrets[password_variable(SERVICE_ROLE[program_of(svc)])], name
        if is_app(svc) and (program_of(svc), (svc.get("command") or [""])[0]) in KEY_CHECKERS:
            assert env.get("QUARTET_API_KEYS") == secrets["QUARTET_API_KEYS"], f"{name} gets no API keys"
    assert not leaks, "\n".join(leaks)


def test_postgres_creates_the_roles_from_the_environment_when_its_volume_is_new() -> None:
    """The init step runs the roles script natively provisioned too; every role's password is a placeholder
    variable in .env.example and reaches psql through the environment, never through the file."""
    postgres = compose()["services"]["postgres"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in postgres["volumes"]}
    assert mounts["/quartet/roles.sql"] == "./deploy/postgres/roles.sql"
    init = mounts["/docker-entrypoint-initdb.d/10-roles.sh"]
    assert "-f /quartet/roles.sql" in (REPO / init).read_text()
    roles_sql = ROLES_SQL.read_text()
    example = dotenv_values(ENV_EXAMPLE)
    for role in SERVICE_ROLES:
        assert f"\\getenv {role}_password {password_variable(role)}" in roles_sql
        assert "local-only" in (example.get(password_variable(role)) or ""), role
    passwords = {example[password_variable(role)] for role in SERVICE_ROLES}
    assert len(passwords) == len(SERVICE_ROLES), "each role has a password of its own"


def test_compose_file_names_no_unpinned_image() -> None:
    """Images other than the services' own (`:local`, built from this checkout) are pinned, never `latest`."""
    for name, svc in compose()["services"].items():
        image = svc.get("image", "")
        if is_app(svc):
            continue
        assert ":" in image and not image.endswith(":latest"), f"{name} uses unpinned image {image}"


def test_host_side_settings_match_compose() -> None:
    """`make up` through Compose hands host tools the addresses Compose publishes."""
    from quartet_tools import infra

    env = infra.compose_host_env()
    assert env == {"KAFKA_BOOTSTRAP_SERVERS": "localhost:9092", "REDIS_URL": "redis://localhost:6379/0"}
    # The host's simulator audits as its own read-only role, never as the superuser.
    example = dotenv_values(ENV_EXAMPLE)
    simulator = infra.compose_simulator_env()
    assert simulator["SIMULATOR_RENTAL_DATABASE_URL"] == "postgresql://simulator@localhost:5432/rental"
    assert simulator["PGPASSWORD"] == example["POSTGRES_SIMULATOR_PASSWORD"]


def test_make_up_hands_compose_the_example_settings_then_the_local_ones() -> None:
    """`${}` in docker-compose.yml resolves with `make up` even before a .env exists; the API keys `make up` wrote
    come next, and .env, if any, wins."""
    from quartet_tools import infra

    command = infra.compose_command()
    files = [command[i + 1] for i, arg in enumerate(command) if arg == "--env-file"]
    assert files[0] == str(ENV_EXAMPLE)
    assert files[1:] == [str(path) for path in (infra.API_KEYS_FILE, REPO / ".env") if path.exists()]
