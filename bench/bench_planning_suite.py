"""Path-planning benchmark suite the planner was never tuned on: 24 generated instances, six optimizers, statistics.

    uv run python bench/bench_planning_suite.py [--quick]      # run the suite, print its Markdown section
    uv run python bench/bench_planning_suite.py --write        # (re)write the 24 instance files

The instances are job specs in `services/path-planner/scenarios/suite/` (6 each of Gaussian peaks, ridges and
valleys, urban blocks, and matplotlib's Jacksboro USGS elevation model at its real cell size), made by the seeded
generator (path_planner.domain.generator) and checked again after writing: each file, loaded back as a job loads
it, must have a feasible corridor. Their terrain files (16-bit PNG, 0.1 m steps) are in `suite/terrain/`, named
relative to the planner's terrain directory, so a user submits an instance with that directory (or a copy of it)
as `QUARTET_TERRAIN_DIR`. Each file's optimizer, population and compare list reproduce one seed of the
100,000-evaluation budget.

IBOA, BOA, SPSO, PSO, L-SHADE and jSO run on every instance with 10 seeds at 30,000 and 100,000 evaluations
(population budget/200 x 200 iterations), over a process pool of os.cpu_count() workers. Reported per budget: each
instance's median best cost and success rate (runs within 1 % of the best cost any run of any optimizer found on
it, at either budget), mean ranks of the medians, Friedman's test and a post-hoc Wilcoxon signed-rank test of each
optimizer against IBOA over the instances' medians with Holm's correction, and an ECDF of cost / best known over
all runs, drawn in the style of COCO's plots to bench/figures/planner_ecdf.png.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from path_planner.domain.errors import ScenarioError
from path_planner.domain.generator import GeneratorSettings, generate, has_corridor, random_peaks
from path_planner.domain.optimizers import Budget
from path_planner.domain.planner import PlannerConfig, plan
from path_planner.domain.scenario import Scenario, Terrain
from path_planner.jobs import build_scenario, load_spec_file
from path_planner.terrain_io import TerrainFileLoader, jacksboro_terrain
from PIL import Image
from scipy import stats
from statsmodels.stats.multitest import multipletests

REPO_ROOT = Path(__file__).resolve().parents[1]
TERRAIN_ROOT = REPO_ROOT / "services" / "path-planner" / "scenarios"
SUITE_DIR = TERRAIN_ROOT / "suite"
FIGURE = Path(__file__).resolve().parent / "figures" / "planner_ecdf.png"
QUICK_FIGURE = Path(__file__).resolve().parent / ".work" / "planner_ecdf_quick.png"
OPTIMIZERS = ("iboa", "boa", "spso", "pso", "lshade", "jso")
CONTROL = "iboa"
BUDGETS = (30_000, 100_000)
ITERATIONS = 200
SEEDS = 10
KINDS = ("peaks", "ridges", "urban", "jacksboro")
PER_KIND = 6
FIRST_SEED = 2026
SEED_TRIES = 20
HEIGHT_STEP = 0.1
SUCCESS_TOLERANCE = 0.01
ALPHA = 0.05
SUITE_LIMIT_S = 4 * 3600
ECDF_FLOOR = 1e-5
Costs = NDArray[np.float64]


# ---- instance files ------------------------------------------------------------------------------------------


def _terrain_spec(kind: str, seed: int, terrain: Terrain, out_dir: Path) -> dict[str, Any]:
    """Gaussian peaks as their parameters; any other terrain as a 16-bit PNG in `out_dir/terrain`."""
    cfg = GeneratorSettings()
    if kind == "peaks":
        peaks, base = random_peaks(np.random.default_rng(seed), cfg.cells, cfg.cell_size)
        return {
            "kind": "gaussian",
            "base": base,
            "cell_size": cfg.cell_size,
            "peaks": [
                {"x": p.x, "y": p.y, "height": p.height, "sigma_x": p.sigma_x, "sigma_y": p.sigma_y} for p in peaks
            ],
        }
    offset = float(np.floor(terrain.height.min()))
    steps = np.round((terrain.height - offset) / HEIGHT_STEP)
    name = "jacksboro.png" if kind == "jacksboro" else f"{kind}-{seed}.png"
    (out_dir / "terrain").mkdir(parents=True, exist_ok=True)
    Image.fromarray(steps.astype(np.uint16)).save(out_dir / "terrain" / name, format="PNG", optimize=True)
    path = f"{out_dir.relative_to(TERRAIN_ROOT).as_posix()}/terrain/{name}"
    return {"kind": "png", "path": path, "height_scale": HEIGHT_STEP, "offset": offset, "cell_size": terrain.cell_size}


def job_spec(kind: str, seed: int, scenario: Scenario, out_dir: Path) -> dict[str, Any]:
    """The job spec of a generated scenario: one seed of the 100,000-evaluation budget, every optimizer compared."""
    b = scenario.bounds
    return {
        "scenario": {
            "name": scenario.name,
            "terrain": _terrain_spec(kind, seed, scenario.terrain, out_dir),
            "bounds": {"x": [b.x_min, b.x_max], "y": [b.y_min, b.y_max]},
            "altitude": {"min": scenario.z_min, "max": scenario.z_max},
            "waypoints": scenario.n_waypoints,
            "uav_size": scenario.uav_size,
            "danger_margin": scenario.danger_margin,
            "threats": [
                {"x": round(t.x, 1), "y": round(t.y, 1), "radius": round(t.radius, 1)} for t in scenario.threats
            ],
            "start": [round(v, 1) for v in scenario.start],
            "goal": [round(v, 1) for v in scenario.goal],
        },
        "optimizer": {"name": CONTROL, "population": BUDGETS[-1] // ITERATIONS, "iterations": ITERATIONS},
        "seed": 0,
        "compare": [n for n in OPTIMIZERS if n != CONTROL],
    }


def load_instance(path: Path) -> Scenario:
    """An instance file as the planner's job API builds it, terrain read from the suite's terrain root."""
    return build_scenario(load_spec_file(path).scenario, TerrainFileLoader(TERRAIN_ROOT))


def write_instance(kind: str, index: int, out_dir: Path) -> Path:
    """Write the `index`-th instance of `kind`: the first generator seed whose written file has a corridor."""
    ground = jacksboro_terrain() if kind == "jacksboro" else None
    for seed in range(FIRST_SEED + 100 * index, FIRST_SEED + 100 * index + SEED_TRIES):
        try:
            scenario = generate(seed, kind, terrain=ground)
        except ScenarioError:  # no threat layout with a corridor for this seed
            continue
        path = out_dir / f"{kind}-{index + 1:02d}.yaml"
        header = f"# Benchmark suite instance: generator seed {seed}, terrain {kind} (bench/bench_planning_suite.py).\n"
        path.write_text(header + yaml.safe_dump(job_spec(kind, seed, scenario, out_dir), sort_keys=False))
        if has_corridor(load_instance(path)):
            return path
    raise RuntimeError(f"no {kind} seed of {SEED_TRIES} gave a written instance with a corridor")


def write_suite(out_dir: Path = SUITE_DIR) -> list[Path]:
    """Write the suite's 24 instance files (and terrain files), each corridor-checked as loaded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_instance(kind, i, out_dir) for kind in KINDS for i in range(PER_KIND)]


