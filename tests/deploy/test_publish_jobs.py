"""The README's "Publishing jobs to topics", run as written natively: jobs published with the
Kafka distribution's console producer reach the real training and planning workers, their results are read back
`read_committed` with the console consumer, and a malformed job is dead-lettered with its reason and listed by
`quartet dlq list`.

The workers run on the contract's topic names (no test prefix), as the README's commands name them; no other
test uses those names on the session's servers. The README's Compose line runs against the full stack (workers
in containers too) in tests/deploy/test_compose_e2e.py, which brings that stack up once for all its checks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from quartet_shared.dlq import list_dead_letters
from quartet_shared.settings import KernelSettings

from tests.support.cli import quartet
from tests.support.jobs import service_process
from tests.support.publish import PublishRun, run_publish_section
from tests.support.servers import Servers, kernel_settings

# Setting up takes minutes on a busy 2-core host (a broker in a container, two workers), before the commands run.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]
Published = tuple[PublishRun, KernelSettings]


@pytest.fixture(scope="module")
def published(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """The README's native commands run while a training worker and a planning worker consume the real topics of
    the broker they publish to."""
    settings = kernel_settings(servers)
    workdir = tmp_path_factory.mktemp("publish")
    env = dict(os.environ)
    with ExitStack() as stack:
        # `quartet` from this environment, as `make install` puts it on a user's PATH; wide enough not to fold.
        env.update(
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            COLUMNS="400",
            KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
            # The contract's topics live on the session's broker from here on: made with the suite's partition
            # count, as tests/tools/test_cli.py's topics check expects of them whichever runs first.
            QUARTET_TOPIC_PARTITIONS=str(settings.topic_partitions),
        )
        created = quartet("topics", "--create", cwd=workdir, timeout_s=120, env=env)
        assert created.returncode == 0, created.stderr
        for script, prefix in (("training-worker", "TRAINING_"), ("path-planner", "PLANNER_")):
            stack.enter_context(
                service_process(
                    script, prefix, settings, "readme", workdir / script, {f"{prefix}TOPIC_PREFIX": ""}, role="worker"
                )
            )
        yield run_publish_section("natively", env), settings


@pytest.mark.parametrize(
    ("job", "completed", "figure"),
    [
        ("training", "quartet.training.TrainingCompleted.v1", "metrics"),
        ("planning", "quartet.planning.PlanCompleted.v1", "best_cost"),
    ],
)
def test_each_published_job_has_its_one_result(published: Published, job: str, completed: str, figure: str) -> None:
    """Each published job's one committed result is a completion, keyed and subject-tagged by the job's id."""
    run, _ = published
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    job_id = getattr(run, job)
    headers, key, value = run.record_about(job_id)
    assert headers["ce_type"] == completed
    assert headers["ce_subject"] == key == value["job_id"] == job_id
    assert value[figure]


def test_the_malformed_job_is_failed_dead_lettered_and_listed(published: Published) -> None:
    """The malformed job gets a failed result, its dead letter says why, and `quartet dlq list` shows it."""
    run, settings = published
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-3000:]}"
    headers, key, _ = run.record_about(run.broken)
    assert headers["ce_type"] == "quartet.training.TrainingFailed.v1"
    assert key == run.broken
    letters = [letter for letter in list_dead_letters(settings, "training.jobs") if letter.key == run.broken]
    assert len(letters) == 1
    reason = letters[0].reason
    assert reason["dlq_error_type"] == "SchemaError"
    assert "model" in reason["dlq_error_message"]
    assert reason["dlq_original_topic"] == "training.jobs"
    listing = run.stdout.split("dead letter(s) in training.jobs.dlq", 1)[-1]  # what `quartet dlq list` printed
    assert run.broken in listing
    assert "SchemaError" in listing
