"""The hostile corpus: one table of requests no service may answer with a 5xx, a slow answer or a leak.

NUL in path parameters and query strings, huge numbers, deep JSON nesting, YAML alias bombs and deep YAML
where YAML is read, oversized bodies, and path traversal in every path-like field. Each row names the
services it is sent to; `check_answer` holds every answer to the same rules: the expected status range,
an RFC 9457 problem body for errors, an answer within a few seconds, and nothing of /etc/passwd, of the
server's own paths or of a 600-digit number echoed back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.fuzz import SLOW_S

REPO = Path(__file__).resolve().parents[2]
TRAINING, PLANNING, RENTAL, SIMULATOR = "training", "planning", "rental", "simulator"
JOB_SERVICES = (TRAINING, PLANNING)
EVERY_SERVICE = (TRAINING, PLANNING, RENTAL, SIMULATOR)

HUGE = "1" + "0" * 600
OVERSIZED = 50 * 1024 * 1024
DEEP = 10_000
# Written as they arrive on the wire: percent-encoded, so no client normalises the dots away.
TRAVERSALS = {
    "dots": "../../../../etc/passwd",
    "absolute": "/etc/passwd",
    "encoded-dots": "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
}
PATH_TRAVERSALS = {
    "dots": "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "absolute": "%2Fetc%2Fpasswd",
    "encoded-dots": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
}
PASSWD = re.compile(r"\broot:[^:\n]*:0:0:")
CSV = b"x1,x2,y\n" + b"".join(f"{i},{i * 2 % 7},{i % 3}\n".encode() for i in range(40))


@dataclass(frozen=True)
class Hostile:
    """One hostile request: sent to each of `services`, answered within `expect` (inclusive)."""

    name: str
    services: tuple[str, ...]
    method: str
    path: str
    query: str = ""
    body: bytes | None = None
    content_type: str = "application/json"
    expect: tuple[int, int] = (400, 499)

    def url(self, base: str) -> str:
        """The request's URL under `base`, path and query sent exactly as written."""
        return f"{base}{self.path}" + (f"?{self.query}" if self.query else "")


def as_json(value: Any) -> bytes:
    """A JSON body."""
    return json.dumps(value).encode()


def huge_json(template: Any) -> bytes:
    """`template` as JSON with every "HUGE" string replaced by a bare 601-digit integer."""
    return as_json(template).replace(b'"HUGE"', HUGE.encode())


def alias_bomb(levels: int, width: int = 10) -> str:
    """YAML whose aliases expand to width**levels scalars: a few hundred bytes, billions of nodes."""
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def scenario_with_pool_file(path: str) -> str:
    """A simulator scenario whose training pool names a job file."""
    return (
        "name: hostile\nseed: 1\nduration_s: 5\nrate: {shape: constant, per_second: 1}\n"
        f"mix:\n  - action: training\n    weight: 1\n    pool:\n      - file: {json.dumps(path)}\n"
    )


def planning_spec(**scenario: Any) -> dict[str, Any]:
    """A small valid planning job with `scenario` fields replaced."""
    base = {
        "terrain": {"kind": "gaussian", "peaks": [], "cell_size": 1.0},
        "bounds": {"x": [1, 100], "y": [1, 100]},
        "start": [10, 10, 50],
        "goal": [90, 90, 50],
        "waypoints": 3,
    }
    return {"scenario": {**base, **scenario}, "optimizer": {"name": "boa", "population": 10, "iterations": 5}}


def _job_routes() -> list[Hostile]:
    rows = [
        Hostile("nul-get-job", JOB_SERVICES, "GET", "/jobs/%00"),
        Hostile("nul-delete-job", JOB_SERVICES, "DELETE", "/jobs/%00"),
        Hostile("nul-job-result", JOB_SERVICES, "GET", "/jobs/%00/result"),
        Hostile("nul-job-plot", JOB_SERVICES, "GET", "/jobs/%00/plots/%00.png"),
        Hostile("nul-job-status-query", JOB_SERVICES, "GET", "/jobs", "status=%00"),
        Hostile("huge-job-limit", JOB_SERVICES, "GET", "/jobs", f"limit={HUGE}"),
        Hostile("float-job-limit", JOB_SERVICES, "GET", "/jobs", "limit=1e308"),
        Hostile("deep-json-job", JOB_SERVICES, "POST", "/jobs", body=b"[" * DEEP),
        Hostile("deep-json-object-job", JOB_SERVICES, "POST", "/jobs", body=b'{"a":' * DEEP),
        Hostile("oversized-job", JOB_SERVICES, "POST", "/jobs", body=b" " * OVERSIZED, expect=(413, 413)),
    ]
    for name, path in PATH_TRAVERSALS.items():
        rows.append(Hostile(f"traversal-{name}-get-job", JOB_SERVICES, "GET", f"/jobs/{path}"))
        rows.append(Hostile(f"traversal-{name}-job-plot", JOB_SERVICES, "GET", f"/jobs/x/plots/{path}.png"))
    return rows


