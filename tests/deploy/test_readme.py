"""The README's claims that can rot: the tests it cites, the topics it maps and the kernel modules it lists."""

from __future__ import annotations

import re

from quartet_contracts.topics import CORE_TOPICS
from quartet_shared.settings import KernelSettings

from tests.deploy.conftest import REPO

README = (REPO / "README.md").read_text()


def test_every_test_the_readme_cites_exists() -> None:
    """Each `test_...` named as proof of a guarantee is a test function in tests/."""
    cited = set(re.findall(r"`(test_[a-z0-9_]+)`", README))
    assert cited, "the README cites no tests"
    defined = {
        match
        for path in (REPO / "tests").rglob("test_*.py")
        for match in re.findall(r"^def (test_[a-z0-9_]+)\(", path.read_text(), flags=re.MULTILINE)
    }
    assert not cited - defined, f"the README cites tests that do not exist: {sorted(cited - defined)}"


def test_topic_map_lists_every_registry_topic() -> None:
    """Every topic of the registry has a row in the README's topic map, with its partitions."""
    section = README.split("## Topic map", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z.]+)` \| [^|]+ \| (\d+) \|", section, re.M)}
    assert set(rows) == {spec.name for spec in CORE_TOPICS}
    default = KernelSettings.model_construct().topic_partitions
    for spec in CORE_TOPICS:
        assert int(rows[spec.name]) == (spec.partitions or default), spec.name


def _modules(package: str) -> set[str]:
    """The modules and subpackages of one of the kernel's packages, as the README names them."""
    root = REPO / package
    names = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    return names | {f"{p.name}/" for p in root.iterdir() if (p / "__init__.py").exists()}


def test_the_kernel_tables_name_every_module_of_the_three_packages() -> None:
    """Each module of the contracts, the runtime, the runner and the tooling has a row in the kernel section."""
    section = README.split("## The kernel (", 1)[1].split("\n## ", 1)[0]
    listed = {
        name for cells in re.findall(r"^\| ([^|]+) \|", section, re.M) for name in re.findall(r"`([a-z_/]+)`", cells)
    }
    for package in (
        "contracts/quartet_contracts",
        "shared/quartet_shared",
        "shared/quartet_shared/runner",
        "tools/quartet_tools",
    ):
        missing = _modules(package) - listed
        assert not missing, f"{package}: the README's kernel tables do not list {sorted(missing)}"
