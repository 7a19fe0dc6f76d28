"""Terrain files: every format, scaling, and clear errors for bad or unsafe paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from matplotlib import cbook
from path_planner.domain.errors import TerrainError
from path_planner.domain.generator import GeneratorSettings, generate, has_corridor
from path_planner.terrain_io import TerrainFileLoader, default_terrain_dir, jacksboro_terrain
from PIL import Image
from quartet_contracts.schemas.planning import FileTerrain, PngTerrain

GRID = np.arange(12, dtype=np.float64).reshape(3, 4)


def test_npz_npy_and_tiff(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", height=GRID, other=GRID * 2)
    np.save(tmp_path / "b.npy", GRID)
    tifffile.imwrite(tmp_path / "c.tif", GRID.astype(np.float32))
    load = TerrainFileLoader(tmp_path)
    np.testing.assert_array_equal(load(FileTerrain(path="a.npz")).height, GRID)
    np.testing.assert_array_equal(load(FileTerrain(path="a.npz", array="other")).height, GRID * 2)
    np.testing.assert_array_equal(load(FileTerrain(path="b.npy", height_scale=2)).height, GRID * 2)
    t = load(FileTerrain(path="c.tif", cell_size=5))
    np.testing.assert_array_equal(t.height, GRID)
    assert t.x_extent == (5.0, 20.0)


def test_png_with_scale_and_offset(tmp_path: Path) -> None:
    Image.fromarray(GRID.astype(np.uint8), mode="L").save(tmp_path / "h.png")
    t = TerrainFileLoader(tmp_path)(PngTerrain(path="h.png", height_scale=10, offset=5))
    np.testing.assert_array_equal(t.height, GRID * 10 + 5)


@pytest.mark.parametrize(
    ("name", "content", "source", "match"),
    [
        ("bad.npz", b"not a zip", FileTerrain(path="bad.npz"), "cannot read"),
        ("bad.png", b"not a png", PngTerrain(path="bad.png"), "cannot read"),
        ("h.txt", b"1 2", FileTerrain(path="h.txt"), "unsupported"),
        ("one.npy", None, FileTerrain(path="one.npy"), "2-D"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes | None, source: FileTerrain, match: str) -> None:
    if content is None:
        np.save(tmp_path / name, np.arange(5.0))
    else:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(TerrainError, match=match) as err:
        TerrainFileLoader(tmp_path)(source)
    assert err.value.field.startswith("scenario.terrain")
    assert str(tmp_path) not in str(err.value), "an error must not reveal the server's terrain directory"


def test_missing_array_missing_file_and_escape(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", height=GRID)
    load = TerrainFileLoader(tmp_path / ".")
    with pytest.raises(TerrainError, match="no array 'z'") as err:
        load(FileTerrain(path="a.npz", array="z"))
    assert err.value.field == "scenario.terrain.array"
    with pytest.raises(TerrainError, match="not found") as missing:
        load(FileTerrain(path="nope.npz"))
    assert str(tmp_path) not in str(missing.value)
    with pytest.raises(TerrainError, match="NUL"):
        load(FileTerrain(path="a\x00.npz"))
    with pytest.raises(TerrainError, match="outside the terrain directory"):
        load(FileTerrain(path="../../etc/passwd"))


@pytest.mark.parametrize("name", ["x" * 5000 + ".npy", "a/" * 3000 + "b.npz"])
def test_a_name_too_long_for_the_file_system_is_not_found_and_echoed_short(tmp_path: Path, name: str) -> None:
    # The operating system refuses such a name (ENAMETOOLONG), which came out of the API's check as a 500.
    with pytest.raises(TerrainError, match="not found") as err:
        TerrainFileLoader(tmp_path)(FileTerrain(path=name))
    assert err.value.field == "scenario.terrain.path"
    assert len(str(err.value)) < 300


def test_default_directory_holds_the_spso_terrain(benchmark_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUARTET_TERRAIN_DIR", raising=False)
    assert default_terrain_dir().resolve() == benchmark_dir.resolve()
    t = TerrainFileLoader()(FileTerrain(path="uav-spso/terrain.npz"))
    assert t.height.shape == (879, 1045)
    assert 48 < t.height.min() < 49.5 and 295 < t.height.max() < 297


def test_jacksboro_dem_at_its_real_cell_size_north_up() -> None:
    """matplotlib's USGS sample: 3 arc-second cells, 92.8 m north-south, resampled east-west to square cells."""
    terrain = jacksboro_terrain()
    with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as dem:
        elevation = np.asarray(dem["elevation"], dtype=np.float64)
    assert terrain.cell_size == pytest.approx(92.77, abs=0.01)
    # 403 columns of 74.4 m (3 arc-seconds at 36.6 degrees north) make some 30 km: 323 square cells
    assert terrain.height.shape == (344, 323)
    np.testing.assert_array_equal(terrain.height[:, 0], elevation[::-1, 0])
    assert terrain.height.min() >= elevation.min() and terrain.height.max() <= elevation.max()
    scenario = generate(0, "jacksboro", GeneratorSettings(z_min=100, z_max=300), terrain=terrain)
    assert has_corridor(scenario)
    assert scenario.bounds.x_max == pytest.approx(323 * terrain.cell_size)