def _training() -> list[Hostile]:
    linear = {"model": {"kind": "linear"}}
    rows = [
        Hostile("huge-epochs", (TRAINING,), "POST", "/jobs", body=huge_json({**linear, "epochs": "HUGE"})),
        Hostile("float-epochs", (TRAINING,), "POST", "/jobs", body=as_json({**linear, "epochs": 1e308})),
        Hostile(
            "huge-lambda", (TRAINING,), "POST", "/jobs", body=huge_json({**linear, "regularization": {"lam": "HUGE"}})
        ),
        Hostile(
            "nul-dataset-id",
            (TRAINING,),
            "POST",
            "/jobs",
            body=as_json({**linear, "data": {"kind": "upload", "dataset_id": "a\u0000b"}}),
        ),
        Hostile("nul-get-dataset", (TRAINING,), "GET", "/datasets/%00"),
        Hostile("nul-dataset-name", (TRAINING,), "POST", "/datasets", "name=%00../../x", CSV, "text/csv"),
        Hostile("nul-label-column", (TRAINING,), "POST", "/datasets", "label_column=%00", CSV, "text/csv"),
        Hostile("huge-label-column", (TRAINING,), "POST", "/datasets", f"label_column={HUGE}", CSV, "text/csv"),
        Hostile("nul-csv-cell", (TRAINING,), "POST", "/datasets", body=CSV + b"1,2\x00,3\n", content_type="text/csv"),
        Hostile("nul-csv-class", (TRAINING,), "POST", "/datasets", body=CSV + b"1,2,2\x00\n", content_type="text/csv"),
        Hostile(
            "huge-csv-cell",
            (TRAINING,),
            "POST",
            "/datasets",
            body=b"x1,y\n" + b"1" * (5 * 1024 * 1024) + b",1\n2,0\n",
            content_type="text/csv",
        ),
        Hostile(
            "huge-csv-numbers",
            (TRAINING,),
            "POST",
            "/datasets",
            body=CSV + f"{HUGE},1e308,1\n".encode(),
            content_type="text/csv",
            expect=(200, 499),
        ),
        Hostile("oversized-dataset", (TRAINING,), "POST", "/datasets", body=b"1" * OVERSIZED, content_type="text/csv"),
    ]
    for name, path in TRAVERSALS.items():
        upload = {**linear, "data": {"kind": "upload", "dataset_id": path}}
        rows.append(Hostile(f"traversal-{name}-dataset-id", (TRAINING,), "POST", "/jobs", body=as_json(upload)))
        rows.append(
            Hostile(
                f"traversal-{name}-dataset-name",
                (TRAINING,),
                "POST",
                "/datasets",
                f"name={path}",
                CSV,
                "text/csv",
                expect=(200, 499),
            )
        )
    for name, path in PATH_TRAVERSALS.items():
        rows.append(Hostile(f"traversal-{name}-get-dataset", (TRAINING,), "GET", f"/datasets/{path}"))
    return rows


def _planning() -> list[Hostile]:
    rows = [
        Hostile(
            "overflowing-bounds",
            (PLANNING,),
            "POST",
            "/jobs",
            body=as_json(
                planning_spec(
                    terrain={"kind": "gaussian", "cell_size": 1e-300}, bounds={"x": [1, 1e308], "y": [1, 1e308]}
                )
            ),
        ),
        Hostile("huge-start", (PLANNING,), "POST", "/jobs", body=huge_json(planning_spec(start=["HUGE", 10, 50]))),
        Hostile("huge-iterations", (PLANNING,), "POST", "/jobs", body=huge_json({**planning_spec(), "seed": "HUGE"})),
        Hostile(
            "nul-scenario-name",
            (PLANNING,),
            "POST",
            "/jobs",
            body=as_json(planning_spec(name="a\u0000b")),
            expect=(202, 499),
        ),
        Hostile(
            "nul-terrain-path",
            (PLANNING,),
            "POST",
            "/jobs",
            body=as_json(planning_spec(terrain={"kind": "file", "path": "a\u0000b.npz"})),
        ),
    ]
    for name, path in TRAVERSALS.items():
        for kind in ("file", "png"):
            spec = planning_spec(terrain={"kind": kind, "path": path})
            rows.append(Hostile(f"traversal-{name}-{kind}-terrain", (PLANNING,), "POST", "/jobs", body=as_json(spec)))
    return rows