def instance_files(out_dir: Path = SUITE_DIR) -> list[Path]:
    """The suite's instance files, in kind order."""
    return sorted(out_dir.glob("*.yaml"), key=lambda p: (KINDS.index(p.stem.rsplit("-", 1)[0]), p.stem))


# ---- statistics ---------------------------------------------------------------------------------------------


def mean_ranks(medians: Costs) -> NDArray[np.float64]:
    """Mean rank of each column (optimizer) over the rows (instances); 1 is best, ties share their mean rank."""
    return np.asarray(stats.rankdata(medians, axis=1).mean(axis=0), dtype=np.float64)


def friedman(medians: Costs) -> tuple[float, float]:
    """Friedman's chi-square and p over instances (rows) as blocks and optimizers (columns) as treatments."""
    result = stats.friedmanchisquare(*medians.T)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class PostHoc:
    """One optimizer against the control: instances where the control's median is lower/higher, and p-values."""

    name: str
    control_better: int
    control_worse: int
    p: float
    p_holm: float

    @property
    def significant(self) -> bool:
        """Whether Holm's corrected p is below ALPHA."""
        return self.p_holm < ALPHA


def posthoc_vs_control(medians: Costs, names: Sequence[str], control: str = CONTROL) -> list[PostHoc]:
    """Two-sided Wilcoxon signed-rank test of each optimizer's medians against the control's, Holm-corrected."""
    c = list(names).index(control)
    others = [j for j in range(len(names)) if j != c]
    raw = []
    for j in others:
        diff = medians[:, j] - medians[:, c]
        # All-zero differences: no evidence of any difference, and scipy would return nan.
        raw.append(1.0 if not np.any(diff) else float(stats.wilcoxon(medians[:, c], medians[:, j]).pvalue))
    holm = multipletests(raw, alpha=ALPHA, method="holm")[1]
    return [
        PostHoc(
            names[j],
            int(np.sum(medians[:, c] < medians[:, j])),
            int(np.sum(medians[:, c] > medians[:, j])),
            p,
            float(h),
        )
        for j, p, h in zip(others, raw, holm, strict=True)
    ]


