"""One job of a service's kind through the kernel's worker and projector on fakes, as Kafka would carry it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from quartet_contracts.envelope import Envelope
from quartet_contracts.registry import lookup
from quartet_shared.consumer import DeadLetter, PermanentError
from quartet_shared.jobkind import AnyJobKind, RunJob
from quartet_shared.jobservice import JobWorker, Projector
from quartet_shared.settings import KernelSettings
from quartet_shared.testing.fakes import FakePorts, HandlerCall


def run_and_project(kind: AnyJobKind, run: RunJob[Any, Any], request: BaseModel, job_id: str) -> tuple[FakePorts, str]:
    """Queue `job_id`, hand `request` to a worker (a refused spec dead-lettered as the runner would), commit, then
    project its progress and outcome into the fake store. Returns the fakes and the outcome's `ce_type`."""
    ports = FakePorts()
    ports.store.create(job_id, kind.name, request.model_dump(mode="json"))
    worker = JobWorker(kind, KernelSettings(), run, ports.worker_ports(), progress=ports.producer)
    call = HandlerCall(Envelope.of(request, source="/tests", id=job_id, subject=job_id, key=job_id))
    try:
        worker.handle(request, call.context)
    except PermanentError as exc:
        worker.give_up(DeadLetter(call.context.record, exc, 1), call.context.emit)
    call.commit()
    (outcome,) = [sent.envelope for sent in call.emitted]
    projector = Projector(kind, ports.store)
    for envelope in [*ports.producer.to(kind.topics.progress), outcome]:
        message = lookup(envelope.type).model.model_validate(envelope.data)
        projector.handle(message, HandlerCall(envelope, topic=kind.topics.results).context)
    return ports, outcome.type
