"""Rate shapes: λ(t) for each shape, Λ(T) as the expected count, and arrivals drawn from them."""

from __future__ import annotations

import numpy as np
import pytest
from simulator.domain.rates import arrival_times, expected_count, rate_at
from simulator.domain.scenario import BurstRate, ConstantRate, RampRate


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_constant_rate_is_flat_inside_the_run_and_zero_outside() -> None:
    r = ConstantRate(per_second=4)
    assert rate_at(r, np.array([-1.0, 0.0, 5.0, 9.99, 10.0]), 10).tolist() == [0, 4, 4, 4, 0]
    assert expected_count(r, 10) == pytest.approx(40)


def test_ramp_rises_linearly_then_holds() -> None:
    r = RampRate.model_validate({"shape": "ramp", "from": 2, "to": 10, "over_s": 4})
    assert rate_at(r, np.array([0.0, 2.0, 4.0, 8.0]), 10).tolist() == [2, 6, 10, 10]
    # 4 s averaging 6/s, then 6 s at 10/s.
    assert expected_count(r, 10) == pytest.approx(24 + 60, rel=1e-3)


def test_ramp_defaults_to_the_whole_run() -> None:
    r = RampRate.model_validate({"shape": "ramp", "from": 0, "to": 10})
    assert expected_count(r, 20) == pytest.approx(100, rel=1e-3)


def test_bursts_alternate_base_and_burst() -> None:
    r = BurstRate(shape="bursts", base=1, burst=11, every_s=10, length_s=2, first_at_s=3)
    assert rate_at(r, np.array([0.0, 3.0, 4.9, 5.1, 13.5, 15.5]), 30).tolist() == [1, 11, 11, 1, 11, 1]
    # 30 s at 1/s plus 3 bursts of 2 s at +10/s.
    assert expected_count(r, 30) == pytest.approx(30 + 60, rel=1e-3)


def test_uniform_arrivals_are_exactly_the_expected_count_and_spread_evenly() -> None:
    times = arrival_times(ConstantRate(per_second=5), 10, "uniform", rng())
    assert len(times) == 50
    assert np.allclose(np.diff(times), 0.2)
    assert 0 <= times[0] < 0.2 and times[-1] < 10


def test_poisson_arrivals_average_the_expected_count() -> None:
    counts = [len(arrival_times(ConstantRate(per_second=20), 10, "poisson", rng(s))) for s in range(40)]
    assert np.mean(counts) == pytest.approx(200, rel=0.05)
    assert np.std(counts) == pytest.approx(np.sqrt(200), rel=0.5)


def test_arrivals_follow_the_shape() -> None:
    r = BurstRate(shape="bursts", base=0.5, burst=50, every_s=10, length_s=1)
    times = arrival_times(r, 60, "poisson", rng(3))
    in_burst = np.mod(times, 10) < 1
    # 6 bursts × 50 expected in bursts against 54 s × 0.5 outside.
    assert in_burst.sum() > 5 * (~in_burst).sum()


def test_ramp_arrivals_get_denser() -> None:
    r = RampRate.model_validate({"shape": "ramp", "from": 1, "to": 21})
    times = arrival_times(r, 20, "uniform", rng())
    first, second = (times < 10).sum(), (times >= 10).sum()
    assert first == pytest.approx(60, abs=1) and second == pytest.approx(160, abs=1)


def test_arrivals_are_reproducible_and_limited() -> None:
    a = arrival_times(ConstantRate(per_second=3), 30, "poisson", rng(9))
    b = arrival_times(ConstantRate(per_second=3), 30, "poisson", rng(9))
    assert np.array_equal(a, b)
    assert len(arrival_times(ConstantRate(per_second=3), 30, "uniform", rng(), limit=7)) == 7
    assert np.all(np.diff(a) >= 0) and a[-1] < 30


def test_an_unknown_process_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown arrival process"):
        arrival_times(ConstantRate(per_second=1), 1, "bursty", rng())
