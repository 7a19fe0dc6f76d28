"""Grid A* (2.5-D): a discrete reference path over the x-y grid at the middle of the altitude band.

The map is coarsened to at most `max_nodes` grid nodes. A node is blocked when it lies within
R + s + m (radius, UAV size, danger margin) of a threat centre, or inside a no-fly box (grown by s)
whose top is above the node's flight altitude (terrain + band middle). Moves are 8-connected and cost
the 3-D length at that altitude; the heuristic is the straight horizontal distance (admissible).
The grid path is string-pulled (a vertex is dropped while the shortcut stays on free nodes), and its
corners become the free waypoints: when there are fewer corners than waypoints the longest legs are
split, when there are more, corners are dropped one at a time, always the one whose shortcut crosses
the least blocked ground (then the one that lengthens the path least).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from path_planner.domain.scenario import Scenario
from path_planner.domain.types import BoolArray, FloatArray

_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


@dataclass(frozen=True)
class GridPath:
    """The A* outcome: the free waypoints, the string-pulled corner path, nodes expanded, and success."""

    waypoints: FloatArray
    corners: FloatArray
    expanded: int
    found: bool


class _Grid:
    def __init__(self, scenario: Scenario, max_nodes: int) -> None:
        b = scenario.bounds
        area = (b.x_max - b.x_min) * (b.y_max - b.y_min)
        self.step = max(scenario.terrain.cell_size, math.sqrt(area / max_nodes))
        self.xs = np.arange(b.x_min, b.x_max + 1e-9, self.step)
        self.ys = np.arange(b.y_min, b.y_max + 1e-9, self.step)
        gx, gy = np.meshgrid(self.xs, self.ys)
        self.mid = 0.5 * (scenario.z_min + scenario.z_max)
        self.alt = scenario.terrain.height_at(gx, gy, scenario.sampling) + self.mid
        blocked = np.zeros(gx.shape, dtype=bool)
        for th in scenario.threats:
            reach = th.radius + scenario.uav_size + scenario.danger_margin
            blocked |= np.hypot(gx - th.x, gy - th.y) < reach
        s = scenario.uav_size
        for z in scenario.no_fly_zones:
            inside = (gx >= z.x_min - s) & (gx <= z.x_max + s) & (gy >= z.y_min - s) & (gy <= z.y_max + s)
            blocked |= inside & (self.alt <= z.top + s)
        self.blocked: BoolArray = blocked

    def node(self, x: float, y: float) -> tuple[int, int]:
        col = int(np.clip(round((x - self.xs[0]) / self.step), 0, self.xs.size - 1))
        row = int(np.clip(round((y - self.ys[0]) / self.step), 0, self.ys.size - 1))
        return row, col

    def blocked_length(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        length = math.hypot(b[0] - a[0], b[1] - a[1])
        n = max(2, int(length / (0.5 * self.step)) + 2)
        t = np.linspace(0.0, 1.0, n)
        cols = np.clip(np.rint((a[0] + t * (b[0] - a[0]) - self.xs[0]) / self.step), 0, self.xs.size - 1)
        rows = np.clip(np.rint((a[1] + t * (b[1] - a[1]) - self.ys[0]) / self.step), 0, self.ys.size - 1)
        hits = self.blocked[rows.astype(np.intp), cols.astype(np.intp)][1:-1]
        return float(hits.sum()) * length / (n - 1)

    def clear(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        return self.blocked_length(a, b) == 0.0


def _search(grid: _Grid, start: tuple[int, int], goal: tuple[int, int]) -> tuple[list[tuple[int, int]], int]:
    rows, cols = grid.blocked.shape
    blocked = grid.blocked.copy()
    blocked[start] = False
    blocked[goal] = False
    alt = grid.alt
    gr, gc = goal
    step = grid.step
    g_cost = {start: 0.0}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    heap = [(0.0, 0.0, start)]
    closed: set[tuple[int, int]] = set()
    expanded = 0
    while heap:
        _, g, cur = heapq.heappop(heap)
        if cur in closed:
            continue
        closed.add(cur)
        expanded += 1
        if cur == goal:
            path = [cur]
            while path[-1] in parent:
                path.append(parent[path[-1]])
            return path[::-1], expanded
        r, c = cur
        a0 = float(alt[r, c])
        for dr, dc in _MOVES:
            nr, nc = r + dr, c + dc
            if not (0 <= nr < rows and 0 <= nc < cols) or blocked[nr, nc] or (nr, nc) in closed:
                continue
            horiz = step * math.hypot(dr, dc)
            ng = g + math.hypot(horiz, float(alt[nr, nc]) - a0)
            if ng < g_cost.get((nr, nc), math.inf):
                g_cost[(nr, nc)] = ng
                parent[(nr, nc)] = cur
                h = step * math.hypot(gr - nr, gc - nc)
                heapq.heappush(heap, (ng + h, ng, (nr, nc)))
    return [], expanded


def _pull(grid: _Grid, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = [pts[0]]
    i = 0
    while i < len(pts) - 1:
        j = len(pts) - 1
        while j > i + 1 and not grid.clear(pts[i], pts[j]):
            j -= 1
        out.append(pts[j])
        i = j
    return out


def _drop_corners(grid: _Grid, corners: list[tuple[float, float]], n: int) -> list[tuple[float, float]]:
    pts = list(corners)
    while len(pts) > n + 2:
        best_i, best_key = 1, (math.inf, math.inf)
        for i in range(1, len(pts) - 1):
            a, b, c = pts[i - 1], pts[i], pts[i + 1]
            added = grid.blocked_length(a, c) - grid.blocked_length(a, b) - grid.blocked_length(b, c)
            key = (added, math.dist(a, c) - math.dist(a, b) - math.dist(b, c))
            if key < best_key:
                best_i, best_key = i, key
        del pts[best_i]
    return pts


def _to_waypoints(corners: FloatArray, n: int) -> FloatArray:
    inner = [corners[i] for i in range(1, len(corners) - 1)]
    pts = [corners[0], *inner, corners[-1]]
    while len(pts) < n + 2:
        lengths = [float(np.hypot(*(pts[i + 1] - pts[i]))) for i in range(len(pts) - 1)]
        i = int(np.argmax(lengths))
        pts.insert(i + 1, 0.5 * (pts[i] + pts[i + 1]))
    return np.array(pts[1:-1])


def astar_plan(scenario: Scenario, max_nodes: int = 40_000) -> GridPath:
    """Plan the reference path; when no grid path exists, the straight line is returned with found=False."""
    grid = _Grid(scenario, max_nodes)
    sx, sy, _ = scenario.start
    gx, gy, _ = scenario.goal
    nodes, expanded = _search(grid, grid.node(sx, sy), grid.node(gx, gy))
    n = scenario.n_waypoints
    if nodes:
        pts = [(float(sx), float(sy))]
        pts += [(float(grid.xs[c]), float(grid.ys[r])) for r, c in nodes[1:-1]]
        pts.append((float(gx), float(gy)))
        corners = np.array(_drop_corners(grid, _pull(grid, pts), n))
    else:
        corners = np.array([[sx, sy], [gx, gy]], dtype=np.float64)
    xy = _to_waypoints(corners, n)
    waypoints = np.column_stack([xy, np.full(n, grid.mid)])
    return GridPath(waypoints, corners, expanded, bool(nodes))