def _rental() -> list[Hostile]:
    house = {
        "title": "t",
        "address": "a",
        "city": "c",
        "district": "d",
        "area_m2": 50,
        "rooms": 2,
        "monthly_rent_cents": "HUGE",
    }
    rows = [
        Hostile("nul-get-house", (RENTAL,), "GET", "/houses/%00"),
        Hostile("nul-house-search", (RENTAL,), "GET", "/houses", "city=%00&district=%00", expect=(200, 499)),
        Hostile("huge-house-search", (RENTAL,), "GET", "/houses", f"min_rent_cents={HUGE}&page={HUGE}"),
        Hostile("float-house-search", (RENTAL,), "GET", "/houses", "max_rent_cents=1e308&page_size=1e308"),
        Hostile("nul-get-lease", (RENTAL,), "GET", "/leases/%00"),
        Hostile("huge-house", (RENTAL,), "POST", "/houses", body=huge_json(house)),
        Hostile("float-house", (RENTAL,), "POST", "/houses", body=as_json({**house, "monthly_rent_cents": 1e308})),
        Hostile("nul-house", (RENTAL,), "POST", "/houses", body=as_json({**house, "title": "a\u0000b"})),
        Hostile("deep-json-house", (RENTAL,), "POST", "/houses", body=b"[" * DEEP),
        Hostile("deep-json-register", (RENTAL,), "POST", "/auth/register", body=b'{"a":' * DEEP),
        Hostile("oversized-house", (RENTAL,), "POST", "/houses", body=b" " * OVERSIZED, expect=(413, 413)),
        Hostile(
            "nul-login",
            (RENTAL,),
            "POST",
            "/auth/token",
            body=b"username=a%00b&password=c%00d",
            content_type="application/x-www-form-urlencoded",
        ),
    ]
    for name, path in PATH_TRAVERSALS.items():
        rows.append(Hostile(f"traversal-{name}-get-house", (RENTAL,), "GET", f"/houses/{path}"))
    return rows


def _simulator() -> list[Hostile]:
    rows = [
        Hostile("nul-get-run", (SIMULATOR,), "GET", "/runs/%00"),
        Hostile("nul-delete-run", (SIMULATOR,), "DELETE", "/runs/%00"),
        Hostile("nul-run-report", (SIMULATOR,), "GET", "/runs/%00/report"),
        Hostile("nul-run-report-html", (SIMULATOR,), "GET", "/runs/%00/report.html"),
        Hostile("nul-builtin", (SIMULATOR,), "POST", "/runs", body=as_json({"builtin": "a\u0000b"})),
        Hostile("nul-scenario-yaml", (SIMULATOR,), "POST", "/runs", body=as_json({"scenario_yaml": "name: a\u0000b"})),
        Hostile("alias-bomb-6", (SIMULATOR,), "POST", "/runs", body=as_json({"scenario_yaml": alias_bomb(6)})),
        Hostile("alias-bomb-9", (SIMULATOR,), "POST", "/runs", body=as_json({"scenario_yaml": alias_bomb(9)})),
        Hostile("deep-yaml", (SIMULATOR,), "POST", "/runs", body=as_json({"scenario_yaml": "[" * 1000})),
        Hostile("deeper-yaml", (SIMULATOR,), "POST", "/runs", body=as_json({"scenario_yaml": "[" * DEEP})),
        Hostile("deep-yaml-mapping", (SIMULATOR,), "POST", "/runs", body=as_json({"scenario_yaml": "{a: " * DEEP})),
        Hostile(
            "huge-scenario",
            (SIMULATOR,),
            "POST",
            "/runs",
            body=huge_json({"scenario": {"name": "n", "seed": "HUGE", "duration_s": 1e308, "rate": {}, "mix": []}}),
        ),
        Hostile("deep-json-run", (SIMULATOR,), "POST", "/runs", body=b"[" * DEEP),
        Hostile("deep-json-scenario", (SIMULATOR,), "POST", "/runs", body=b'{"scenario":' + b'{"a":' * DEEP),
        Hostile("oversized-run", (SIMULATOR,), "POST", "/runs", body=b" " * OVERSIZED, expect=(413, 413)),
    ]
    for name, path in TRAVERSALS.items():
        rows.append(
            Hostile(f"traversal-{name}-builtin", (SIMULATOR,), "POST", "/runs", body=as_json({"builtin": path}))
        )
        yaml = scenario_with_pool_file(path)
        rows.append(
            Hostile(f"traversal-{name}-pool-file", (SIMULATOR,), "POST", "/runs", body=as_json({"scenario_yaml": yaml}))
        )
    for name, path in PATH_TRAVERSALS.items():
        rows.append(Hostile(f"traversal-{name}-get-run", (SIMULATOR,), "GET", f"/runs/{path}"))
        rows.append(Hostile(f"traversal-{name}-run-report-html", (SIMULATOR,), "GET", f"/runs/{path}/report.html"))
    return rows