def success_rates(costs: Costs, best: NDArray[np.float64], tolerance: float = SUCCESS_TOLERANCE) -> Costs:
    """Share of runs (last axis) within `tolerance` of each instance's best known cost: [instance, optimizer]."""
    limit = best + tolerance * np.abs(best)
    return np.asarray(np.mean(costs <= limit[:, None, None], axis=-1), dtype=np.float64)


def ecdf_points(ratios: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The empirical CDF of the ratios: distinct values and the share of ratios at or below each."""
    cdf = stats.ecdf(ratios).cdf
    return np.asarray(cdf.quantiles, dtype=np.float64), np.asarray(cdf.probabilities, dtype=np.float64)


# ---- runs ---------------------------------------------------------------------------------------------------


@functools.cache
def _scenario(path: str) -> Scenario:
    return load_instance(Path(path))


RunKey = tuple[int, str]
RunOut = tuple[float, bool, float]


def run_seed(path: str, seed: int, budgets: tuple[int, ...], iterations: int) -> tuple[str, int, dict[RunKey, RunOut]]:
    """Every optimizer at every budget on one instance and seed: (best cost, feasible, CPU seconds) per run."""
    scenario = _scenario(path)
    out: dict[RunKey, RunOut] = {}
    for budget in budgets:
        for name in OPTIMIZERS:
            c0 = time.process_time()
            r = plan(scenario, PlannerConfig(name, Budget(budget // iterations, iterations)), seed=seed)
            out[(budget, name)] = (r.best_cost, r.feasible, time.process_time() - c0)
    return path, seed, out


@dataclass(frozen=True)
class SuiteRuns:
    """Best costs and feasibility per budget, as [instance, optimizer, seed] arrays, and the CPU time of all runs."""

    names: list[str]
    costs: dict[int, Costs]
    feasible: dict[int, NDArray[np.bool_]]
    cpu_s: float

    @property
    def best_known(self) -> NDArray[np.float64]:
        """Each instance's best cost over every run of every optimizer at every budget."""
        return np.asarray(np.min([c.min(axis=(1, 2)) for c in self.costs.values()], axis=0), dtype=np.float64)


def run_all(paths: list[Path], seeds: int, budgets: tuple[int, ...], iterations: int) -> SuiteRuns:
    """Run the suite over a fork-started pool of os.cpu_count() workers, giving up after SUITE_LIMIT_S."""
    shape = (len(paths), len(OPTIMIZERS), seeds)
    costs = {b: np.full(shape, np.nan) for b in budgets}
    feasible = {b: np.zeros(shape, dtype=bool) for b in budgets}
    index = {str(p): i for i, p in enumerate(paths)}
    cpu = 0.0
    # fork: the workers find this module (loaded from a file path, not importable by name) already in sys.modules.
    pool = cf.ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("fork"))
    try:
        futures = [pool.submit(run_seed, str(p), s, budgets, iterations) for p in paths for s in range(seeds)]
        for done in cf.as_completed(futures, timeout=SUITE_LIMIT_S):
            path, seed, out = done.result()
            for (budget, name), (cost, ok, cpu_s) in out.items():
                costs[budget][index[path], OPTIMIZERS.index(name), seed] = cost
                feasible[budget][index[path], OPTIMIZERS.index(name), seed] = ok
                cpu += cpu_s
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return SuiteRuns(list(OPTIMIZERS), costs, feasible, cpu)


# ---- report -------------------------------------------------------------------------------------------------

LABELS = {"iboa": "IBOA", "boa": "BOA", "spso": "SPSO", "pso": "PSO", "lshade": "L-SHADE", "jso": "jSO"}


