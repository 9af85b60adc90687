"""Land under the offline map: Natural Earth 1:10m land, clipped and projected for one picture.

``data/ne_10m_land.npz`` holds Natural Earth's 1:10m land polygons (public domain; ~0.2-0.4 km
grid), derived reproducibly by ``tools/natural_earth_land.py`` (which documents the arrays). It is
read on the first call of ``load_land`` and kept for the process; nothing reads it at import.

``land_paths`` turns the polygons that reach a view into SVG path strings in the view's pixels:
projected with the view's ``Mercator``, clipped to the view plus a margin (so the clip edges, which
are not coastline, stay outside the picture), and snapped to a ``tolerance`` pixel grid with
repeated points dropped (so a zoomed-out view carries no more points than it can show). Rings
keep their orientation (holes run against their exterior), so the default non-zero fill is right.
A missing or unreadable data file is a ``LandDataError`` with a one-line message.
"""
from __future__ import annotations

import functools
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_PATH = Path(__file__).parent / "data" / "ne_10m_land.npz"
MAX_LAT = 85.0511287798  # web-mercator's square world: latitudes beyond do not project usefully


class LandDataError(RuntimeError):
    """The land data file is missing or unreadable."""


@dataclass(frozen=True)
class Mercator:
    """d3's ``geoMercator`` with ``scale`` (pixels per radian) and ``translate`` (pixels of 0 E, 0 N)."""

    scale: float
    tx: float
    ty: float

    @classmethod
    def centred(cls, lon: float, lat: float, zoom: float, width: float, height: float) -> "Mercator":
        """Web-mercator zoom level ``zoom`` (256 pixels for the world at 0), (lon, lat) in the middle."""
        k = 256 * 2 ** zoom / (2 * math.pi)
        x, y = cls(k, 0.0, 0.0).project(lon, lat)
        return cls(k, width / 2 - float(x), height / 2 - float(y))

    @classmethod
    def fit(cls, bounds: tuple[float, float, float, float], x0: float, y0: float, x1: float, y1: float) -> "Mercator":
        """The largest scale showing (min lon, min lat, max lon, max lat) inside pixels x0..x1, y0..y1, centred."""
        min_lon, min_lat, max_lon, max_lat = bounds
        (bx0, bx1), (by1, by0) = cls(1.0, 0.0, 0.0).project(np.array([min_lon, max_lon]), np.array([min_lat, max_lat]))
        spans = [s for s in ((x1 - x0) / (bx1 - bx0) if bx1 > bx0 else None,
                             (y1 - y0) / (by1 - by0) if by1 > by0 else None) if s is not None]
        if not spans:
            raise ValueError("bounds without extent: pad them first")
        k = min(spans)
        return cls(k, (x0 + x1 - k * (bx0 + bx1)) / 2, (y0 + y1 - k * (by0 + by1)) / 2)

    def vega(self) -> dict:
        """The Vega projection that draws the same (named ``projection``, as Kibana's map mode names it)."""
        return {"name": "projection", "type": "mercator", "scale": self.scale, "translate": [self.tx, self.ty]}

    def project(self, lon, lat):
        lat = np.clip(lat, -MAX_LAT, MAX_LAT)
        x = self.tx + self.scale * np.radians(lon)
        y = self.ty - self.scale * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))
        return x, y

    def invert(self, x, y):
        lon = np.degrees((np.asarray(x, dtype=float) - self.tx) / self.scale)
        lat = np.degrees(2 * np.arctan(np.exp((self.ty - np.asarray(y, dtype=float)) / self.scale)) - np.pi / 2)
        return lon, lat


@dataclass(frozen=True)
class Land:
    """Polygons as rings of (lon, lat) points; ring and polygon boundaries as end offsets."""

    lon: np.ndarray
    lat: np.ndarray
    ring_start: np.ndarray
    ring_end: np.ndarray
    polygon_start: np.ndarray
    polygon_end: np.ndarray
    ring_bounds: np.ndarray  # (rings, 4): min lon, min lat, max lon, max lat
    source: str


def load_land(path: Path | None = None) -> Land:
    """The polygons of ``path`` (default ``DATA_PATH``), read once per process."""
    return _load(Path(path or DATA_PATH))


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Land:
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = np.cumsum(npz["dx"], dtype=np.int64), np.cumsum(npz["dy"], dtype=np.int64)
            scale, translate = npz["scale"], npz["translate"]
            ring_end, polygon_end = npz["ring_end"].astype(np.int64), npz["polygon_end"].astype(np.int64)
            source = str(npz["source"])
    except FileNotFoundError:
        raise LandDataError(f"the land data {path} is missing: reinstall aiswatch, or rebuild it with "
                            "tools/natural_earth_land.py (or draw without land: --no-land)") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise LandDataError(f"the land data {path} is unreadable ({type(exc).__name__}: {exc}); "
                            "reinstall aiswatch or rebuild it with tools/natural_earth_land.py") from None
    lon, lat = translate[0] + x * scale[0], translate[1] + y * scale[1]
    ring_start = np.concatenate([[0], ring_end[:-1]])
    bounds = np.stack([np.minimum.reduceat(lon, ring_start), np.minimum.reduceat(lat, ring_start),
                       np.maximum.reduceat(lon, ring_start), np.maximum.reduceat(lat, ring_start)], axis=1)
    return Land(lon, lat, ring_start, ring_end, np.concatenate([[0], polygon_end[:-1]]), polygon_end, bounds, source)


