"""Scenario files: valid ones parse; every mistake is reported with its file, line and field."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from simulator.bootstrap import bundled_scenarios
from simulator.domain.scenario import BurstRate, KillWorkerFault, RampRate
from simulator.scenario_io import OUTSIDE, ScenarioError, load_scenario, parse_scenario, scenario_from_data

from tests.support.hostile_yaml import alias_bomb

MINIMAL = """\
name: tiny
seed: 7
duration_s: 10
rate: {shape: constant, per_second: 2}
mix:
  - action: training
    weight: 1
    pool:
      - spec:
          model: {kind: linear}
          epochs: 5
"""


def problems(text: str, base: Path | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml", base)
    return [str(p) for p in info.value.problems]


def test_a_minimal_scenario_parses_with_defaults() -> None:
    scenario = parse_scenario(MINIMAL)
    assert scenario.name == "tiny"
    assert scenario.kinds() == ["training"]
    assert scenario.arrivals == "poisson"
    assert scenario.mix[0].pool[0].spec.epochs == 5  # type: ignore[union-attr]


def test_every_bundled_scenario_is_valid() -> None:
    found = bundled_scenarios()
    assert {"chaos", "chaos-short", "demo"} <= set(found)
    for path in found.values():
        load_scenario(path)


def test_rate_shapes_use_their_yaml_keys() -> None:
    ramp = parse_scenario(MINIMAL.replace("{shape: constant, per_second: 2}", "{shape: ramp, from: 1, to: 9}"))
    assert isinstance(ramp.rate, RampRate) and (ramp.rate.start, ramp.rate.end) == (1, 9)
    bursts = parse_scenario(
        MINIMAL.replace(
            "{shape: constant, per_second: 2}", "{shape: bursts, base: 1, burst: 20, every_s: 5, length_s: 1}"
        )
    )
    assert isinstance(bursts.rate, BurstRate)


def test_an_unknown_key_names_its_line_and_column() -> None:
    text = MINIMAL.replace("duration_s: 10", "duration_s: 10\ndurration: 3")
    assert problems(text) == [
        "s.yaml:4:1: durration: unknown key (not a field here; check its spelling and indentation)"
    ]


def test_a_bad_value_deep_in_a_pool_spec_names_its_line() -> None:
    text = MINIMAL.replace("epochs: 5", "epochs: -5")
    (problem,) = problems(text)
    assert problem.startswith("s.yaml:11:11: mix[0].pool[0].spec.epochs: ")
    assert "greater than or equal to 1" in problem


def test_a_missing_field_names_the_line_of_its_parent() -> None:
    text = MINIMAL.replace("    weight: 1\n", "")
    assert problems(text) == ["s.yaml:6:5: mix[0].weight: required field is missing"]


def test_a_union_member_error_skips_the_tag_in_the_path() -> None:
    text = MINIMAL.replace("{shape: constant, per_second: 2}", "{shape: ramp, from: 1, too: 5}")
    found = problems(text)
    assert "s.yaml:4:1: rate.to: required field is missing" in found
    assert any(p.startswith("s.yaml:4:30: rate.too: unknown key") for p in found)


def test_an_unknown_fault_kind_is_named() -> None:
    text = MINIMAL + "faults:\n  - {kind: meteor, at_s: 3}\n"
    (problem,) = problems(text)
    assert problem.startswith("s.yaml:13:5: faults[0]: ")
    assert "meteor" in problem


def test_a_yaml_syntax_error_names_its_line() -> None:
    text = MINIMAL.replace("seed: 7", "seed: [7")
    (problem,) = problems(text)
    assert problem.startswith("s.yaml:")
    assert "YAML syntax" in problem
    assert int(problem.split(":")[1]) >= 2


def test_a_scenario_must_be_a_mapping() -> None:
    assert problems("- just\n- a list\n") == ["s.yaml:1:1: a scenario is a mapping of keys to values"]


def test_cross_field_mistakes_name_their_field() -> None:
    text = MINIMAL + "faults:\n  - {kind: kill_worker, at_s: 30}\n  - {kind: garbage, count: 2, target: planning}\n"
    found = problems(text)
    assert found[0].startswith("s.yaml:13:25: faults[0].at_s: 30 s is not inside the run")
    assert found[1] == "s.yaml:14:31: faults[1].target: the mix submits no planning jobs"


def test_a_pool_file_is_read_and_its_errors_name_that_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("model: {kind: linear}\nepochs: 3\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {kind: linear}\n\nepochs: 0\n")
    text = MINIMAL.replace(
        "      - spec:\n          model: {kind: linear}\n          epochs: 5\n", "      - file: good.yaml\n"
    )
    scenario = parse_scenario(text, "s.yaml", tmp_path)
    assert scenario.mix[0].pool[0].spec.epochs == 3  # type: ignore[union-attr]
    found = problems(text.replace("good.yaml", "bad.yaml"), tmp_path)
    assert len(found) == 1
    assert found[0].startswith("bad.yaml:3:1: mix[0].pool[0].spec.epochs: ")  # as the scenario names it


def test_a_missing_pool_file_is_named(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "      - spec:\n          model: {kind: linear}\n          epochs: 5\n", "      - file: nope.yaml\n"
    )
    (problem,) = problems(text, tmp_path)
    assert problem == "s.yaml:9:9: mix[0].pool[0].file: no job file 'nope.yaml' in the scenario directory"


def test_a_json_body_gets_field_paths_without_lines() -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_data({"name": "x", "seed": -1, "duration_s": 1, "rate": {"shape": "constant", "per_second": 1}})
    fields = {p.field for p in info.value.problems}
    assert fields == {"seed", "mix"}
    assert all(p.line is None for p in info.value.problems)


def test_timed_faults_keep_their_index() -> None:
    text = MINIMAL + "faults:\n  - {kind: duplicate, fraction: 0.1}\n  - {kind: kill_worker, at_s: 3}\n"
    scenario = parse_scenario(text)
    ((index, fault),) = scenario.timed_faults()
    assert index == 1 and isinstance(fault, KillWorkerFault)


def test_rental_garbage_needs_rental_journeys() -> None:
    text = MINIMAL + "faults:\n  - {kind: garbage, count: 1, target: rental}\n"
    assert problems(text) == ["s.yaml:13:31: faults[0].target: the mix has no rental journeys"]


def with_pool_file(name: str) -> str:
    """MINIMAL with its pool entry replaced by `file: <name>`."""
    return MINIMAL.replace(
        "      - spec:\n          model: {kind: linear}\n          epochs: 5\n", f"      - file: '{name}'\n"
    )


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    """A scenario directory with one good job file, beside a secret-looking YAML file and a link out of it."""
    inside = tmp_path / "scenarios"
    (inside / "jobs").mkdir(parents=True)
    (inside / "jobs" / "good.yaml").write_text("model: {kind: linear}\nepochs: 3\n")
    (tmp_path / "secret.yaml").write_text("aws_secret_access_key: hunter2-do-not-echo\n: : broken\n")
    (inside / "out").symlink_to(tmp_path)
    return inside


OUTSIDE_NAMES = [
    ("../secret.yaml", "../missing.yaml"),
    ("../../../../../../../..{tmp}/secret.yaml", "../../../../../../../..{tmp}/missing.yaml"),
    ("{tmp}/secret.yaml", "{tmp}/missing.yaml"),
    ("jobs/../../secret.yaml", "jobs/../../missing.yaml"),
    ("out/secret.yaml", "out/missing.yaml"),
]


@pytest.mark.parametrize(("existing", "missing"), OUTSIDE_NAMES)
def test_a_job_file_outside_the_scenario_dir_is_refused_alike_whether_it_exists_or_not(
    scenario_dir: Path, existing: str, missing: str
) -> None:
    tmp = str(scenario_dir.parent)
    answers = []
    for name in (existing.format(tmp=tmp), missing.format(tmp=tmp)):
        found = problems(with_pool_file(name), scenario_dir)
        assert len(found) == 1
        assert found[0] == f"s.yaml:9:9: mix[0].pool[0].file: {OUTSIDE}"
        answers.append(found)
    assert answers[0] == answers[1]
    assert "hunter2" not in str(answers)


def test_a_job_file_inside_the_scenario_dir_is_read(scenario_dir: Path) -> None:
    scenario = parse_scenario(with_pool_file("jobs/good.yaml"), "s.yaml", scenario_dir)
    assert scenario.mix[0].pool[0].spec.epochs == 3  # type: ignore[union-attr]


def test_the_bundled_dir_is_the_default_scenario_dir() -> None:
    scenario = parse_scenario(with_pool_file("jobs/training-linear.yaml"))
    assert scenario.mix[0].pool
    assert problems(with_pool_file("/etc/passwd")) == [f"s.yaml:9:9: mix[0].pool[0].file: {OUTSIDE}"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (alias_bomb(), "expands to more than"),
        ("[" * 1000 + "]" * 1000, "nested deeper than"),
        ("a: " + "[" * 1000, "exceeded maximum nesting depth"),
        ("a: &a [b, *a]\n", "contains it"),
        ("x: " + "y" * 2_000_001, "over the limit"),
    ],
    ids=["alias bomb", "1000 brackets", "1000 unclosed brackets", "recursive alias", "oversized"],
)
def test_yaml_over_the_limits_is_refused_at_once(text: str, words: str) -> None:
    assert len(alias_bomb()) < 320
    started = time.monotonic()
    (problem,) = problems(text)
    assert time.monotonic() - started < 1.0  # a guard: the bomb took 16 s and the brackets 4.8 s before
    assert ("YAML refused" in problem or "YAML syntax" in problem) and words in problem


def test_a_bomb_in_a_job_file_is_refused_naming_that_file(scenario_dir: Path) -> None:
    (scenario_dir / "jobs" / "bomb.yaml").write_text(alias_bomb())
    (problem,) = problems(with_pool_file("jobs/bomb.yaml"), scenario_dir)
    assert problem.startswith("jobs/bomb.yaml:") and "expands to more than" in problem


def test_a_few_anchors_and_aliases_still_work() -> None:
    text = MINIMAL.replace("      - spec:\n", "      - spec: &job\n") + "      - spec: *job\n"
    scenario = parse_scenario(text)
    assert len(scenario.mix[0].pool) == 2
