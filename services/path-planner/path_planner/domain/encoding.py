"""Search-space encodings: flat vectors in a box that decode to free waypoints (x, y, height above ground).

- Cartesian: (x1, y1, z1, ..., xn, yn, zn), x and y within the map, z within the altitude band.
- Spherical (the SPSO paper's): (r1..rn, psi1..psin, phi1..phin); waypoint k is waypoint k−1 (the start
  for k = 1) moved by r·(cos psi·cos phi, cos psi·sin phi, sin psi), with r in [0, 2|goal − start|/n],
  elevation psi in [−π/4, π/4] and azimuth phi within π/4 of the start-goal heading; every waypoint is
  clamped to the map and the band before the next one is built on it. The MATLAB code pairs x with sin
  phi while measuring phi0 with atan2(dy, dx); we use cos phi for x so that phi0 really is the heading.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from path_planner.domain.scenario import Scenario
from path_planner.domain.types import FloatArray

ANGLE_RANGE = math.pi / 4


class Encoding(Protocol):
    """Maps between a flat search vector and free waypoints."""

    name: str
    lower: FloatArray
    upper: FloatArray

    def decode(self, vectors: FloatArray) -> FloatArray:
        """(N, D) vectors -> (N, n, 3) waypoints."""
        ...

    def encode(self, waypoints: FloatArray) -> FloatArray:
        """(N, n, 3) waypoints -> (N, D) vectors."""
        ...


class CartesianEncoding:
    """Waypoints as their own coordinates, boxed by the map and the altitude band."""

    name = "cartesian"

    def __init__(self, scenario: Scenario) -> None:
        b = scenario.bounds
        n = scenario.n_waypoints
        self.n = n
        self.lower = np.tile([b.x_min, b.y_min, scenario.z_min], n).astype(np.float64)
        self.upper = np.tile([b.x_max, b.y_max, scenario.z_max], n).astype(np.float64)

    def decode(self, vectors: FloatArray) -> FloatArray:
        """(N, 3n) -> (N, n, 3), clipped to the box."""
        v = np.clip(np.asarray(vectors, dtype=np.float64), self.lower, self.upper)
        return v.reshape(v.shape[0], self.n, 3)

    def encode(self, waypoints: FloatArray) -> FloatArray:
        """(N, n, 3) -> (N, 3n)."""
        w = np.asarray(waypoints, dtype=np.float64)
        return w.reshape(w.shape[0], self.n * 3).copy()


class SphericalEncoding:
    """The SPSO paper's spherical vectors relative to the previous waypoint."""

    name = "spherical"

    def __init__(self, scenario: Scenario) -> None:
        n = scenario.n_waypoints
        self.n = n
        self._start = scenario.start_array
        delta = scenario.goal_array - self._start
        self.heading = math.atan2(float(delta[1]), float(delta[0]))
        r_max = 2.0 * float(np.linalg.norm(delta)) / n
        b = scenario.bounds
        self._lo = np.array([b.x_min, b.y_min, scenario.z_min])
        self._hi = np.array([b.x_max, b.y_max, scenario.z_max])
        self.lower = np.concatenate([np.zeros(n), np.full(n, -ANGLE_RANGE), np.full(n, self.heading - ANGLE_RANGE)])
        self.upper = np.concatenate(
            [np.full(n, r_max), np.full(n, ANGLE_RANGE), np.full(n, self.heading + ANGLE_RANGE)]
        )

    def steps(self, vectors: FloatArray) -> FloatArray:
        """The unclamped displacement of each waypoint from the previous one, (N, n, 3)."""
        return self._step_planes(vectors).transpose(2, 1, 0)

    def _step_planes(self, vectors: FloatArray) -> FloatArray:
        """The steps as (3, n, N): one contiguous plane per coordinate, each row one waypoint's steps."""
        v = np.ascontiguousarray(np.asarray(vectors, dtype=np.float64).T)
        n = self.n
        r = v[:n]
        psi = v[n : 2 * n]
        phi = v[2 * n :]
        d = np.empty((3, n, v.shape[1]))
        np.multiply(r, np.cos(psi), out=d[2])
        np.multiply(d[2], np.cos(phi), out=d[0])
        np.multiply(d[2], np.sin(phi), out=d[1])
        np.multiply(r, np.sin(psi), out=d[2])
        return d

    def decode(self, vectors: FloatArray) -> FloatArray:
        """(N, 3n) -> (N, n, 3), each waypoint clamped before the next is built on it."""
        d = self._step_planes(vectors)
        lo = self._lo[:, None]
        hi = self._hi[:, None]
        prev = np.broadcast_to(self._start[:, None], (3, d.shape[2]))
        for k in range(self.n):
            cur = d[:, k]
            cur += prev
            np.maximum(cur, lo, out=cur)
            np.minimum(cur, hi, out=cur)
            prev = cur
        # A view in (N, n, 3) order over the coordinate planes, which the cost reads plane by plane.
        return d.transpose(2, 1, 0)

    def encode(self, waypoints: FloatArray) -> FloatArray:
        """(N, n, 3) -> (N, 3n); inverse of decode for paths whose steps lie inside the box."""
        w = np.asarray(waypoints, dtype=np.float64)
        prev = np.concatenate([np.broadcast_to(self._start, (w.shape[0], 1, 3)), w[:, :-1]], axis=1)
        d = w - prev
        r = np.linalg.norm(d, axis=-1)
        psi = np.arcsin(np.clip(d[..., 2] / np.where(r > 0, r, 1.0), -1.0, 1.0))
        phi = np.arctan2(d[..., 1], d[..., 0])
        # Wrap into the half-turn around the heading so that the bounds (heading ± π/4) apply.
        phi = self.heading + (phi - self.heading + np.pi) % (2 * np.pi) - np.pi
        return np.concatenate([r, psi, phi], axis=1)


def make_encoding(name: str, scenario: Scenario) -> Encoding:
    """The encoding called `name` ("cartesian" or "spherical") for `scenario`."""
    if name == "cartesian":
        return CartesianEncoding(scenario)
    if name == "spherical":
        return SphericalEncoding(scenario)
    raise ValueError(f"unknown encoding {name!r}")