def _clip_half_plane(x: np.ndarray, y: np.ndarray, coord: np.ndarray, limit: float, keep_below: bool):
    """One Sutherland-Hodgman step: the ring (x, y), open (last != first), cut to coord <= / >= limit."""
    inside = coord <= limit if keep_below else coord >= limit
    if inside.all():
        return x, y
    if not inside.any():
        return x[:0], y[:0]
    px, py, pc = np.roll(x, 1), np.roll(y, 1), np.roll(coord, 1)
    crossing = inside != np.roll(inside, 1)  # the edge from the previous point to this one crosses the line
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(crossing, (limit - pc) / (coord - pc), 0.0)
    # each point emits the crossing on its way in (if any), then itself if inside
    emitted = crossing.astype(np.int64) + inside
    first = np.cumsum(emitted) - emitted
    out_x, out_y = np.empty(int(emitted.sum())), np.empty(int(emitted.sum()))
    at = first[crossing]
    out_x[at], out_y[at] = (px + t * (x - px))[crossing], (py + t * (y - py))[crossing]
    at = first[inside] + crossing[inside]
    out_x[at], out_y[at] = x[inside], y[inside]
    return out_x, out_y


def clip_ring(x: np.ndarray, y: np.ndarray, x0: float, y0: float, x1: float, y1: float):
    """The open ring (x, y) cut to the rectangle x0..x1, y0..y1 (parts outside follow its edges)."""
    for coord_is_x, limit, keep_below in ((True, x0, False), (True, x1, True), (False, y0, False), (False, y1, True)):
        x, y = _clip_half_plane(x, y, x if coord_is_x else y, limit, keep_below)
        if len(x) < 3:
            return x[:0], y[:0]
    return x, y


def _ring_path(x: np.ndarray, y: np.ndarray, tolerance: float) -> str:
    """``M x,y L ... Z`` on a ``tolerance`` pixel grid, consecutive repeats dropped; "" if under 3 points."""
    qx, qy = np.rint(x / tolerance).astype(np.int64), np.rint(y / tolerance).astype(np.int64)
    keep = np.ones(len(qx), dtype=bool)
    keep[1:] = (qx[1:] != qx[:-1]) | (qy[1:] != qy[:-1])
    qx, qy = qx[keep], qy[keep]
    if len(qx) > 1 and qx[0] == qx[-1] and qy[0] == qy[-1]:
        qx, qy = qx[:-1], qy[:-1]
    if len(qx) < 3:
        return ""
    xs = np.round(qx * tolerance, 2).tolist()
    ys = np.round(qy * tolerance, 2).tolist()
    return "M" + "L".join(f"{a:g},{b:g}" for a, b in zip(xs, ys)) + "Z"


def land_paths(land: Land, view: Mercator, width: float, height: float, margin: float = 8.0,
               tolerance: float = 0.5, min_size: float = 1.0) -> list[str]:
    """One SVG path per polygon reaching the ``width`` x ``height`` view, in its pixels.

    margin: pixels beyond the view the land extends (its clip edges are not coastline and must not
    show); tolerance: the pixel grid points snap to; min_size: rings smaller than this many pixels
    both ways (islets that would be a speck) are left out.
    """
    x0, y0, x1, y1 = -margin, -margin, width + margin, height + margin
    (lon0, lon1), (lat1, lat0) = view.invert([x0, x1], [y0, y1])
    b = land.ring_bounds
    near = (b[:, 2] >= lon0) & (b[:, 0] <= lon1) & (b[:, 3] >= lat0) & (b[:, 1] <= lat1)
    paths = []
    for p in np.flatnonzero(np.add.reduceat(near, land.polygon_start) > 0):
        parts = []
        for r in range(land.polygon_start[p], land.polygon_end[p]):
            if not near[r]:
                continue
            start, end = land.ring_start[r], land.ring_end[r] - 1  # open: drop the closing point
            px, py = view.project(land.lon[start:end], land.lat[start:end])
            if px.max() - px.min() < min_size and py.max() - py.min() < min_size:
                continue
            if px.min() < x0 or px.max() > x1 or py.min() < y0 or py.max() > y1:
                px, py = clip_ring(px, py, x0, y0, x1, y1)
            path = _ring_path(px, py, tolerance) if len(px) else ""
            if path:
                parts.append(path)
            elif r == land.polygon_start[p]:
                break  # no exterior in view: its holes do not matter
        if parts:
            paths.append("".join(parts))
    return paths
