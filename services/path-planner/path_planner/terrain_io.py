"""Terrain files: npz/npy arrays, GeoTIFF (tifffile) and grayscale PNG (Pillow), loaded as heightmaps.

Jobs name terrain files by a path relative to a terrain directory, which keeps a job message from reading
arbitrary files: `QUARTET_TERRAIN_DIR`, or by default `../shared/benchmarks` beside the repository (so
the SPSO benchmark terrain is `uav-spso/terrain.npz`). Rows are y and columns x for every format
(`height[y/cell − 1, x/cell − 1]`, the benchmark's convention), so an image's first row is y = 1.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import tifffile
from matplotlib import cbook
from PIL import Image, UnidentifiedImageError
from quartet_contracts.schemas.planning import FileTerrain, PngTerrain
from quartet_contracts.validation import shown

from path_planner.domain.errors import TerrainError
from path_planner.domain.scenario import Terrain
from path_planner.domain.types import FloatArray

REPO_ROOT = Path(__file__).resolve().parents[3]
TERRAIN_DIR_ENV = "QUARTET_TERRAIN_DIR"
_FIELD = "scenario.terrain.path"


def default_terrain_dir() -> Path:
    """`$QUARTET_TERRAIN_DIR`, else `../shared/benchmarks` relative to the repository root."""
    configured = os.environ.get(TERRAIN_DIR_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "benchmarks"


def load_heightmap(path: Path, array: str = "height") -> FloatArray:
    """Read a 2-D heightmap from .npz (named array), .npy, .tif/.tiff or .png, as float64."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if array not in data.files:
                    raise TerrainError("scenario.terrain.array", f"{path.name} has no array {array!r}: {data.files}")
                raw = data[array]
        elif suffix == ".npy":
            raw = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            raw = tifffile.imread(path)
        elif suffix == ".png":
            with Image.open(path) as img:
                raw = np.asarray(img.convert("L") if img.mode in ("RGB", "RGBA", "P", "LA") else img)
        else:
            raise TerrainError(_FIELD, f"unsupported terrain format {suffix!r} (npz, npy, tif, tiff, png)")
    except TerrainError:
        raise
    except (OSError, ValueError, UnidentifiedImageError, tifffile.TiffFileError) as exc:
        # Readers name the file by its full path (Pillow, OSError): a job's author sees only its relative name.
        reason = str(exc).replace(str(path), path.name)
        raise TerrainError(_FIELD, f"cannot read terrain file {path.name}: {reason}") from exc
    heights = np.asarray(raw, dtype=np.float64)
    if heights.ndim == 3 and heights.shape[-1] == 1:
        heights = heights[..., 0]
    if heights.ndim != 2:
        raise TerrainError(_FIELD, f"terrain must be a 2-D heightmap, {path.name} has shape {heights.shape}")
    return heights


class TerrainFileLoader:
    """Loads FileTerrain and PngTerrain sources from files under one terrain directory.

    The last few terrains are kept (keyed by file, size, modification time and source), since the API's
    admission check and the worker both build a job's scenario and many jobs share one map.
    """

    def __init__(self, root: Path | None = None, cached: int = 4) -> None:
        self.root = (root or default_terrain_dir()).resolve()
        self._cached = functools.lru_cache(maxsize=cached)(self._load)

    def resolve(self, relative: str) -> Path:
        """The file a source names, refusing paths that leave the terrain directory."""
        if "\x00" in relative:
            raise TerrainError(_FIELD, "the path contains a NUL character")
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root):
            raise TerrainError(_FIELD, f"{shown(relative)} is outside the terrain directory")
        try:
            found = candidate.is_file()
        except OSError:  # a name the file system refuses (too long, say) names no file either
            found = False
        if not found:
            raise TerrainError(_FIELD, f"terrain file {shown(relative)} not found in the terrain directory")
        return candidate

    def __call__(self, source: FileTerrain | PngTerrain) -> Terrain:
        """The heightmap the source names, scaled (and offset, for PNG)."""
        path = self.resolve(source.path)
        stat = path.stat()
        return self._cached(path, stat.st_size, stat.st_mtime_ns, source)

    def _load(self, path: Path, _size: int, _mtime_ns: int, source: FileTerrain | PngTerrain) -> Terrain:
        if isinstance(source, PngTerrain):
            if path.suffix.lower() != ".png":
                raise TerrainError(_FIELD, f"a png terrain source must name a .png file, got {path.name}")
            heights = load_heightmap(path) * source.height_scale + source.offset
        else:
            heights = load_heightmap(path, source.array) * source.height_scale
        return Terrain(heights, source.cell_size)


EARTH_METRES_PER_DEGREE = 111_320.0


def jacksboro_terrain() -> Terrain:
    """matplotlib's sample USGS elevation model of the Jacksboro fault, at its real cell size, north up.

    Its cells are 3 arc-seconds: about 92.8 m north-south and 74.4 m east-west at 36.6° N. Columns are
    resampled (linearly) to the north-south cell so that cells are square, as Terrain requires.
    """
    with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as dem:
        elevation = np.asarray(dem["elevation"], dtype=np.float64)
        dx, dy = float(dem["dx"]), float(dem["dy"])
        latitude = 0.5 * (float(dem["ymin"]) + float(dem["ymax"]))
    cell_y = dy * EARTH_METRES_PER_DEGREE
    cell_x = dx * EARTH_METRES_PER_DEGREE * math.cos(math.radians(latitude))
    # The file's first row is the northern edge; our rows run with y, northwards.
    north_up = elevation[::-1]
    columns = north_up.shape[1]
    width = columns * cell_x
    xs = np.arange(int(width // cell_y)) * cell_y / cell_x
    resampled = np.vstack([np.interp(xs, np.arange(columns), row) for row in north_up])
    return Terrain(resampled, cell_y)
