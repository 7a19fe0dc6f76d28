"""Screen IBOA variants on the planning suite against cached runs of the other five optimizers.

    nice -n 19 uv run python bench/screen_iboa.py --seeds 0-9 --others       # run and cache the other five first
    nice -n 19 uv run python bench/screen_iboa.py --seeds 0-9 '{}' '{"p_end": 0.7}' [--budgets 100000]

Each variant is IBOA with the given keyword arguments, run through `plan()` on the suite's 24 instances at the
suite's budgets (population budget/200 x 200 iterations), and ranked among the six optimizers with the suite's own
`mean_ranks`, `friedman` and `posthoc_vs_control` on the unrounded medians, as the suite ranks them; "at or below
L-SHADE" is the suite's goal count (IBOA's median <= L-SHADE's, unrounded), and the exact ties in it are reported
apart. The other optimizers' best costs are read from a cache (bench/.work/screen_others.json, one entry per
optimizer, budget, instance and seed) that `--others` fills by running them; a screen with any of their runs
missing stops and says so. Their code does not change between variants and every run is deterministic per seed.
A variant's own runs are cached too, keyed by its arguments and the text of iboa.py, so a rerun costs nothing and a
change of the code is never read from an old cache. Every run is bounded by its evaluation budget.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import hashlib
import importlib.util
import json
import multiprocessing
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from path_planner.domain import planner as planner_module
from path_planner.domain.optimizers import Budget, make_optimizer
from path_planner.domain.optimizers.iboa import IBOA
from path_planner.domain.planner import PlannerConfig, plan
from path_planner.domain.scenario import Scenario

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".work" / "screen_others.json"
VARIANTS = HERE / ".work" / "screen_variants"
OTHERS = ("boa", "spso", "pso", "lshade", "jso")


def _suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_planning_suite", HERE / "bench_planning_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SUITE = _suite()


@functools.cache
def _scenario(path: str) -> Scenario:
    """An instance as the suite loads it, once per worker process."""
    return SUITE.load_instance(Path(path))  # type: ignore[no-any-return]


def _run(task: tuple[str, str, str, int, int]) -> tuple[str, float]:
    """One run: (cache key, best cost). `name` is an optimizer, or 'iboa' with the variant's JSON arguments."""
    key, name, path, budget, seed = task
    args = json.loads(name[4:]) if name.startswith("iboa") else None
    factory = (lambda _n: IBOA(**args)) if args is not None else make_optimizer
    vars(planner_module)["make_optimizer"] = factory  # the variant in place of the default IBOA
    scenario = _scenario(path)
    config = PlannerConfig("iboa" if args is not None else name, Budget(budget // SUITE.ITERATIONS, SUITE.ITERATIONS))
    return key, float(plan(scenario, config, seed=seed).best_cost)


def _iboa_source() -> bytes:
    """The text of IBOA's module, so that a variant's cached runs are those of the code screened."""
    module = sys.modules[IBOA.__module__]
    assert module.__file__ is not None
    return Path(module.__file__).read_bytes()


def _load(path: Path) -> dict[str, float]:
    return json.loads(path.read_text()) if path.exists() else {}


def _fill(
    cache_path: Path, names: list[str], paths: list[Path], seeds: range, budgets: list[int], workers: int
) -> dict[str, float]:
    """Run every (name, budget, instance, seed) missing from the cache, saving as results come."""
    cache = _load(cache_path)
    tasks = [
        (f"{n}|{b}|{p.stem}|{s}", n, str(p), b, s)
        for n in names
        for b in budgets
        for p in paths
        for s in seeds
        if f"{n}|{b}|{p.stem}|{s}" not in cache
    ]
    if tasks:
        with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for i, (key, cost) in enumerate(pool.map(_run, tasks, chunksize=4)):
                cache[key] = cost
                if i % 50 == 0 or i == len(tasks) - 1:
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    cache_path.write_text(json.dumps(cache))
    return cache


def _median(cache: dict[str, float], name: str, budget: int, stem: str, seeds: range) -> float:
    """The median over `seeds` of the cached runs; every one of them must be there."""
    keys = [f"{name}|{budget}|{stem}|{s}" for s in seeds]
    missing = [k for k in keys if k not in cache]
    if missing:
        raise SystemExit(f"{len(missing)} runs of {name} on {stem} at {budget} are not cached: run --others first")
    return float(np.median([cache[k] for k in keys]))


def _report(
    variant: str, cache: dict[str, float], paths: list[Path], seeds: range, budgets: list[int]
) -> dict[str, Any]:
    """Mean ranks, counts against L-SHADE and SPSO, Friedman and Holm p per budget."""
    names = ["iboa", *OTHERS]
    out: dict[str, Any] = {}
    for b in budgets:
        med = np.array(
            [[_median(cache, variant if n == "iboa" else n, b, p.stem, seeds) for n in names] for p in paths]
        )
        ranks = SUITE.mean_ranks(med)
        _, fp = SUITE.friedman(med)
        post = {h.name: round(h.p_holm, 4) for h in SUITE.posthoc_vs_control(med, names)}
        out[str(b)] = {
            "ranks": dict(zip(names, np.round(ranks, 3).tolist(), strict=True)),
            "le_lshade": int(np.sum(med[:, 0] <= med[:, names.index("lshade")])),
            "ties_lshade": int(np.sum(med[:, 0] == med[:, names.index("lshade")])),
            # Where IBOA's median is above L-SHADE's, by how much (IBOA / L-SHADE), to see what is left to win.
            "above_lshade": {
                p.stem: round(float(r), 5)
                for p, r in zip(paths, med[:, 0] / med[:, names.index("lshade")], strict=True)
                if r > 1
            },
            "worst_vs_spso": round(float(np.max(med[:, 0] / med[:, names.index("spso")])), 4),
            "friedman_p": float(f"{fp:.3g}"),
            "holm": post,
        }
    return out


def main() -> None:
    """Parse the arguments, fill the caches, print each variant's figures as JSON lines."""
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="*", help="IBOA keyword arguments as JSON objects")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--others", action="store_true", help="run and cache the other five optimizers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budgets", default=",".join(map(str, SUITE.BUDGETS)), help="comma-separated")
    a = parser.parse_args()
    first, last = (int(v) for v in a.seeds.split("-"))
    seeds = range(first, last + 1)
    paths = SUITE.instance_files()
    budgets = [int(b) for b in a.budgets.split(",")]
    if a.others:
        _fill(CACHE, list(OTHERS), paths, seeds, budgets, a.workers)
    for v in a.variants:
        variant = "iboa" + json.dumps(json.loads(v), sort_keys=True)
        # One file per variant, code and budgets, so screens of one variant at different budgets can run side by side.
        stem = hashlib.sha1(variant.encode() + _iboa_source()).hexdigest()[:12]
        _fill(VARIANTS / f"{stem}-{'-'.join(map(str, budgets))}.json", [variant], paths, seeds, budgets, a.workers)
        cache = _load(CACHE)
        for part in sorted(VARIANTS.glob(f"{stem}-*.json")):
            cache |= _load(part)
        print(
            json.dumps({"variant": v, "seeds": a.seeds, **_report(variant, cache, paths, seeds, budgets)}), flush=True
        )


if __name__ == "__main__":
    main()
