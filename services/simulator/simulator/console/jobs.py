"""The job services' HTTP APIs as the console uses them, with the signed-in person's own API key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from quartet_shared.auth import bearer_headers
from quartet_shared.http import Problem

from simulator.console.model import JobRow


@dataclass(frozen=True)
class Answer:
    """A job service's answer: its status and JSON body (an RFC 9457 problem when the status is 4xx/5xx)."""

    status: int
    body: Any


@dataclass(frozen=True)
class JobServices:
    """The training and planning APIs by kind."""

    urls: dict[str, str]
    timeout_s: float = 5.0
    client: httpx.Client = field(default_factory=httpx.Client)

    def _call(self, method: str, kind: str, path: str, key: str, body: Any = None) -> httpx.Response:
        base = self.urls.get(kind)
        if base is None:
            raise Problem(404, "Not Found", f"no job kind {kind!r}; known: {sorted(self.urls)}")
        try:
            return self.client.request(
                method, f"{base.rstrip('/')}{path}", json=body, headers=bearer_headers(key), timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise Problem(
                502, "Bad Gateway", f"the {kind} API at {base} does not answer ({type(exc).__name__})", kind=kind
            ) from exc

    def _json(self, method: str, kind: str, path: str, key: str, body: Any = None) -> Answer:
        response = self._call(method, kind, path, key, body)
        try:
            return Answer(response.status_code, response.json())
        except ValueError:
            return Answer(response.status_code, {"title": "Bad Gateway", "detail": response.text[:200]})

    def recent(self, key: str, limit: int) -> tuple[list[JobRow], dict[str, str]]:
        """Each kind's most recent jobs, and why a kind could not be listed."""
        rows: list[JobRow] = []
        errors: dict[str, str] = {}
        for kind in self.urls:
            try:
                answer = self._json("GET", kind, f"/jobs?limit={limit}", key)
            except Problem as exc:
                errors[kind] = str(exc)
                continue
            if answer.status != 200:
                errors[kind] = f"{answer.status} {answer.body.get('title', '')}: {answer.body.get('detail', '')}"
                continue
            rows += [JobRow.of(kind, job) for job in answer.body]
        return rows, errors

    def job(self, kind: str, job_id: str, key: str) -> Answer:
        """`GET /jobs/{id}` of `kind`."""
        return self._json("GET", kind, f"/jobs/{job_id}", key)

    def result(self, kind: str, job_id: str, key: str) -> Answer:
        """`GET /jobs/{id}/result` of `kind`."""
        return self._json("GET", kind, f"/jobs/{job_id}/result", key)

    def submit(self, kind: str, spec: Any, key: str) -> Answer:
        """`POST /jobs` of `kind`."""
        return self._json("POST", kind, "/jobs", key, spec)

    def plot(self, kind: str, job_id: str, name: str, key: str) -> httpx.Response:
        """A job's PNG figure, as the job service answered."""
        return self._call("GET", kind, f"/jobs/{job_id}/plots/{name}.png", key)
