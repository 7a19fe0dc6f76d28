"""The SPSO paper's path cost (Phung & Ha 2021), evaluated for a whole population at once.

A path is start, n free waypoints, goal; each point is (x, y, height above ground). With absolute
altitude = height + ground (nearest heightmap cell by default, as the SPSO MATLAB code rounds):

- J1 length: sum of 3-D segment lengths in absolute altitude.
- J2 threats: per segment and cylinder, d = horizontal point-to-segment distance to the centre;
  0 if d > R+s+m, collision if d < R+s, else (R+s+m) − d. No-fly boxes add a collision when a segment
  (straight in absolute altitude) enters the box grown by s.
- J3 altitude: per free waypoint |z − (zmin+zmax)/2|; z < 0 (under ground) is infinite.
- Beyond the paper, which checks only the waypoints' heights: each straight leg, in absolute altitude as
  the UAV flies it (see flight.py), is sampled at `leg_samples` interior points, and a leg passing under
  the ground there is infinite too (counted in J3), so a leg cannot cut through a ridge between two
  waypoints that clear it. `leg_samples = 0` is the paper's cost exactly.
- J4 smoothness: per interior point, the horizontal turning angle (degrees) when above 45, plus the
  change of climb angle when above 45. As in the MATLAB code, a zero-length horizontal segment is
  replaced by the nearest non-zero one before (for the incoming) or after (for the outgoing) it.
- Total: w1·J1 + w2·J2 + w3·J3 + w4·J4, weights 5, 1, 10, 1 by default.

The paper's infinite cost is represented by a large finite value, INFEASIBLE + the depth of the
violation, so that every cost is finite, serialisable and rankable: an optimizer still prefers fewer
and shallower violations. Any total at or above INFEASIBLE means the path is infeasible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from path_planner.domain.scenario import Scenario
from path_planner.domain.types import BoolArray, FloatArray, IntArray

INFEASIBLE = 1.0e6
LEG_SAMPLES = 8


@dataclass(frozen=True)
class CostWeights:
    """Weights of J1..J4 and the smoothness limits; the defaults are the paper's."""

    length: float = 5.0
    threat: float = 1.0
    altitude: float = 10.0
    smoothness: float = 1.0
    turn_limit_deg: float = 45.0
    climb_limit_deg: float = 45.0


@dataclass(frozen=True)
class CostBreakdown:
    """Per-path totals and terms for a population, each of shape (N,)."""

    total: FloatArray
    length: FloatArray
    threat: FloatArray
    altitude: FloatArray
    smoothness: FloatArray
    collisions: IntArray
    under_ground: IntArray
    penalty: FloatArray

    @property
    def feasible(self) -> BoolArray:
        """True where the path has no collision and no point under the ground."""
        ok: BoolArray = (self.collisions == 0) & (self.under_ground == 0)
        return ok

    @property
    def violations(self) -> IntArray:
        """Collisions plus points and legs under the ground, per path."""
        res: IntArray = self.collisions + self.under_ground
        return res

    @property
    def base(self) -> FloatArray:
        """The total without the INFEASIBLE units of its violations (their depths stay in it)."""
        res: FloatArray = self.total - self.penalty
        return res

    def row(self, i: int) -> dict[str, float]:
        """The terms of path `i` as plain floats."""
        return {
            "total": float(self.total[i]),
            "length": float(self.length[i]),
            "threat": float(self.threat[i]),
            "altitude": float(self.altitude[i]),
            "smoothness": float(self.smoothness[i]),
        }


