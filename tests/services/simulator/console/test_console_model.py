"""The console's view models: job rows and result facts, on plain records."""

from __future__ import annotations

from quartet_shared.dlq import DeadLetter
from simulator.console.model import (
    ClusterSample,
    GroupState,
    Health,
    JobRow,
    TopicState,
    dead_letter_topic,
    letter_row,
    newest_first,
    problem_text,
    result_facts,
    topology,
)


def test_a_job_row_shows_progress_as_a_percentage_and_a_succeeded_job_as_full() -> None:
    running = JobRow.of(
        "training", {"id": "j1", "status": "running", "progress": 0.426, "created_at": "2026-12-04T20:00:01.5+00:00"}
    )
    done = JobRow.of(
        "planning", {"id": "j2", "status": "succeeded", "progress": 0.9, "created_at": "2026-12-04T20:00:02"}
    )

    assert (running.percent, running.finished, running.created_at) == (43, False, "2026-12-04 20:00:01")
    assert (done.percent, done.finished) == (100, True)


def test_a_failed_job_row_carries_its_problem_as_one_line() -> None:
    problem = {"type": "about:blank", "title": "Training failed", "detail": "diverged at epoch 3"}

    row = JobRow.of("training", {"id": "j", "status": "failed", "progress": 0.2, "problem": problem})

    assert row.problem == "Training failed: diverged at epoch 3"
    assert problem_text({"title": "Gone"}) == "Gone"


def test_newest_first_mixes_kinds_by_creation_time() -> None:
    rows = [
        JobRow("a", "training", "queued", 0, "2026-12-04 20:00:01", False),
        JobRow("b", "planning", "queued", 0, "2026-12-04 20:00:03", False),
        JobRow("c", "training", "queued", 0, "2026-12-04 20:00:02", False),
    ]

    assert [r.id for r in newest_first(rows, 2)] == ["b", "c"]


def test_result_facts_are_the_scalars_and_the_named_numbers() -> None:
    result = {
        "job_id": "j",
        "model": "linear",
        "lam": 0.05,
        "metrics": {"mse": 0.123456789, "r2": 0.9},
        "weights": [1.0, 2.0],
        "plots": ["loss"],
        "feasible": True,
    }

    assert result_facts(result) == [
        ("model", "linear"),
        ("lam", "0.05"),
        ("metrics.mse", "0.123457"),
        ("metrics.r2", "0.9"),
        ("feasible", "True"),
    ]


def test_health_names_each_part_that_is_down() -> None:
    health = Health(kafka="no broker", redis=None, jobs={"planning": "502 Bad Gateway"})

    assert health.notices == ["Kafka is down: no broker", "The planning API is down: 502 Bad Gateway"]
    assert Health().notices == []


def test_topology_rates_come_from_two_samples_and_lag_from_the_latest() -> None:
    before = ClusterSample(
        100.0,
        (TopicState("training.jobs", 6, 40),),
        (GroupState("g", "Stable", ("w1@h",), ("training.jobs",), 30, 10),),
    )
    after = ClusterSample(
        104.0,
        (TopicState("training.jobs", 6, 60), TopicState("a.new", 1, 5)),
        (GroupState("g", "Stable", ("w1@h", "w2@h"), ("training.jobs",), 50, 10),),
    )

    first_topics, first_groups = topology(None, before)
    topics, groups = topology(before, after)

    assert first_topics[0].produced_per_s is None and first_groups[0].consumed_per_s is None
    assert [(t.name, t.produced_per_s) for t in topics] == [("a.new", None), ("training.jobs", 5.0)]
    assert groups[0].consumed_per_s == 5.0 and groups[0].lag == 10 and groups[0].members == ("w1@h", "w2@h")


def letter(offset: int, error: str, **reason: str) -> DeadLetter:
    headers = {"dlq_error_type": error, "dlq_original_topic": "training.jobs", **reason}
    return DeadLetter(offset, 0, f"k{offset}", f"ce{offset}", "t", headers, "{}")


def test_a_dead_letter_row_names_where_the_record_came_from_and_why() -> None:
    row = letter_row(
        letter(
            7,
            "EnvelopeError",
            dlq_original_partition="2",
            dlq_original_offset="41",
            dlq_error_message="bad",
            dlq_attempts="1",
        )
    )
    bare = letter_row(DeadLetter(0, 0, None, None, None, {}, ""))

    assert (row.original, row.error_type, row.error_message, row.attempts) == (
        "training.jobs[2]@41",
        "EnvelopeError",
        "bad",
        "1",
    )
    assert (bare.original, bare.error_type, bare.attempts) == ("?", "unknown", "?")


def test_a_dead_letter_topic_counts_reasons_by_frequency_and_shows_the_newest_first() -> None:
    rows = [letter_row(letter(i, "Schema" if i % 3 else "Envelope")) for i in range(6)]

    topic = dead_letter_topic("training.jobs.dlq", rows, shown=2)

    assert topic.count == 6
    assert topic.reasons == (("Schema", 4), ("Envelope", 2))
    assert [r.offset for r in topic.letters] == [5, 4]
