"""The training-worker's HTTP API: the kernel's job API for training jobs, plus CSV dataset uploads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from quartet_shared.auth import JOBS_WRITE, require_scope
from quartet_shared.http import Problem, allow_larger_bodies
from quartet_shared.jobapp import create_job_app

from training_worker.bootstrap import Trainer
from training_worker.dataset_store import DatasetRecord, DatasetStore, dataset_id
from training_worker.datasets import parse_csv
from training_worker.domain.data import MIN_ROWS, Dataset
from training_worker.domain.errors import InvalidDataset

_INDEX = re.compile(r"^-?\d+$")


class DatasetPublic(DatasetRecord):
    """A stored dataset as `GET /datasets/{id}` shows it; jobs name it as `data: {kind: upload, dataset_id}`."""

    links: dict[str, str]

    @classmethod
    def of(cls, record: DatasetRecord, base: str) -> DatasetPublic:
        """The public view of a stored dataset, with its link under `base`."""
        return cls(**record.model_dump(), links={"self": f"{base}/datasets/{record.id}"})


class DatasetUploaded(DatasetPublic):
    """An accepted upload: the stored dataset and what its label column turned out to be."""

    label_column: str
    task: Literal["regression", "classification"]
    class_names: list[str]


@dataclass(frozen=True)
class DatasetUploads:
    """The upload endpoint's ports and limits."""

    store: DatasetStore
    max_bytes: int
    max_rows: int

    def validate(self, content: bytes, label_column: str) -> Dataset:
        """Parse the CSV as a job would, refusing now what a job would refuse later; an integer label is an index."""
        try:
            dataset = parse_csv(content, label_column, max_rows=self.max_rows, max_bytes=self.max_bytes)
        except InvalidDataset as exc:
            if exc.field != "label_column" or not _INDEX.match(label_column):
                raise
            dataset = parse_csv(content, int(label_column), max_rows=self.max_rows, max_bytes=self.max_bytes)
        if dataset.n_samples < MIN_ROWS:
            raise InvalidDataset(
                f"{dataset.n_samples} data rows; a dataset needs at least {MIN_ROWS} "
                "(training holds rows out for validation)"
            )
        return dataset


def get_uploads(request: Request) -> DatasetUploads:
    """The app's DatasetUploads (set by create_api)."""
    uploads: DatasetUploads = request.app.state.dataset_uploads
    return uploads


UploadsDep = Annotated[DatasetUploads, Depends(get_uploads)]

router = APIRouter(prefix="/datasets", tags=["datasets"])


def _invalid(message: str, field: str) -> Problem:
    return Problem(422, "Invalid dataset", message, errors=[{"field": field, "message": message}])


@router.post(
    "",
    status_code=201,
    summary="Upload a CSV dataset",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The CSV itself (not a form): a header row is optional; comma, semicolon or tab.",
        }
    },
    responses={200: {"model": DatasetUploaded, "description": "The same content was uploaded before"}},
    dependencies=[require_scope(JOBS_WRITE)],
)
async def upload_dataset(
    uploads: UploadsDep,
    request: Request,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"^[^/\\\x00-\x1f\x7f]+$",
            description="A name to remember it by (no slashes or control characters).",
        ),
    ] = None,
    label_column: Annotated[
        str, Query(min_length=1, max_length=200, description="The label's column name, or its index (-1: last).")
    ] = "-1",
) -> JSONResponse:
    """Validate a CSV as a job would read it and store it durably; the answer's `id` is what jobs reference."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/"):
        raise Problem(
            415,
            "Unsupported Media Type",
            "send the CSV itself as the request body (Content-Type: text/csv), not as a form",
        )
    content = await request.body()
    try:
        dataset = await run_in_threadpool(uploads.validate, content, label_column)
    except InvalidDataset as exc:
        raise _invalid(str(exc), exc.field or "body") from exc
    stored_name = name or f"dataset-{dataset_id(content)[:12]}"
    record, created = await run_in_threadpool(
        uploads.store.put, content, stored_name, dataset.n_samples, list(dataset.columns)
    )
    base = str(request.base_url).rstrip("/")
    body = DatasetUploaded(
        **DatasetPublic.of(record, base).model_dump(),
        label_column=dataset.target_name,
        task=dataset.task,
        class_names=list(dataset.class_names),
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=201 if created else 200,
        headers={"Location": body.links["self"]},
    )


@router.get("/{dataset_id}", summary="A stored dataset's description")
def get_dataset(uploads: UploadsDep, request: Request, dataset_id: str) -> DatasetPublic:
    """Name, size, rows and columns of an uploaded dataset."""
    record = uploads.store.get(dataset_id)
    if record is None:
        raise Problem(404, "Not Found", f"no dataset {dataset_id}")
    return DatasetPublic.of(record, str(request.base_url).rstrip("/"))


def create_api(trainer: Trainer, *, with_projector: bool = True, with_worker: bool = False) -> FastAPI:
    """The app: the job API and dataset uploads; its lifespan runs the projector (and, for `all`, a worker)."""
    app = create_job_app(
        trainer,
        title="Quartet training-worker",
        description="Linear, logistic, softmax and polynomial models with L2 regularization and weight decay, "
        "trained as Kafka jobs.",
        with_projector=with_projector,
        with_worker=with_worker,
    )
    settings = trainer.settings
    app.state.dataset_uploads = DatasetUploads(trainer.datasets, settings.max_upload_bytes, settings.max_rows)
    app.include_router(router)
    allow_larger_bodies(app, "/datasets", settings.max_upload_bytes)
    return app


__all__ = ["DatasetPublic", "DatasetUploaded", "DatasetUploads", "create_api", "router"]
