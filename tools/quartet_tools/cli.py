"""The `quartet` command line: topics, dead letters, jobs, the AsyncAPI document and job submission."""

from __future__ import annotations

import functools
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import httpx
import typer
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from quartet_shared.auth import bearer_headers
from quartet_shared.safe_yaml import safe_load
from quartet_shared.settings import KernelSettings, SettingsError, load_settings
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from quartet_tools.infra import API_KEYS_FILE
from quartet_tools.summary import failure_message, result_tables

P = ParamSpec("P")
R = TypeVar("R")

TERMINAL = ("succeeded", "failed", "cancelled")
KINDS = {"training": "training", "plan": "planning"}
DEFAULT_PORTS = {"training": 8001, "planning": 8002}

app = typer.Typer(
    name="quartet",
    help="Quartet's command line: topics, dead letters, jobs and the AsyncAPI document.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(help="Dead-letter topics: list what is there and why, replay it.", no_args_is_help=True)
submit_app = typer.Typer(help="Submit a job file (YAML or JSON) to its service.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(submit_app, name="submit")


class CliError(Exception):
    """A failure to report as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Format(StrEnum):
    """Output formats of the AsyncAPI document."""

    json = "json"
    yaml = "yaml"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
HostOpt = Annotated[str, typer.Option("--host", envvar="QUARTET_HOST", help="Host of the services.")]
TrainingUrlOpt = Annotated[
    str | None,
    typer.Option("--training-url", envvar="QUARTET_TRAINING_URL", help="Base URL of the training-worker API."),
]
PlanningUrlOpt = Annotated[
    str | None,
    typer.Option("--planning-url", envvar="QUARTET_PLANNING_URL", help="Base URL of the path-planner API."),
]


def _out() -> Console:
    return Console(soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    raise CliError(message, code)


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            message, code = str(exc), exc.code
        except SettingsError as exc:
            message, code = str(exc), 2
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            message, code = f"Kafka is unreachable ({exc}); check KAFKA_BOOTSTRAP_SERVERS", 1
        except KafkaError as exc:
            message, code = f"Kafka error: {type(exc).__name__}: {exc}", 1
        typer.echo(f"quartet: error: {message}", err=True)
        raise typer.Exit(code)

    return wrapper


def _settings() -> KernelSettings:
    """Settings for the Kafka commands, failing fast when no bootstrap server accepts a connection."""
    settings = load_settings(KernelSettings)
    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
    for server in servers:
        host, _, port = server.rpartition(":")
        # kafka-python spends tens of seconds retrying a dead address; a plain TCP probe answers at once.
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=3):
                return settings
        except (OSError, ValueError):
            continue
    _fail(f"Kafka is unreachable at {settings.kafka_bootstrap_servers}; check KAFKA_BOOTSTRAP_SERVERS")


def _base_url(kind: str, host: str, explicit: str | None) -> str:
    return (explicit or f"http://{host}:{DEFAULT_PORTS[kind]}").rstrip("/")


# ---- HTTP --------------------------------------------------------------------------------------------------


def _api_key() -> str | None:
    """The secret the job services expect: QUARTET_API_KEY, else the one `make up` wrote to .local/api-keys.env."""
    settings = load_settings(KernelSettings, _env_file=(".env", API_KEYS_FILE))
    return settings.api_key.get_secret_value() if settings.api_key is not None else None


@contextmanager
def _http() -> Iterator[httpx.Client]:
    headers = bearer_headers(_api_key())
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=True, headers=headers) as client:
        yield client


def _request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        _fail(f"cannot reach {url}: {type(exc).__name__}: {exc or 'no answer'}")


def _problem_line(response: httpx.Response) -> str:
    """One line from an RFC 9457 problem body (or whatever the body is)."""
    where = f"{response.request.method} {response.request.url}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("title" in body or "detail" in body):
        text = str(body.get("title") or "")
        if body.get("detail"):
            text = f"{text}: {body['detail']}" if text else str(body["detail"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            fields = "; ".join(
                f"{e.get('field', '?')}: {e.get('message', '')}" if isinstance(e, dict) else str(e) for e in errors
            )
            text = f"{text} ({fields})"
        if response.status_code in (401, 403):
            text += " (the API key comes from QUARTET_API_KEY; `make up` writes one to .local/api-keys.env)"
        return f"{where} answered {response.status_code}: {text}"
    snippet = response.text.strip().replace("\n", " ")[:200]
    return f"{where} answered {response.status_code}{': ' + snippet if snippet else ''}"


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        _fail(f"{response.request.method} {response.request.url} answered with a body that is not JSON")


def _find_job(client: httpx.Client, job_id: str, bases: list[str]) -> tuple[str, dict[str, Any]]:
    """The job and the base URL of the service that knows it, trying each service in turn."""
    unreachable: list[str] = []
    for base in bases:
        url = f"{base}/jobs/{job_id}"
        try:
            response = client.get(url)
        except httpx.TransportError:
            unreachable.append(base)
            continue
        if response.status_code == 404:
            continue
        if response.is_error:
            _fail(_problem_line(response))
        body = _json_body(response)
        if not isinstance(body, dict):
            _fail(f"GET {url} answered with an unexpected body")
        return base, body
    if unreachable and len(unreachable) == len(bases):
        _fail(f"no job service is reachable (tried {', '.join(unreachable)})")
    suffix = f" ({', '.join(unreachable)} unreachable)" if unreachable else ""
    _fail(f"job {job_id} not found{suffix}")


# ---- rendering ---------------------------------------------------------------------------------------------


def _job_table(job: dict[str, Any], service: str | None = None) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("id", job.get("id")),
        ("kind", job.get("kind")),
        ("status", job.get("status")),
        ("progress", f"{float(job.get('progress') or 0.0) * 100:.0f}%"),
        ("cached", job.get("cached")),
        ("created", job.get("created_at")),
        ("started", job.get("started_at")),
        ("finished", job.get("finished_at")),
        ("updated", job.get("updated_at")),
    ]
    if service:
        rows.append(("service", service))
    problem = job.get("problem")
    if isinstance(problem, dict):
        rows.append(("problem", f"{problem.get('title', '')}: {problem.get('detail', '')}".strip(": ")))
    for name, value in rows:
        if value is not None:
            table.add_row(name, str(value))
    return table


# ---- topics ------------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def topics(
    create: Annotated[bool, typer.Option("--create", help="Create the topics that are missing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the registry's topics, their partitions and retention, and whether they exist on the broker."""
    from quartet_contracts.topics import CORE_TOPICS, expand
    from quartet_shared.topics import ensure_topics

    settings = _settings()
    specs = expand(CORE_TOPICS)
    created = ensure_topics(settings, specs) if create else []
    existing, broker_partitions = _broker_topics(settings, [s.name for s in specs], created)
    rows = [
        {
            "name": s.name,
            "description": s.description,
            "partitions": s.partitions or settings.topic_partitions,
            "retention_ms": s.retention_ms or settings.topic_retention_ms,
            "compacted": s.compacted,
            "exists": s.name in existing,
            "broker_partitions": broker_partitions.get(s.name),
            "created": s.name in created,
        }
        for s in specs
    ]
    if as_json:
        _emit_json({"bootstrap_servers": settings.kafka_bootstrap_servers, "topics": rows, "created": created})
        return
    _show_topics(settings.kafka_bootstrap_servers, rows)


def _broker_topics(settings: KernelSettings, wanted: list[str], created: list[str]) -> tuple[set[str], dict[str, int]]:
    """Which topics the broker has, and the partition count of each of `wanted` it has."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="quartet-cli",
        request_timeout_ms=15_000,
        **settings.kafka_client_options(),
    )
    try:
        # A topic the broker just acknowledged creating may not be in its metadata for a moment yet.
        existing = set(admin.list_topics()) | set(created)
        names = [name for name in wanted if name in existing]
        # The metadata response names the topic "name" in newer protocol versions and "topic" in older ones.
        partitions = {
            str(d.get("name") or d.get("topic")): len(d.get("partitions") or [])
            for d in (admin.describe_topics(names) if names else [])
        }
    finally:
        admin.close()
    return existing, partitions


def _show_topics(bootstrap_servers: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"Topics on {bootstrap_servers}")
    for column in ("topic", "partitions", "retention", "exists", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        exists = "[green]yes[/]" if row["exists"] else "[red]missing[/]"
        if row["created"]:
            exists = "[green]created[/]"
        table.add_row(
            str(row["name"]),
            str(row["broker_partitions"] or row["partitions"]),
            _duration(int(str(row["retention_ms"]))),
            exists,
            str(row["description"]),
        )
    _out().print(table)
    missing = sum(1 for r in rows if not r["exists"])
    if missing:
        _out().print(f"{missing} topic(s) missing; `quartet topics --create` creates them.")


def _duration(ms: int) -> str:
    days, rest = divmod(ms, 86_400_000)
    if days and not rest:
        return f"{days}d"
    hours, rest = divmod(ms, 3_600_000)
    return f"{hours}h" if hours and not rest else f"{ms}ms"


# ---- dead letters ------------------------------------------------------------------------------------------


@dlq_app.command("list")
@handle_errors
def dlq_list(
    topic: Annotated[str, typer.Argument(help="The topic (or its .dlq) whose dead letters to show.")],
    as_json: JsonOpt = False,
) -> None:
    """Show the dead letters of TOPIC with the reason the kernel recorded for each."""
    from quartet_shared.dlq import list_dead_letters

    letters = list_dead_letters(_settings(), topic)
    if as_json:
        _emit_json([letter.as_dict() for letter in letters])
        return
    dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    if not letters:
        _out().print(f"no dead letters in {dlq}")
        return
    table = Table(title=f"{len(letters)} dead letter(s) in {dlq}")
    for column in ("partition/offset", "key", "ce_type", "error", "attempts", "from", "last failure"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        reason = letter.reason
        origin = reason.get("dlq_original_topic", "")
        if "dlq_original_partition" in reason:
            origin += f"[{reason['dlq_original_partition']}]@{reason.get('dlq_original_offset', '?')}"
        error = reason.get("dlq_error_type", "")
        if reason.get("dlq_error_message"):
            error += f": {reason['dlq_error_message']}"
        table.add_row(
            f"{letter.partition}/{letter.offset}",
            letter.key or "",
            letter.ce_type or "",
            error,
            reason.get("dlq_attempts", ""),
            origin,
            reason.get("dlq_last_failure_time", ""),
        )
    _out().print(table)


@dlq_app.command("replay")
@handle_errors
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="The topic (or its .dlq) whose dead letters to send back.")],
    as_json: JsonOpt = False,
) -> None:
    """Send TOPIC's dead letters not yet replayed back to their original topic, as they first came."""
    from quartet_shared.dlq import replay_dead_letters

    count = replay_dead_letters(_settings(), topic)
    dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    if as_json:
        _emit_json({"topic": dlq, "replayed": count})
    else:
        _out().print(f"replayed {count} dead letter(s) from {dlq}")


# ---- jobs --------------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def job(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job id.")],
    as_json: JsonOpt = False,
    host: HostOpt = "localhost",
    training_url: TrainingUrlOpt = None,
    planning_url: PlanningUrlOpt = None,
) -> None:
    """Show a job's status, progress and timestamps, asking the training-worker and then the path-planner."""
    bases = [_base_url("training", host, training_url), _base_url("planning", host, planning_url)]
    with _http() as client:
        base, body = _find_job(client, job_id, bases)
    if as_json:
        _emit_json({**body, "service": base})
    else:
        _out().print(_job_table(body, base))


# ---- AsyncAPI ----------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def asyncapi(
    out: Annotated[Path | None, typer.Option("--out", help="Write to FILE instead of stdout.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="json or yaml.")] = Format.yaml,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Print (or write) the AsyncAPI 3.0 document generated from the registered message schemas."""
    from quartet_contracts.asyncapi import build_document, to_json, to_yaml

    document = build_document()
    text = to_json(document) if (as_json or fmt is Format.json) else to_yaml(document)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    typer.echo(
        f"wrote {out} ({len(document['channels'])} channels, {len(document['components']['messages'])} messages)",
        err=True,
    )


# ---- submit ------------------------------------------------------------------------------------------------


def read_job_file(path: Path) -> dict[str, Any]:
    """A job spec from a YAML or JSON file (JSON is read as YAML's subset when the suffix says neither)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else safe_load(text)
    except (ValueError, RecursionError) as exc:  # JSON nested too deep for the decoder is a RecursionError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _fail(f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {first}", 2)
    if not isinstance(data, dict):
        _fail(f"{path} must hold a mapping (the job spec), not {type(data).__name__}", 2)
    return data


def _safe_plot_name(name: str) -> str | None:
    stem = name.removesuffix(".png")
    return stem if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", stem) else None


def _upload_local_data(
    client: httpx.Client, base: str, spec: dict[str, Any], job_file: Path, *, quiet: bool
) -> dict[str, Any]:
    """A training spec whose `data: {kind: upload, file: PATH}` names a local CSV: upload it, use its id.

    The path is relative to the job file. POST /datasets validates the CSV as a job would read it, so bad data
    is refused here with the service's problem body, before any job exists.
    """
    data = spec.get("data")
    if not isinstance(data, dict) or data.get("kind") != "upload" or "file" not in data:
        return spec
    path = job_file.parent / str(data["file"])
    try:
        content = path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read the dataset {path}: {exc.strerror or exc}", 2)
    params = {"name": path.name, "label_column": str(data.get("label_column", -1))}
    response = _request(
        client, "POST", f"{base}/datasets", content=content, params=params, headers={"Content-Type": "text/csv"}
    )
    if response.is_error:
        _fail(_problem_line(response))
    uploaded = _json_body(response)
    if not isinstance(uploaded, dict) or "id" not in uploaded:
        _fail(f"POST {base}/datasets answered without a dataset id")
    if not quiet:
        _err().print(f"uploaded {path} as dataset {uploaded['id']} ({uploaded.get('rows', '?')} rows)")
    rest = {k: v for k, v in data.items() if k != "file"}
    return {**spec, "data": {**rest, "dataset_id": str(uploaded["id"])}}


def _submit(
    kind: str,
    file: Path,
    *,
    wait: bool,
    out: Path | None,
    as_json: bool,
    idempotency_key: str | None,
    base: str,
    poll_interval: float,
    timeout: float,
) -> None:
    spec = read_job_file(file)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with _http() as client:
        if kind == "training":
            spec = _upload_local_data(client, base, spec, file, quiet=as_json)
        accepted = _post_job(client, base, spec, headers)
        job_id = str(accepted["id"])
        if not wait:
            _show_submitted(kind, accepted, as_json=as_json)
            return
        final = _wait_for(client, base, job_id, kind, poll_interval, timeout, quiet=as_json)
        result = _succeeded_result(client, base, kind, job_id, final, as_json=as_json)
        target = out if out is not None else Path("out") / job_id
        saved = _save_plots(client, base, job_id, result.get("plots") or [], target)
    if as_json:
        _emit_json({"job": final, "result": result, "plots": [str(p) for p in saved]})
        return
    _show_result(kind, base, final, result, saved)


def _post_job(client: httpx.Client, base: str, spec: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """Submit the job; the accepted job, with its id."""
    response = _request(client, "POST", f"{base}/jobs", json=spec, headers=headers)
    if response.is_error:
        _fail(_problem_line(response))
    accepted = _json_body(response)
    if not isinstance(accepted, dict) or "id" not in accepted:
        _fail(f"POST {base}/jobs answered without a job id")
    return accepted


def _show_submitted(kind: str, accepted: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _emit_json(accepted)
        return
    _out().print(f"submitted {kind} job [bold]{accepted['id']}[/] ({accepted.get('status', 'queued')})")
    _out().print(f"follow it with: quartet job {accepted['id']}")


def _succeeded_result(
    client: httpx.Client, base: str, kind: str, job_id: str, final: dict[str, Any], *, as_json: bool
) -> dict[str, Any]:
    """The finished job's result; fails, saying how the job ended, unless it succeeded."""
    status = final.get("status")
    if status != "succeeded":
        if as_json:
            _emit_json({"job": final, "result": None, "plots": []})
        _fail(failure_message(kind, {**final, "id": job_id}))
    response = _request(client, "GET", f"{base}/jobs/{job_id}/result")
    if response.is_error:
        _fail(_problem_line(response))
    result = _json_body(response)
    if not isinstance(result, dict):
        _fail(f"GET {base}/jobs/{job_id}/result answered with an unexpected body")
    return result


def _show_result(kind: str, base: str, final: dict[str, Any], result: dict[str, Any], saved: list[Path]) -> None:
    console = _out()
    console.print(_job_table(final, base))
    for table in result_tables(kind, result):
        console.print()
        console.print(table)
    for path in saved:
        console.print(f"saved {path}")


def _wait_for(
    client: httpx.Client, base: str, job_id: str, kind: str, poll_interval: float, timeout: float, *, quiet: bool
) -> dict[str, Any]:
    """Poll the job until it finishes, showing a live progress bar on stderr."""
    deadline = time.monotonic() + timeout
    url = f"{base}/jobs/{job_id}"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=_err(),
        disable=quiet,
        transient=False,
    ) as progress:
        task = progress.add_task(f"{kind} {job_id[:8]}", total=1.0, status="queued")
        while True:
            response = _request(client, "GET", url)
            if response.is_error:
                _fail(_problem_line(response))
            body = _json_body(response)
            if not isinstance(body, dict):
                _fail(f"GET {url} answered with an unexpected body")
            status = str(body.get("status", "?"))
            progress.update(task, completed=float(body.get("progress") or 0.0), status=status)
            if status in TERMINAL:
                return body
            if time.monotonic() >= deadline:
                _fail(
                    f"gave up waiting for {kind} job {job_id} after {timeout:.0f}s (it is {status}); "
                    f"check later with: quartet job {job_id}"
                )
            time.sleep(poll_interval)


def _save_plots(client: httpx.Client, base: str, job_id: str, names: list[Any], target: Path) -> list[Path]:
    saved: list[Path] = []
    for raw in names:
        name = _safe_plot_name(str(raw))
        if name is None:
            _err().print(f"skipping plot with an unsafe name: {raw!r}")
            continue
        response = _request(client, "GET", f"{base}/jobs/{job_id}/plots/{name}.png")
        if response.is_error:
            _fail(_problem_line(response))
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = target / f"{name}.png"
            path.write_bytes(response.content)
        except OSError as exc:
            _fail(f"cannot save plots into {target}: {exc.strerror or exc}")
        saved.append(path)
    return saved


FileArg = Annotated[Path, typer.Argument(metavar="FILE", help="The job spec, YAML or JSON.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Follow the job with a progress bar until it finishes.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Where --wait saves the plots (default ./out/<job id>/).")]
KeyOpt = Annotated[
    str | None, typer.Option("--idempotency-key", help="The same key always names the same job, never a second.")
]
PollOpt = Annotated[float, typer.Option("--poll-interval", min=0.05, help="Seconds between status polls.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="Give up waiting after this many seconds.")]


@submit_app.command("training")
@handle_errors
def submit_training(
    file: FileArg,
    wait: WaitOpt = False,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    idempotency_key: KeyOpt = None,
    host: HostOpt = "localhost",
    training_url: TrainingUrlOpt = None,
    poll_interval: PollOpt = 0.5,
    timeout: TimeoutOpt = 3600.0,
) -> None:
    """Submit a training job to the training-worker (POST /jobs)."""
    _submit(
        "training",
        file,
        wait=wait,
        out=out,
        as_json=as_json,
        idempotency_key=idempotency_key,
        base=_base_url("training", host, training_url),
        poll_interval=poll_interval,
        timeout=timeout,
    )


@submit_app.command("plan")
@handle_errors
def submit_plan(
    file: FileArg,
    wait: WaitOpt = False,
    out: OutOpt = None,
    as_json: JsonOpt = False,
    idempotency_key: KeyOpt = None,
    host: HostOpt = "localhost",
    planning_url: PlanningUrlOpt = None,
    poll_interval: PollOpt = 0.5,
    timeout: TimeoutOpt = 3600.0,
) -> None:
    """Submit a path-planning job to the path-planner (POST /jobs)."""
    _submit(
        "planning",
        file,
        wait=wait,
        out=out,
        as_json=as_json,
        idempotency_key=idempotency_key,
        base=_base_url("planning", host, planning_url),
        poll_interval=poll_interval,
        timeout=timeout,
    )


# ---- simulation ---------------------------------------------------------------------------------------------


@app.command()
@handle_errors
def simulate(
    scenario: Annotated[
        str, typer.Argument(metavar="SCENARIO", help="A scenario YAML file, or a bundled one's name (demo, chaos).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Where report.json and report.html go (default: .local/simulator).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a simulator scenario against the running system and print its report; exit 1 if the audit fails."""
    # The simulator plugs in through an entry point, so the kernel never imports it (nor depends on it).
    from importlib.metadata import entry_points

    found = entry_points(group="quartet.simulate", name="run")
    if not found:
        _fail("the simulator is not installed (package quartet-simulator)", 2)
    run = next(iter(found)).load()
    code = int(run(scenario, out=out, as_json=as_json))
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="quartet")


if __name__ == "__main__":
    main()
