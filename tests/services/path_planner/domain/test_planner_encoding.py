"""Encodings: round trips, bounds and clamping."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from path_planner.domain.encoding import CartesianEncoding, SphericalEncoding, make_encoding
from path_planner.domain.scenario import Bounds, Scenario, Terrain


def big_map() -> Scenario:
    return Scenario(
        terrain=Terrain(np.zeros((1000, 1000))),
        bounds=Bounds(1, 1000, 1, 1000),
        start=(500.0, 500.0, 150.0),
        goal=(800.0, 900.0, 150.0),
        n_waypoints=6,
    )


def test_spherical_bounds_follow_the_paper() -> None:
    enc = SphericalEncoding(big_map())
    n = 6
    heading = math.atan2(400, 300)
    np.testing.assert_allclose(enc.upper[:n], 2 * 500 / n)
    np.testing.assert_allclose(enc.lower[:n], 0.0)
    np.testing.assert_allclose(enc.lower[n : 2 * n], -math.pi / 4)
    np.testing.assert_allclose(enc.lower[2 * n :], heading - math.pi / 4)
    np.testing.assert_allclose(enc.upper[2 * n :], heading + math.pi / 4)


def test_spherical_round_trip() -> None:
    enc = SphericalEncoding(big_map())
    rng = np.random.default_rng(1)
    n = 6
    v = np.concatenate(
        [
            rng.uniform(1, 8, (20, n)),
            rng.uniform(-0.7, 0.7, (20, n)),
            rng.uniform(enc.lower[-1], enc.upper[-1], (20, n)),
        ],
        axis=1,
    )
    w = enc.decode(v)
    np.testing.assert_allclose(enc.encode(w), v, atol=1e-9)
    np.testing.assert_allclose(enc.decode(enc.encode(w)), w, atol=1e-9)


def test_spherical_first_step_is_from_the_start() -> None:
    enc = SphericalEncoding(big_map())
    n = 6
    v = np.zeros((1, 3 * n))
    v[0, 0] = 10.0
    v[0, 2 * n :] = 0.0  # heading along +x
    w = enc.decode(v)
    np.testing.assert_allclose(w[0, 0], [510.0, 500.0, 150.0])
    np.testing.assert_allclose(w[0, -1], [510.0, 500.0, 150.0])


def test_spherical_clamps_to_map_and_band() -> None:
    sc = big_map()
    enc = SphericalEncoding(sc)
    n = 6
    v = np.zeros((1, 3 * n))
    v[0, :n] = enc.upper[:n]
    v[0, n : 2 * n] = math.pi / 4  # keep climbing
    v[0, 2 * n :] = enc.heading
    w = enc.decode(v)[0]
    assert w[:, 2].max() == 200.0
    assert w[:, 0].max() <= 1000.0 and w[:, 1].max() <= 1000.0
    assert w[-1, 1] == 1000.0


def test_cartesian_round_trip_and_clip(flat: Any) -> None:
    sc = flat(n_waypoints=3)
    enc = make_encoding("cartesian", sc)
    assert isinstance(enc, CartesianEncoding)
    w = np.array([[[5, 6, 120], [7, 8, 130], [9, 10, 140]]], dtype=float)
    np.testing.assert_allclose(enc.decode(enc.encode(w)), w)
    out = enc.decode(np.array([[-50, 500, 0, 5, 5, 150, 5, 5, 999]], dtype=float))[0]
    np.testing.assert_allclose(out[0], [1, 100, 100])
    assert out[2, 2] == 200
