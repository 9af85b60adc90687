"""Geography for the detectors: distance from shore, ports/anchorages and named regions.

Distance from shore comes from ``global-land-mask`` (the GLOBE 1 km land/sea grid, a maintained
PyPI package) rather than hand-drawn coastlines. Its full grid is 21600 x 43200 cells (~1 GB in
memory), so the first use on a machine reduces it to two 0.05 degree grids, built once and cached
as bit-packed ``.npz`` under ``$AISWATCH_HOME/geo`` (~10 s the first time, milliseconds after):
*land* (any 1 km cell in it is land, which keeps small islands) and *water* (any 1 km cell in it is
ocean). A distance is the great-circle distance from the centre of the point's cell to the nearest land
cell centre within a search radius (exact haversine on the window), capped at that radius:
resolution ~5.5 km (3 nm), the same answer for every point of a cell, and near a coast the distance
errs short (a cell counts as land for its smallest island).

Regions (``data/regions.yaml``): polygons (``polygon: [[lat, lon], ...]``) or boxes (``box:
[south, west, north, east]``), the first that contains a position names it. The user's
``extra_regions`` are asked first; then a position in a cell without any GLOBE ocean (land, and
the lakes and rivers GLOBE counts as land: the Great Lakes, the Illinois) is inland - named by the
``inland`` set (e.g. ``Great Lakes``) or ``inland waters`` - and never an ocean; then the sets.
Ocean polygons follow the continents' divides (the Americas' Pacific and Atlantic sides split
along the isthmus and the Andes), so a box can no longer call Florida's Atlantic coast Pacific.

Ports and anchorages (``data/ports.yaml``) are YAML sets: ``world`` always, plus ``latam`` (our
first deployment) by default; config ``geography`` can choose sets (``port_sets``,
``region_sets``) and add ``extra_ports`` / ``extra_regions``; ``set_anchorages`` adds those learnt
from the data (``behavior.anchorages``).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import yaml

from aiswatch.common.geodesy import KM_PER_NM, haversine_km

log = logging.getLogger(__name__)

DATA = Path(__file__).parent / "data"
GRID_STEP_DEG = 0.05            # 1/20 degree: 6 x 6 cells of the 1/120 degree GLOBE grid
_GLOBE_BLOCK = 6




def _cache_dir() -> Path:
    home = Path(os.environ.get("AISWATCH_HOME", Path.home() / ".local" / "share" / "aiswatch"))
    return home / "geo"


class ShoreDistance:
    """Distance from the nearest land (km / nm) for positions, from the cached coarse land grid;
    ``inland``: no GLOBE ocean at all in the position's cell."""

    def __init__(self, max_km: float = 200.0, cache_dir: Path | None = None):
        self.max_km = max_km
        self.cache_path = (cache_dir or _cache_dir()) / f"land_water_{GRID_STEP_DEG:g}deg.npz"
        self._land: np.ndarray | None = None
        self._water: np.ndarray | None = None
        self.built = False                      # this process built the cache (tests check it does not)
        self._memo: dict[tuple[int, int], float] = {}
        self._lock = threading.Lock()

    # grid rows run from 90 N southwards, columns from 180 W eastwards, like GLOBE
    @property
    def land(self) -> np.ndarray:
        if self._land is None:
            with self._lock:
                if self._land is None:
                    self._land, self._water = self._load_or_build()
        return self._land

    @property
    def water(self) -> np.ndarray:
        self.land  # noqa: B018 - loads both grids
        assert self._water is not None
        return self._water

    def _load_or_build(self) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = int(180 / GRID_STEP_DEG), int(360 / GRID_STEP_DEG)
        if self.cache_path.is_file():
            try:
                with np.load(self.cache_path) as cached:
                    return (np.unpackbits(cached["land"], axis=1)[:, :cols].astype(bool),
                            np.unpackbits(cached["water"], axis=1)[:, :cols].astype(bool))
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                log.warning("shore-distance cache %s unreadable (%s): rebuilding", self.cache_path, exc)
        log.info("building the %.2f degree land grid from global-land-mask (once per machine, ~10 s; cached in %s)",
                 GRID_STEP_DEG, self.cache_path.parent)
        from global_land_mask import globe  # ~1 GB while loaded: imported only to build the cache

        blocks = globe._mask.reshape(rows, _GLOBE_BLOCK, cols, _GLOBE_BLOCK)  # True = ocean, 1/120 degree
        land = ~blocks.all(axis=(1, 3))
        water = blocks.any(axis=(1, 3))
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(f".{os.getpid()}.tmp.npz")  # two processes may build at once
        np.savez_compressed(tmp, land=np.packbits(land, axis=1), water=np.packbits(water, axis=1))
        os.replace(tmp, self.cache_path)
        self.built = True
        return land, water

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return (min(max(int(math.floor((90.0 - lat) / GRID_STEP_DEG)), 0), int(180 / GRID_STEP_DEG) - 1),
                int(math.floor((lon + 180.0) / GRID_STEP_DEG)) % int(360 / GRID_STEP_DEG))

    def inland(self, lat: float, lon: float) -> bool:
        """No ocean at all (GLOBE) in the position's 0.05 degree cell: land, a lake or a river."""
        return not bool(self.water[self._cell(lat, lon)])

    def km(self, lat: float, lon: float) -> float:
        """Distance from shore in km, capped at ``max_km``; 0 on land."""
        key = (int(math.floor((90.0 - lat) / GRID_STEP_DEG)), int(math.floor((lon + 180.0) / GRID_STEP_DEG)))
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        # from the cell's centre: the same answer for every position in the cell, whichever is asked first
        value = self._compute(90.0 - (key[0] + 0.5) * GRID_STEP_DEG, (key[1] + 0.5) * GRID_STEP_DEG - 180.0, key)
        self._memo[key] = value
        return value

    def nm(self, lat: float, lon: float) -> float:
        return self.km(lat, lon) / KM_PER_NM

    def _compute(self, lat: float, lon: float, key: tuple[int, int]) -> float:
        land = self.land
        nrows, ncols = land.shape
        row, col = min(max(key[0], 0), nrows - 1), key[1] % ncols
        if land[row, col]:
            return 0.0
        dlat_cells = int(math.ceil(self.max_km / 111.0 / GRID_STEP_DEG)) + 1
        coslat = max(math.cos(math.radians(min(abs(lat) + self.max_km / 111.0, 89.0))), 0.02)
        dlon_cells = min(int(math.ceil(self.max_km / (111.0 * coslat) / GRID_STEP_DEG)) + 1, ncols // 2)
        r0, r1 = max(row - dlat_cells, 0), min(row + dlat_cells + 1, nrows)
        cols_idx = np.arange(col - dlon_cells, col + dlon_cells + 1) % ncols
        window = land[r0:r1][:, cols_idx]
        rr, cc = np.nonzero(window)
        if rr.size == 0:
            return self.max_km
        cell_lat = 90.0 - (r0 + rr + 0.5) * GRID_STEP_DEG
        cell_lon = (cols_idx[cc] + 0.5) * GRID_STEP_DEG - 180.0
        return float(min(haversine_km(lat, lon, cell_lat, cell_lon).min(), self.max_km))


@dataclass(frozen=True)
class Port:
    name: str
    country: str
    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class Region:
    """A named polygon of (lat, lon) vertices (a box is a four-vertex polygon); no antimeridian crossing."""

    name: str
    polygon: tuple[tuple[float, float], ...]

    @classmethod
    def from_row(cls, row: dict) -> "Region":
        if "polygon" in row:
            points = tuple((float(a), float(b)) for a, b in row["polygon"])
            if len(points) < 3:
                raise ValueError(f"region {row.get('name')!r}: a polygon needs three or more [lat, lon] points")
        elif "box" in row:
            s, w, n, e = map(float, row["box"])
            points = ((s, w), (n, w), (n, e), (s, e))
        else:
            raise ValueError(f"region {row.get('name')!r}: needs a polygon or a box")
        return cls(str(row["name"]), points)

    def contains(self, lat: float, lon: float) -> bool:
        """Ray casting; a point on a box's edge counts as inside."""
        pts = self.polygon
        lats, lons = [p[0] for p in pts], [p[1] for p in pts]
        if not (min(lats) <= lat <= max(lats) and min(lons) <= lon <= max(lons)):
            return False
        inside = False
        j = len(pts) - 1
        for i in range(len(pts)):
            yi, xi = pts[i]
            yj, xj = pts[j]
            if (xi, yi) != (xj, yj) and min(xi, xj) <= lon <= max(xi, xj) and min(yi, yj) <= lat <= max(yi, yj):
                # on the edge?
                cross = (xj - xi) * (lat - yi) - (yj - yi) * (lon - xi)
                if abs(cross) < 1e-12:
                    return True
            if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside


INLAND_WATERS = "inland waters"


def _load_sets(filename: str, sets: Iterable[str]) -> list[dict]:
    data = yaml.safe_load((DATA / filename).read_text()) or {}
    out: list[dict] = []
    for name in sets:
        if name not in data:
            raise ValueError(f"{filename}: unknown set {name!r} (have: {', '.join(sorted(data))})")
        out.extend(data[name])
    return out


class Geography:
    """Ports, regions and shore distance, answering the questions the detectors ask."""

    def __init__(self, config: dict | None = None, shore: ShoreDistance | None = None):
        config = config or {}
        port_rows = _load_sets("ports.yaml", config.get("port_sets", ["world", "latam"]))
        port_rows += list(config.get("extra_ports", []))
        self.ports = [Port(p["name"], p.get("country", ""), float(p["lat"]), float(p["lon"]),
                           float(p.get("radius_km", 10))) for p in port_rows]
        region_rows = _load_sets("regions.yaml", config.get("region_sets", ["latam", "world"]))
        self.user_regions = [Region.from_row(r) for r in config.get("extra_regions", [])]
        self.regions = self.user_regions + [Region.from_row(r) for r in region_rows]
        self.inland_regions = [Region.from_row(r) for r in _load_sets("regions.yaml", ["inland"])]
        self._region_memo: dict[tuple[float, float], str | None] = {}
        self.shore = shore or ShoreDistance()
        self.fixed_ports = list(self.ports)
        self.learnt: tuple[tuple[float, float], ...] = ()
        self._index_ports()

    def _index_ports(self) -> None:
        self._plat = np.array([p.lat for p in self.ports])
        self._plon = np.array([p.lon for p in self.ports])
        self._prad = np.array([p.radius_km for p in self.ports])

    def set_anchorages(self, centres: Iterable[tuple[float, float]], radius_km: float) -> None:
        """Anchorages learnt from the data (``behavior.anchorages``), as port circles of ``radius_km``
        beside the shipped ports and the configured ones."""
        centres = tuple(centres)
        if centres == self.learnt:
            return
        self.learnt = centres
        self.ports = self.fixed_ports + [Port("anchorage (learnt)", "", lat, lon, radius_km) for lat, lon in centres]
        self._index_ports()

    def nearest_port(self, lat: float, lon: float) -> tuple[Port | None, float]:
        """The nearest port and the distance (km) to its edge (negative inside its circle)."""
        if not self.ports:
            return None, math.inf
        d = haversine_km(lat, lon, self._plat, self._plon) - self._prad
        i = int(np.argmin(d))
        return self.ports[i], float(d[i])

    def port_at(self, lat: float, lon: float) -> Port | None:
        """The port whose circle contains the position, if any."""
        port, edge_km = self.nearest_port(lat, lon)
        return port if edge_km <= 0 else None

    def km_from_port(self, lat: float, lon: float) -> float:
        """Distance from the nearest port/anchorage area (0 inside one)."""
        return max(self.nearest_port(lat, lon)[1], 0.0)

    def region(self, lat: float, lon: float) -> str | None:
        """The user's region, else inland (the land mask) or the first shipped ocean region."""
        key = (round(lat, 3), round(lon, 3))
        if key not in self._region_memo:
            self._region_memo[key] = self._region(lat, lon)
        return self._region_memo[key]

    def _region(self, lat: float, lon: float) -> str | None:
        for region in self.user_regions:
            if region.contains(lat, lon):
                return region.name
        if self.shore.inland(lat, lon):
            return next((r.name for r in self.inland_regions if r.contains(lat, lon)), INLAND_WATERS)
        for region in self.regions[len(self.user_regions):]:
            if region.contains(lat, lon):
                return region.name
        return None

    def shore_nm(self, lat: float, lon: float) -> float:
        return self.shore.nm(lat, lon)
