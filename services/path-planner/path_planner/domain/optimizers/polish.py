"""A compass search around one point, polled a whole generation at a time.

Generating set search with the coordinate directions ±e_i (the compass search of Kolda, Lewis & Torczon,
"Optimization by direct search", SIAM Review 45(3), 2003), with one step length per coordinate: every step
polls the 2·D points x ± δ_i·e_i in one objective call. When some improve on x, the better improving move of
each coordinate is combined into one more point (waypoints are nearly separable, so the moves mostly add up),
and x goes to the better of the combined point and the best single poll; the coordinates that improved
double their step, the others halve it. A poll without improvement halves every step, as the compass search
contracts. Comparisons are the epsilon-level ones at eps = 0: fewer violated constraints first, then cost.
"""

from __future__ import annotations

import numpy as np

from path_planner.domain.optimizers.base import Scores, SearchRun, bounce_back, concat_scores, take_rows
from path_planner.domain.types import FloatArray, IntArray


def _rank_key(s: Scores) -> IntArray:
    """Each point's place when sorted by violations first, then by cost (eps = 0); ties keep their order."""
    res: IntArray = np.lexsort((s.base, s.violation)).argsort()
    return res


def _row(s: Scores, i: int) -> Scores:
    return take_rows(s, slice(i, i + 1))


def compass_search(
    run: SearchRun, x: FloatArray, score: Scores, step: FloatArray, lo: FloatArray, hi: FloatArray
) -> FloatArray:
    """Poll around `x` (scored `score`, one row) until the run's budget is spent; returns the last point."""
    dim = x.size
    eye = np.eye(dim)
    while not run.done:
        poll = bounce_back(np.vstack([x + step * eye, x - step * eye]), np.broadcast_to(x, (2 * dim, dim)), lo, hi)
        s = run.score_in_iterations(poll)
        if s.total.size < 2 * dim:  # the budget ended within the poll; the run kept the best seen
            break
        key = _rank_key(concat_scores([score, s]))
        gain = key[1:] < key[0]
        if not gain.any():
            step = step * 0.5
            continue
        plus, minus = gain[:dim], gain[dim:]
        up = plus & (~minus | (key[1 : dim + 1] < key[dim + 1 :]))
        move = np.where(up, step, np.where(minus & ~up, -step, 0.0))
        combined = bounce_back((x + move)[None], x[None], lo, hi)
        c = run.score_in_iterations(combined)
        step = np.where(plus | minus, step * 2.0, step * 0.5)
        best = int(np.argmin(key[1:]))
        if c.total.size and _rank_key(concat_scores([c, _row(s, best)]))[0] == 0:
            x, score = combined[0], c
        else:
            x, score = poll[best], _row(s, best)
    return x