def instance_table(runs: SuiteRuns, budget: int, labels: list[str]) -> list[str]:
    """Per instance: best known, then each optimizer's median best cost (lowest in bold) and successes."""
    costs, best = runs.costs[budget], runs.best_known
    medians = np.median(costs, axis=2)
    wins = np.round(success_rates(costs, best) * costs.shape[2]).astype(int)
    head = "| instance | best known | " + " | ".join(LABELS[n] for n in runs.names) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(runs.names)]
    for i, label in enumerate(labels):
        low = medians[i].min()
        cells = [
            f"{'**' if m == low else ''}{m:,.1f}{'**' if m == low else ''} ({w})"
            for m, w in zip(medians[i], wins[i], strict=True)
        ]
        lines.append(f"| {label} | {best[i]:,.1f} | " + " | ".join(cells) + " |")
    ranks = mean_ranks(medians)
    lines.append("| **mean rank** | | " + " | ".join(f"**{r:.2f}**" for r in ranks) + " |")
    return lines


def statistics_lines(runs: SuiteRuns, budget: int) -> list[str]:
    """Friedman's test, the post-hoc comparison against IBOA and feasible runs per optimizer."""
    medians = np.median(runs.costs[budget], axis=2)
    ranks = mean_ranks(medians)
    chi2, p = friedman(medians)
    lines = [
        f"Friedman test over the {medians.shape[0]} instances' medians: chi-square = {chi2:.2f}, p = {p:.3g}.",
        "",
        f"| vs {LABELS[CONTROL]} | mean rank | {LABELS[CONTROL]} median lower on | higher on | Wilcoxon p "
        "| Holm p | different at 5 % |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for h in posthoc_vs_control(medians, runs.names):
        j = runs.names.index(h.name)
        lines.append(
            f"| {LABELS[h.name]} | {ranks[j]:.2f} | {h.control_better} | {h.control_worse} | {h.p:.3g} | "
            f"{h.p_holm:.3g} | {'yes' if h.significant else 'no'} |"
        )
    feasible = runs.feasible[budget]
    total = feasible.shape[0] * feasible.shape[2]
    lines += [
        "",
        "Feasible returned paths: "
        + ", ".join(f"{LABELS[n]} {int(feasible[:, j].sum())}/{total}" for j, n in enumerate(runs.names))
        + ".",
    ]
    return lines


def goal_rows(runs: SuiteRuns, labels: list[str], quick: bool) -> list[str]:
    """The issue's three goals, one column per budget."""
    budgets = sorted(runs.costs)
    c, ls, sp = (runs.names.index(n) for n in (CONTROL, "lshade", "spso"))
    cells: dict[str, list[str]] = {"rank": [], "lshade": [], "spso": []}
    for b in budgets:
        medians = np.median(runs.costs[b], axis=2)
        ranks = mean_ranks(medians)
        rival = min((j for j in range(len(ranks)) if j != c), key=lambda j: ranks[j])
        cells["rank"].append(
            _verdict(
                ranks[c] < ranks[rival], quick, f"{ranks[c]:.2f} vs {LABELS[runs.names[rival]]} {ranks[rival]:.2f}"
            )
        )
        at_most = int(np.sum(medians[:, c] <= medians[:, ls]))
        n = medians.shape[0]
        cells["lshade"].append(_verdict(3 * at_most >= 2 * n, quick, f"{at_most}/{n}"))
        ratio = medians[:, c] / medians[:, sp]
        worst = int(np.argmax(ratio))
        over = int(np.sum(ratio > 1 + SUCCESS_TOLERANCE))
        cells["spso"].append(_verdict(over == 0, quick, f"worst {ratio[worst]:.4f} ({labels[worst]}); {over} over"))
    return [
        "| goal | " + " | ".join(f"{b:,} evaluations" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
        f"| {LABELS[CONTROL]} has the best mean rank | " + " | ".join(cells["rank"]) + " |",
        f"| {LABELS[CONTROL]} median <= L-SHADE's on >= 2/3 of the instances | " + " | ".join(cells["lshade"]) + " |",
        f"| {LABELS[CONTROL]} median never > 1 % above SPSO's (ratio IBOA/SPSO) | " + " | ".join(cells["spso"]) + " |",
    ]


def _verdict(ok: bool, quick: bool, measured: str) -> str:
    return f"{measured}: {'n/a (quick run)' if quick else ('met' if ok else 'NOT met')}"


def draw_ecdf(runs: SuiteRuns, path: Path) -> None:
    """COCO-style ECDFs of cost / best known − 1 over all runs (log x), one panel per budget, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted(runs.costs)
    fig, axes = plt.subplots(1, len(budgets), figsize=(6 * len(budgets), 4.5), sharey=True, squeeze=False)
    markers = "osv^D<"
    best = runs.best_known
    for ax, budget in zip(axes[0], budgets, strict=True):
        for j, name in enumerate(runs.names):
            # The excess over the best known, as COCO plots precisions: the runs that found it sit at the floor.
            excess = np.maximum((runs.costs[budget][:, j, :] / best[:, None]).ravel() - 1.0, ECDF_FLOOR)
            x, y = ecdf_points(excess)
            ax.step(
                np.r_[ECDF_FLOOR, x],
                np.r_[0.0, y],
                where="post",
                lw=2,
                label=LABELS[name],
                marker=markers[j],
                markevery=max(1, len(x) // 6),
                ms=6,
            )
        ax.axvline(SUCCESS_TOLERANCE, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(ECDF_FLOOR / 2, None)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"cost / best known − 1 (log; {ECDF_FLOOR:g} and below at the left, dotted: 1 %)")
        shape = runs.costs[budget].shape
        ax.set_title(f"{budget:,} evaluations, {shape[0]} instances x {shape[2]} seeds")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("fraction of runs")
    axes[0][-1].legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(runs: SuiteRuns, labels: list[str], quick: bool, wall_s: float, figure: Path, iterations: int) -> str:
    """The suite's Markdown section."""
    budgets = sorted(runs.costs)
    n, seeds = runs.costs[budgets[0]].shape[0], runs.costs[budgets[0]].shape[2]
    lines = [
        "## Path planning: benchmark suite (24 generated instances)",
        "",
        f"{n} instances (`services/path-planner/scenarios/suite/`), {', '.join(LABELS[o] for o in OPTIMIZERS)}; "
        f"seeds 0..{seeds - 1}; budgets {', '.join(f'{b:,}' for b in budgets)} evaluations "
        f"(population budget/{iterations} x {iterations} iterations); "
        f"{'QUICK smoke run, goals not assessed' if quick else 'full run'}. "
        f"Took {wall_s:.0f} s wall on {os.cpu_count()} workers ({runs.cpu_s:.0f} CPU-s in the runs).",
        "",
        "Each cell: the median best cost over the seeds (lowest of the row in bold) and, in brackets, how many runs",
        f"ended within {SUCCESS_TOLERANCE:.0%} of the instance's best known cost (the best any run of any optimizer "
        "found at either budget). Mean ranks rank the medians per instance (1 best, ties shared).",
        "",
    ]
    for b in budgets:
        lines += [f"### {b:,} evaluations", "", *instance_table(runs, b, labels), "", *statistics_lines(runs, b), ""]
    rel = Path(os.path.relpath(figure, Path(__file__).resolve().parent)).as_posix()
    lines += [
        "### Goals",
        "",
        *goal_rows(runs, labels, quick),
        "",
        f"![ECDF of cost / best known over all runs]({rel})",
        "",
        f"The figure (`bench/{rel}`): for each optimizer, the share of all its runs (instances x seeds) whose best",
        "cost exceeds the best known by at most the fraction x (log axis, runs that found it at the left edge);",
        "higher and further left is better. The dotted line is the 1 % of the success rate.",
        "",
    ]
    return "\n".join(lines)


def run(quick: bool, figure: Path | None = None) -> str:
    """Run the suite (quick: 2 instances, 2 seeds, tiny budgets) and return its Markdown section."""
    paths = instance_files()
    if quick:
        paths = [paths[0], paths[-1]]
        seeds, budgets, iterations = 2, (600, 1_000), 20
    else:
        seeds, budgets, iterations = SEEDS, BUDGETS, ITERATIONS
    t0 = time.perf_counter()
    runs = run_all(paths, seeds, budgets, iterations)
    wall = time.perf_counter() - t0
    # A quick run must not overwrite the committed figure of the last full run.
    target = figure or (QUICK_FIGURE if quick else FIGURE)
    draw_ecdf(runs, target)
    return report(runs, [p.stem for p in paths], quick, wall, target, iterations)


def main() -> None:
    """Command-line entry: write the instance files, or print the Markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 instances, 2 seeds, tiny budgets")
    parser.add_argument("--write", action="store_true", help="(re)write the instance files instead")
    args = parser.parse_args()
    if args.write:
        for path in write_suite():
            print(path.relative_to(REPO_ROOT))
    else:
        print(run(args.quick))


if __name__ == "__main__":
    main()