CORPUS: tuple[Hostile, ...] = (*_job_routes(), *_training(), *_planning(), *_rental(), *_simulator())


def nul_everywhere(service: str, document: dict[str, Any]) -> list[Hostile]:
    """Rows from an OpenAPI document: each operation with a NUL in each path parameter in turn, and with a NUL
    in every query parameter at once."""
    rows: list[Hostile] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            parameters = operation.get("parameters", [])
            names = [p["name"] for p in parameters if p["in"] == "path"]
            elsewhere = dict.fromkeys(names, "x")
            for name in names:
                at = path.format(**{**elsewhere, name: "%00"})
                rows.append(Hostile(f"nul-{name}-{method}-{path}", (service,), method.upper(), at))
            query = "&".join(f"{p['name']}=%00" for p in parameters if p["in"] == "query")
            if query:
                at = path.format(**elsewhere)
                rows.append(Hostile(f"nul-query-{method}-{path}", (service,), method.upper(), at, query))
    return rows


def corpus_for(service: str) -> list[Hostile]:
    """The rows sent to `service`."""
    return [row for row in CORPUS if service in row.services]


def send(client: httpx.Client, base: str, row: Hostile) -> tuple[httpx.Response, float]:
    """Send `row` to the service at `base`; its answer and how long it took."""
    headers = {"Content-Type": row.content_type} if row.body is not None else {}
    response = client.request(row.method, row.url(base), content=row.body, headers=headers)
    return response, response.elapsed.total_seconds()


def check_answer(row: Hostile, response: httpx.Response, elapsed_s: float, server_paths: Iterable[str]) -> list[str]:
    """Every rule the answer to `row` breaks (none: it held)."""
    broken: list[str] = []
    status = response.status_code
    low, high = row.expect
    text = response.text
    if not low <= status <= high:
        broken.append(f"status {status}, expected {low}..{high}: {text[:300]}")
    if elapsed_s > SLOW_S:
        broken.append(f"answered after {elapsed_s:.1f} s")
    if status >= 400 and not response.headers.get("content-type", "").startswith("application/problem+json"):
        broken.append(f"error without a problem body: {response.headers.get('content-type')}: {text[:200]}")
    if PASSWD.search(text):
        broken.append("the body holds /etc/passwd's content")
    leaked = [p for p in server_paths if p and p in text]
    if leaked:
        broken.append(f"the body names server paths {leaked}")
    if HUGE[:100] in text:
        broken.append("the body echoes a 600-digit number")
    return broken


def assert_refused(base: str, headers: dict[str, str], row: Hostile, workdirs: Path) -> None:
    """Send `row` to the service at `base` and fail naming every rule its answer broke.

    Server paths are the checkout, the directory beside it (where the shared benchmarks' terrains are) and
    `workdirs`, under which the service runs.
    """
    assert_all_refused(base, headers, [row], workdirs)


def assert_all_refused(base: str, headers: dict[str, str], rows: Sequence[Hostile], workdirs: Path) -> None:
    """Send every row to the service at `base` and fail naming each one whose answer broke a rule."""
    server_paths = [str(REPO), str(REPO.parent), str(workdirs)]
    failures: list[str] = []
    with httpx.Client(headers=headers, timeout=60) as client:
        for row in rows:
            response, elapsed = send(client, base, row)
            broken = check_answer(row, response, elapsed, server_paths)
            if broken:
                failures.append(f"{row.method} {row.url(base)[:200]}: {broken}")
    assert not failures, "\n".join(failures)


def assert_nul_refused_everywhere(base: str, headers: dict[str, str], service: str, workdirs: Path) -> None:
    """A NUL in each path parameter and in every query parameter of each operation the service documents."""
    rows = nul_everywhere(service, httpx.get(f"{base}/openapi.json", timeout=30).json())
    assert len(rows) > 3, rows
    assert_all_refused(base, headers, rows, workdirs)
