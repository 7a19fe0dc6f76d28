"""Run every benchmark in one process, in one run, and write the figures to bench/RESULTS.md."""

from __future__ import annotations

import argparse
import importlib.util
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
SUITES = (
    "bench_kernel",
    "bench_micro",
    "bench_training",
    "bench_planning",
    "bench_planning_suite",
    "bench_chaos",
    "bench_chaos_cluster",
    "bench_txn_copy",
    "bench_capacity",
    "bench_rental",
)


def _load(name: str) -> ModuleType | None:
    path = HERE / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    """Run the suites named on the command line (all by default) and write the Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="small sizes, for smoke-testing the scripts")
    parser.add_argument("suites", nargs="*", default=list(SUITES))
    args = parser.parse_args()
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    sections = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.python_implementation()} "
        f"{platform.python_version()}, {cpu} cores. Every ratio compares two runs made side by side in the same "
        "run on the same machine, so machine noise affects both.",
        "",
    ]
    failed = False
    for name in args.suites:
        module = _load(name)
        if module is None:
            sections += [f"## {name}", "", "_not present_", ""]
            continue
        started = time.monotonic()
        try:
            sections.append(module.run(quick=args.quick))
        except Exception as exc:  # one broken suite must not hide the others' figures
            failed = True
            sections += [f"## {name}", "", f"**failed**: `{type(exc).__name__}: {exc}`", ""]
        sections.append(f"_({name} took {time.monotonic() - started:.0f} s)_\n")
        print(f"{name}: done", file=sys.stderr)
    args.out.write_text("\n".join(sections) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