def _slab(a: FloatArray, d: FloatArray, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Entry and exit parameters of the line a + t·d through the slab lo..hi (Liang–Barsky)."""
    moving = d != 0
    safe = np.where(moving, d, 1.0)
    t1 = (lo - a) / safe
    t2 = (hi - a) / safe
    inside = (a >= lo) & (a <= hi)
    enter = np.where(moving, np.minimum(t1, t2), np.where(inside, -np.inf, np.inf))
    leave = np.where(moving, np.maximum(t1, t2), np.where(inside, np.inf, -np.inf))
    return enter, leave


def _per_path(rows: IntArray, values: FloatArray, n_paths: int) -> FloatArray:
    """The sum of `values` per path, `rows` giving the path of each value."""
    return np.asarray(np.bincount(rows, weights=values, minlength=n_paths), dtype=np.float64)


class PathCost:
    """The cost of a scenario, precomputed once and applied to populations of shape (N, n, 3)."""

    def __init__(self, scenario: Scenario, weights: CostWeights | None = None, leg_samples: int = LEG_SAMPLES) -> None:
        self.scenario = scenario
        self.weights = weights or CostWeights()
        # Interior fractions of a leg where its altitude is held above the ground.
        self._leg_at = np.arange(1, leg_samples + 1, dtype=np.float64) / (leg_samples + 1)
        self._start = scenario.start_array
        self._goal = scenario.goal_array
        t = scenario.threat_array
        self._tx = t[:, 0].copy()
        self._ty = t[:, 1].copy()
        self._inner = t[:, 2] + scenario.uav_size
        self._outer = self._inner + scenario.danger_margin
        self._zones = scenario.zone_array
        self._mid = 0.5 * (scenario.z_min + scenario.z_max)
        self._ground_max = float(scenario.terrain.height.max())

    def full_paths(self, waypoints: FloatArray) -> FloatArray:
        """Prepend the start and append the goal: (N, n, 3) -> (N, n+2, 3)."""
        w = np.asarray(waypoints, dtype=np.float64)
        n_paths = w.shape[0]
        full = np.empty((n_paths, w.shape[1] + 2, 3))
        full[:, 0] = self._start
        full[:, -1] = self._goal
        full[:, 1:-1] = w
        return full

    def _coordinate_planes(self, waypoints: FloatArray) -> FloatArray:
        """The full paths as (3, N, n+2): x, y and z each contiguous, as every term works on one of them."""
        w = np.asarray(waypoints, dtype=np.float64)
        planes = np.empty((3, w.shape[0], w.shape[1] + 2))
        planes[:, :, 0] = self._start[:, None]
        planes[:, :, -1] = self._goal[:, None]
        planes[:, :, 1:-1] = w.transpose(2, 0, 1)
        return planes

    def absolute(self, points: FloatArray) -> FloatArray:
        """Absolute altitude of points (..., 3) given as (x, y, height above ground)."""
        ground = self.scenario.terrain.height_at(points[..., 0], points[..., 1], self.scenario.sampling)
        res: FloatArray = points[..., 2] + ground
        return res

    def evaluate(self, waypoints: FloatArray) -> CostBreakdown:
        """Cost and its terms for each path of a population of free waypoints (N, n, 3)."""
        w = self.weights
        x, y, z = self._coordinate_planes(waypoints)
        za = z + self.scenario.terrain.height_at(x, y, self.scenario.sampling)
        dx = np.diff(x, axis=1)
        dy = np.diff(y, axis=1)
        dz = np.diff(za, axis=1)
        h2 = dx * dx + dy * dy
        horiz = np.sqrt(h2)
        j1 = np.sqrt(h2 + dz * dz).sum(axis=1)

        j2, collisions = self._threats(x, y, dx, dy)
        if self._zones.shape[0]:
            zone_cost, zone_hits = self._zones_cost(x, y, za, dx, dy, dz)
            j2 = j2 + zone_cost
            collisions = collisions + zone_hits

        zf = z[:, 1:-1]
        below = zf < 0
        j3 = np.where(below, INFEASIBLE - zf, np.abs(zf - self._mid)).sum(axis=1)
        under = below.sum(axis=1).astype(np.int64)
        if self._leg_at.size:
            leg_cost, leg_hits = self._legs_under_ground(x, y, za, dx, dy, dz)
            j3 = j3 + leg_cost
            under = under + leg_hits

        j4 = self._smoothness(dx, dy, dz, horiz)
        total = w.length * j1 + w.threat * j2 + w.altitude * j3 + w.smoothness * j4
        penalty = INFEASIBLE * (w.threat * collisions + w.altitude * under)
        return CostBreakdown(total, j1, j2, j3, j4, collisions, under, penalty)

    def __call__(self, waypoints: FloatArray) -> FloatArray:
        """Total cost per path, (N, n, 3) -> (N,)."""
        return self.evaluate(waypoints).total

    def _threats(self, x: FloatArray, y: FloatArray, dx: FloatArray, dy: FloatArray) -> tuple[FloatArray, IntArray]:
        n_paths = x.shape[0]
        threat, rows, segs = self._near_threats(x, y, dx, dy)
        if rows.size == 0:
            return np.zeros(n_paths), np.zeros(n_paths, dtype=np.int64)
        sx = dx[rows, segs]
        sy = dy[rows, segs]
        dd = sx * sx + sy * sy
        inv = np.divide(1.0, dd, out=np.zeros_like(dd), where=dd > 0)
        ex = self._tx[threat] - x[rows, segs]
        ey = self._ty[threat] - y[rows, segs]
        # Projection parameter of the centre onto the segment, clamped to its ends.
        t = ex * sx
        t += ey * sy
        t *= inv
        np.maximum(t, 0.0, out=t)
        np.minimum(t, 1.0, out=t)
        ex -= t * sx
        ey -= t * sy
        ex *= ex
        ey *= ey
        ex += ey
        d = np.sqrt(ex, out=ex)
        hit = d < self._inner[threat]
        # max(outer - d, 0) is the margin cost; a collision is INFEASIBLE + (inner - d), which is that
        # same quantity plus INFEASIBLE - margin.
        np.subtract(self._outer[threat], d, out=d)
        np.maximum(d, 0.0, out=d)
        d += hit * (INFEASIBLE - self.scenario.danger_margin)
        return _per_path(rows, d, n_paths), np.bincount(rows[hit], minlength=n_paths).astype(np.int64)

    def _near_threats(self, x: FloatArray, y: FloatArray, dx: FloatArray, dy: FloatArray) -> tuple[IntArray, ...]:
        """(threat, path, segment) triples where the segment may come within the threat's outer radius.

        A segment lies within half its length of its midpoint, so a centre farther than outer + half from the
        midpoint is out of reach; the exact distance is computed only for the few other pairs.
        """
        if self._tx.size == 0:
            return (np.empty(0, dtype=np.intp),) * 3
        mx = 0.5 * dx
        mx += x[:, :-1]
        my = 0.5 * dy
        my += y[:, :-1]
        reach = np.sqrt(dx * dx + dy * dy)
        reach *= 0.5
        cx = mx - self._tx[:, None, None]
        cy = my - self._ty[:, None, None]
        cx *= cx
        cy *= cy
        cx += cy
        r = reach + self._outer[:, None, None]
        r *= r
        return np.nonzero(cx <= r)

    def _legs_under_ground(
        self, x: FloatArray, y: FloatArray, za: FloatArray, dx: FloatArray, dy: FloatArray, dz: FloatArray
    ) -> tuple[FloatArray, IntArray]:
        n_paths = x.shape[0]
        # A straight leg whose lower end is above the highest ground cannot pass under it: only the others
        # are sampled (most legs, on most maps), as (sample, leg) arrays.
        rows, legs = np.nonzero(np.minimum(za[:, :-1], za[:, 1:]) <= self._ground_max)
        if rows.size == 0:
            return np.zeros(n_paths), np.zeros(n_paths, dtype=np.int64)
        f = self._leg_at[:, None]
        sx = f * dx[rows, legs]
        sx += x[rows, legs]
        sy = f * dy[rows, legs]
        sy += y[rows, legs]
        depth = self.scenario.terrain.height_at(sx, sy, self.scenario.sampling)
        sz = f * dz[rows, legs]
        sz += za[rows, legs]
        depth -= sz
        worst = np.maximum.reduce(depth, axis=0)
        hit = worst > 0
        cost = _per_path(rows, np.where(hit, INFEASIBLE + worst, 0.0), n_paths)
        return cost, np.bincount(rows[hit], minlength=n_paths).astype(np.int64)

    def _zones_cost(
        self, x: FloatArray, y: FloatArray, za: FloatArray, dx: FloatArray, dy: FloatArray, dz: FloatArray
    ) -> tuple[FloatArray, IntArray]:
        s = self.scenario.uav_size
        zn = self._zones
        ex, lx = _slab(x[:, :-1, None], dx[..., None], zn[:, 0] - s, zn[:, 1] + s)
        ey, ly = _slab(y[:, :-1, None], dy[..., None], zn[:, 2] - s, zn[:, 3] + s)
        ez, lz = _slab(za[:, :-1, None], dz[..., None], np.full(zn.shape[0], -np.inf), zn[:, 4] + s)
        enter = np.maximum(np.maximum(np.maximum(ex, ey), ez), 0.0)
        leave = np.minimum(np.minimum(np.minimum(lx, ly), lz), 1.0)
        seg = np.sqrt(dx * dx + dy * dy + dz * dz)[..., None]
        inside = np.maximum(leave - enter, 0.0) * seg
        hit = leave > enter
        cost = np.where(hit, INFEASIBLE + inside, 0.0)
        return cost.sum(axis=(1, 2)), hit.sum(axis=(1, 2)).astype(np.int64)

    def _smoothness(self, dx: FloatArray, dy: FloatArray, dz: FloatArray, horiz: FloatArray) -> FloatArray:
        w = self.weights
        ax, ay, h1 = dx[:, :-1], dy[:, :-1], horiz[:, :-1]
        bx, by, h2 = dx[:, 1:], dy[:, 1:], horiz[:, 1:]
        nonzero = (dx != 0) | (dy != 0)
        if not nonzero.all():
            # Incoming leg of interior point k is the last non-zero one up to k-1 (else leg 0); outgoing
            # is the first non-zero one from k (else the final leg), as the MATLAB loops search. Found for every
            # row at once, from the flat positions of the non-zero legs (between sentinels) and their running
            # count, kept inside each path's own legs: IBOA's projection onto the box makes zero legs common, and
            # a search row by row made its run on the SPSO scenario 10 % slower (0.542 against 0.492 s CPU).
            n, n_seg = dx.shape
            nz = nonzero.ravel()
            pos = np.concatenate(([-1], np.flatnonzero(nz), [n * n_seg]))
            seen = np.cumsum(nz).reshape(n, n_seg)[:, :-1]
            first = np.arange(n)[:, None] * n_seg
            inc = np.maximum(pos[seen], first)
            out = np.minimum(pos[seen + 1], first + n_seg - 1)
            flat = [np.ascontiguousarray(a).ravel() for a in (dx, dy, horiz)]
            ax, ay, h1 = (a.take(inc) for a in flat)
            bx, by, h2 = (a.take(out) for a in flat)
        turn = np.degrees(np.arctan2(np.abs(ax * by - ay * bx), ax * bx + ay * by))
        climb1 = np.degrees(np.arctan2(dz[:, :-1], h1))
        climb2 = np.degrees(np.arctan2(dz[:, 1:], h2))
        dclimb = np.abs(climb2 - climb1)
        j4 = np.where(turn > w.turn_limit_deg, turn, 0.0) + np.where(dclimb > w.climb_limit_deg, dclimb, 0.0)
        res: FloatArray = j4.sum(axis=1)
        return res
