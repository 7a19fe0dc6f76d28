"""The README's operational claims that can rot: the tests it cites and the topics it maps."""

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
