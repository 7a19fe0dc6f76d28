"""The training-worker's example job files as specs, the way `quartet submit training` sends them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "services" / "training-worker" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))


def example_raw(path: Path) -> dict[str, Any]:
    """The example's spec as JSON data; a local CSV (`data.file`) is named by its file stem as dataset id,
    as if it had been uploaded (see `example_upload`)."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    data = raw.get("data", {})
    if data.get("kind") == "upload" and "file" in data:
        rest = {k: v for k, v in data.items() if k != "file"}
        raw["data"] = {**rest, "dataset_id": Path(data["file"]).stem}
    return raw


def example_upload(dataset_id: str) -> bytes:
    """The CSV an example names, as the worker's UploadReader would return it."""
    return (EXAMPLES_DIR / f"{dataset_id}.csv").read_bytes()
