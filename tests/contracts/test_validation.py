"""error_fields: pydantic's errors as the dotted spec fields a user fixes, through FastAPI and on their own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError, model_validator
from quartet_contracts.validation import FieldError, error_fields, shown
from quartet_shared.http import create_app


class Slow(BaseModel):
    kind: Literal["slow"] = "slow"
    rate: float = Field(gt=0)


class Fast(BaseModel):
    kind: Literal["fast"] = "fast"
    rate: float = Field(gt=0)
    burst: int = Field(default=1, ge=1)


class Job(BaseModel):
    speed: Annotated[Slow | Fast, Field(discriminator="kind")]
    items: list[int] = Field(default_factory=list)
    name: str = "job"

    @model_validator(mode="after")
    def _named(self) -> Job:
        if self.name == "kind":
            raise FieldError("name", "may not be 'kind'")
        if len(self.items) > 3:
            raise ValueError("too many items")
        if self.name.startswith("echo:"):
            raise FieldError("name", f"{self.name} is taken")
        return self


def fields_of(data: dict[str, Any]) -> list[dict[str, str]]:
    try:
        Job.model_validate(data)
    except ValidationError as exc:
        return error_fields(exc.errors(), data)
    raise AssertionError("the data was valid")


def test_union_tags_are_dropped_from_the_path() -> None:
    assert fields_of({"speed": {"kind": "fast", "rate": 0}}) == [
        {"field": "speed.rate", "message": "Input should be greater than 0"}
    ]
    assert fields_of({"speed": {"kind": "slow", "rate": -1}})[0]["field"] == "speed.rate"
    assert fields_of({"speed": {"kind": "warp"}})[0]["field"] == "speed"


def test_a_field_error_names_its_field_and_keeps_its_message() -> None:
    assert fields_of({"speed": {"kind": "slow", "rate": 1}, "name": "kind"}) == [
        {"field": "name", "message": "may not be 'kind'"}
    ]


def test_list_positions_and_missing_fields_stay_in_the_path() -> None:
    found = fields_of({"speed": {"kind": "fast", "rate": 1, "burst": 0}, "items": [1, "x"]})
    assert [f["field"] for f in found] == ["speed.burst", "items.1"]
    assert fields_of({})[0]["field"] == "speed"


def test_a_plain_value_error_of_a_model_points_at_the_model() -> None:
    found = fields_of({"speed": {"kind": "slow", "rate": 1}, "items": [1, 2, 3, 4]})
    assert found == [{"field": "body", "message": "Value error, too many items"}]


def test_problem_bodies_of_the_app_use_the_spec_fields() -> None:
    app = create_app(title="t")

    @app.post("/jobs")
    def submit(job: Job) -> Job:
        return job

    answer = TestClient(app).post("/jobs", json={"speed": {"kind": "fast", "rate": 0}, "name": "kind"})
    assert answer.status_code == 422
    body = answer.json()
    assert body["errors"] == [{"field": "speed.rate", "message": "Input should be greater than 0"}]
    assert body["detail"] == "invalid fields: speed.rate"


def test_a_message_quoting_a_huge_value_is_cut() -> None:
    [error] = fields_of({"speed": {"kind": "slow", "rate": 1}, "name": "echo:" + "x" * 1_000_000})
    assert error["field"] == "name"
    assert error["message"].startswith("echo:xxx") and len(error["message"]) <= 400


def test_shown_cuts_long_values_and_sizes_huge_integers() -> None:
    assert shown("abc") == "'abc'"
    assert shown(12.5) == "12.5"
    assert len(shown("y" * 10_000)) == 40
    assert shown(10**600) == "an integer of 1994 bits"
    assert shown(-(10**5000)).startswith("-an integer of")
