"""The land data shipped for ``aiswatch map`` and the geometry that fits it to a view (``kibana.land``).

The shipped file is checked for what the renderer relies on (Natural Earth 1:10m, closed planar
rings, nothing across the antimeridian, one exterior per polygon); the derivation's antimeridian cut
is checked on rings whose answer is known; clipping and the Mercator view on shapes with known
areas and corners; a missing or broken file is one clear line, also through ``aiswatch map``; and
the data is read only when a map is drawn.
"""
from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aiswatch.kibana.land import DATA_PATH, LandDataError, Mercator, clip_ring, land_paths, load_land

ROOT = Path(__file__).resolve().parent.parent


def derivation():
    """tools/natural_earth_land.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("natural_earth_land", ROOT / "tools" / "natural_earth_land.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shoelace(x, y) -> float:
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


# -- the shipped data -------------------------------------------------------------------------------------

def test_shipped_land_is_natural_earth_10m_in_planar_rings():
    land = load_land()
    assert "Natural Earth" in land.source and "1:10m" in land.source and "world-atlas@2.0.2" in land.source
    assert DATA_PATH.stat().st_size < 1_000_000
    assert len(land.lon) > 400_000 and len(land.ring_start) > 4000  # 1:50m has ~60k points, 1:110m ~5k
    assert (land.polygon_start[1:] == land.polygon_end[:-1]).all() and land.polygon_end[-1] == len(land.ring_start)
    assert np.all((land.lon >= -180) & (land.lon <= 180)) and np.all((land.lat >= -90.01) & (land.lat <= 84))
    for r in range(len(land.ring_start)):
        lon, lat = land.lon[land.ring_start[r]:land.ring_end[r]], land.lat[land.ring_start[r]:land.ring_end[r]]
        assert len(lon) >= 4 and lon[0] == lon[-1] and lat[0] == lat[-1], f"ring {r} is not closed"
        jumps = np.flatnonzero(np.abs(np.diff(lon)) > 180)
        # only Antarctica's closing edge along the south pole spans the world
        assert all(lat[j] < -89.9 and lat[j + 1] < -89.9 for j in jumps), f"ring {r} crosses the antimeridian"
        assert shoelace(lon, lat) != 0, f"ring {r} has no area"


def test_land_data_rebuilds_from_the_same_topology_byte_for_byte():
    """The derivation is deterministic: the shipped arrays encoded again give the shipped bytes."""
    tool = derivation()
    with np.load(DATA_PATH, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    assert tool.encode(arrays) == DATA_PATH.read_bytes()
    assert str(arrays["source"]) == tool.SOURCE


def test_antimeridian_cut_of_a_ring_crossing_twice():
    tool = derivation()
    # an island from 170 E to 170 W on a 360-unit grid: x 350..370 wraps to 350..359, 0..10
    ring = np.array([[350, 10], [5, 10], [5, 20], [350, 20], [350, 10]])
    pieces = tool.split_at_antimeridian(ring, 360, {-1: -90, 1: 90})
    assert len(pieces) == 2
    areas = sorted(abs(tool.area2(p)) / 2 for p in pieces)
    assert areas == [5 * 10, 10 * 10]  # 5 units east of the antimeridian, 10 west of it
    for p in pieces:
        assert (p[0] == p[-1]).all() and np.abs(np.diff(p[:, 0])).max() < 180


def test_antimeridian_cut_of_a_ring_round_the_south_pole():
    tool = derivation()
    # a band round the world between latitude -70 and the coast at -60, closed on the sphere, not on the plane
    ring = np.array([[10, -60], [120, -62], [250, -61], [359, -60], [10, -60]])
    (piece,) = tool.split_at_antimeridian(ring, 360, {-1: -90, 1: 90})
    assert (piece[0] == piece[-1]).all()
    assert piece[:, 1].min() == -90 and set(piece[:, 0]) >= {0, 360}
    assert abs(tool.area2(piece)) / 2 > 360 * 28  # the whole cap down to the pole, not a sliver


# -- the view ------------------------------------------------------------------------------------------------

def test_mercator_fit_puts_the_bounds_in_the_extent():
    view = Mercator.fit((-2.0, 50.0, 8.0, 56.0), 30, 30, 800, 610)
    (x0, x1), (y_south, y_north) = view.project(np.array([-2.0, 8.0]), np.array([50.0, 56.0]))
    assert math.isclose(y_south, 610) and math.isclose(y_north, 30)  # tall data: the height binds
    assert 30 <= x0 and x1 <= 800 and math.isclose((x0 + x1) / 2, 415)
    lon, lat = view.invert(np.array([x0, 123.0]), np.array([y_north, 456.0]))
    assert math.isclose(lon[0], -2.0) and math.isclose(lat[0], 56.0)
    assert np.allclose(view.project(lon, lat), ([x0, 123.0], [y_north, 456.0]))
    # Kibana's zoom: 256 pixels for the world at zoom 0
    world = Mercator.centred(0, 0, 0, 256, 256)
    assert np.allclose(world.project(np.array([-180.0, 180.0]), np.array([0.0, 0.0]))[0], [0, 256])


def test_clip_ring_cuts_to_the_rectangle_and_keeps_the_orientation():
    x, y = np.array([0.0, 10.0, 10.0, 0.0]), np.array([0.0, 0.0, 10.0, 10.0])  # counter-clockwise square
    cx, cy = clip_ring(x, y, 5, -1, 20, 20)
    assert math.isclose(shoelace(cx, cy), 50.0)
    assert cx.min() == 5 and cx.max() == 10
    assert shoelace(*clip_ring(x[::-1], y[::-1], 5, -1, 20, 20)) == -50.0
    assert len(clip_ring(x, y, 20, 20, 30, 30)[0]) == 0
    assert np.array_equal(clip_ring(x, y, -1, -1, 11, 11)[0], x)
    # a C shape whose two arms leave the view: one ring along the view's edge, area of what is inside
    cx, cy = clip_ring(np.array([0.0, 9, 9, 2, 2, 9, 9, 0]), np.array([0.0, 0, 2, 2, 8, 8, 10, 10]), -1, -1, 5, 11)
    assert math.isclose(shoelace(cx, cy), 5 * 10 - 3 * 6)


def test_land_paths_stay_in_the_view_and_thin_out_when_zoomed_out():
    land = load_land()
    north_sea = Mercator.fit((-2.0, 50.0, 8.0, 56.0), 30, 30, 930, 610)
    paths = land_paths(land, north_sea, 960, 640)
    points = np.array([[float(v) for v in pt.split(",")] for p in paths for pt in
                       p.replace("Z", "").replace("M", "L").split("L") if pt])
    assert len(paths) > 10 and points[:, 0].min() >= -8 and points[:, 0].max() <= 968
    assert points[:, 1].min() >= -8 and points[:, 1].max() <= 648
    assert np.all(points * 2 == np.rint(points * 2)), "not on the half-pixel grid"
    world = land_paths(land, Mercator.centred(0, 20, 1.9, 960, 640), 960, 640)
    world_points = sum(p.count("L") + 1 for p in world)
    assert 10_000 < world_points < len(land.lon) / 4, f"{world_points} points for a world map"


# -- errors and when the data is read -------------------------------------------------------------------------

def test_missing_or_broken_land_data_is_one_line(tmp_path):
    with pytest.raises(LandDataError, match=r"^the land data .*none\.npz is missing: reinstall aiswatch") as err:
        load_land(tmp_path / "none.npz")
    assert "\n" not in str(err.value) and "--no-land" in str(err.value)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(LandDataError, match=r"^the land data .*bad\.npz is unreadable \(") as err:
        load_land(bad)
    assert "\n" not in str(err.value)


def test_land_data_is_read_only_when_a_map_is_drawn():
    code = ("import sys, aiswatch.cli, aiswatch.kibana.render; from aiswatch.cli import main\n"
            "print(sorted(m for m in sys.modules if m == 'aiswatch.kibana.land'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
