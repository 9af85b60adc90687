"""Derive ``kibana/data/ne_10m_land.npz`` (the land under ``aiswatch map``) from Natural Earth.

The source is Natural Earth's 1:10m land (public domain, version 4.1.0) as the npm package
``world-atlas@2.0.2`` ships it: ``land-10m.json``, a TopoJSON topology quantized to a
100,000 x 100,000 grid (0.0036 degrees of longitude, ~0.0017 of latitude). This script fetches
that package with ``npm pack`` (or takes the tarball with ``--tarball``), checks its npm integrity
hash, turns the topology's arcs into closed rings, cuts the rings that cross the antimeridian
(the topology, made for d3's spherical drawing, joins Chukotka, Wrangel Island and Fiji across
it and closes Antarctica around the pole) into planar rings that run along longitude +-180 and, for
Antarctica, along latitude -90, and writes them, still on the integer grid, as a deterministic
``.npz`` (the same input gives the same bytes). Every ring is then a plain polygon in longitude and
latitude, drawable in Mercator (or any cylindrical projection) and usable for point-in-polygon:

- ``dx``, ``dy`` (int32): the grid coordinates of every ring's points, rings one after another,
  each value minus the one before it (a cumulative sum restores them);
- ``ring_end`` (int32): where each ring ends in those points (every ring closed: last == first);
- ``polygon_end`` (int32): where each polygon ends in the rings; a polygon's first ring is its
  exterior (clockwise in longitude/latitude, as d3 wants), the others are holes;
- ``scale``, ``translate`` (float64, 2 each): longitude = translate[0] + x * scale[0], and
  latitude likewise with index 1 (the topology's transform);
- ``source`` (str): where the data came from.

Usage:
    python tools/natural_earth_land.py                  # npm pack, verify, write kibana/data/ne_10m_land.npz
    python tools/natural_earth_land.py --tarball world-atlas-2.0.2.tgz
    python tools/natural_earth_land.py --check          # rebuild and compare with the committed file
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "world-atlas@2.0.2"
# `npm view world-atlas@2.0.2 dist.integrity`
INTEGRITY = "sha512-IXfV0qwlKXpckz1FhwXVwKRjiIhOnWttOskm5CtxMsjgE/MXAYRHWJqgXOpM8IkcPBoXnyTU5lFHcYa5ChG0LQ=="
MEMBER = "package/land-10m.json"
OUT = Path(__file__).resolve().parent.parent / "kibana" / "data" / "ne_10m_land.npz"
SOURCE = ("Natural Earth 4.1.0 land, 1:10m (public domain, naturalearthdata.com), "
          f"from {MEMBER.split('/')[-1]} of the npm package {PACKAGE} (ISC), {INTEGRITY}")


def fetch_tarball(directory: Path) -> Path:
    """``npm pack world-atlas@2.0.2`` into ``directory``; the tarball's path."""
    out = subprocess.run(["npm", "pack", PACKAGE, "--silent", "--pack-destination", str(directory)],
                         capture_output=True, text=True, check=True).stdout.split()
    return directory / out[-1]


def read_topology(tarball: Path) -> dict:
    data = tarball.read_bytes()
    algorithm, _, expected = INTEGRITY.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise SystemExit(f"{tarball}: integrity {algorithm}-{digest} is not {PACKAGE}'s {INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise SystemExit(f"{tarball}: no {MEMBER}")
        return json.load(member)


def rings_of(topology: dict) -> tuple[list[np.ndarray], list[int]]:
    """Every ring as an (n, 2) int64 array on the quantized grid, and the number of rings per polygon."""
    arcs = [np.cumsum(np.asarray(arc, dtype=np.int64), axis=0) for arc in topology["arcs"]]  # delta-encoded
    (land,) = topology["objects"]["land"]["geometries"]
    polygons = [land["arcs"]] if land["type"] == "Polygon" else land["arcs"]
    rings, sizes = [], []
    for polygon in polygons:
        for ring in polygon:
            # an arc index i < 0 means arc ~i reversed; consecutive arcs share their end points
            parts = [arcs[i] if i >= 0 else arcs[~i][::-1] for i in ring]
            rings.append(np.concatenate([parts[0]] + [p[1:] for p in parts[1:]]))
            if not (rings[-1][0] == rings[-1][-1]).all():
                raise SystemExit("a ring that does not close: not the topology this script knows")
        sizes.append(len(polygon))
    return rings, sizes


def split_at_antimeridian(ring: np.ndarray, x_span: int, y_pole: dict[int, int]) -> list[np.ndarray]:
    """The closed ring (grid coordinates, x_span = the grid's 360 degrees) as planar closed rings.

    A step of more than half the world in x crosses the antimeridian. Two crossings make two rings,
    one each side, closed along x = 0 or x_span; one crossing means the ring goes round a pole, and
    it is closed along that pole's latitude (``y_pole[-1]`` south, ``y_pole[1]`` north)."""
    steps = np.diff(ring[:, 0])
    cross = np.flatnonzero(np.abs(steps) > x_span // 2)
    if len(cross) == 0:
        return [ring]
    if len(cross) > 2:
        raise SystemExit(f"a ring crossing the antimeridian {len(cross)} times: not the topology this script knows")

    def side(x: int) -> int:  # the edge of the grid a point next to the antimeridian belongs to
        return 0 if x < x_span // 2 else x_span

    def crossing(i: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Where the step i -> i+1 meets the antimeridian: (on the side of i, on the side of i + 1)."""
        (x0, y0), (x1, y1) = ring[i], ring[i + 1]
        a, b = side(x0), side(x1)
        x1u = x1 - x_span if a == 0 else x1 + x_span  # x1 unwrapped next to x0
        t = 0.0 if x1u == x0 else (a - x0) / (x1u - x0)
        y = int(round(y0 + t * (y1 - y0)))
        return (a, y), (b, y)

    points = ring[:-1]  # open: the closing point repeats the first
    n = len(points)
    if len(cross) == 1:
        i = int(cross[0])
        (ax, ay), (bx, by) = crossing(i)
        chain = np.concatenate([points[i + 1:], points[:i + 1]])
        pole = y_pole[1 if chain[:, 1].mean() > np.mean(list(y_pole.values())) else -1]
        closing = np.array([[ax, ay], [ax, pole], [bx, pole], [bx, by]])
        rings = [np.concatenate([chain, closing])]
    else:
        i, j = int(cross[0]), int(cross[1])
        (a1, ya1), (b1, yb1) = crossing(i)
        (a2, ya2), (b2, yb2) = crossing(j)
        inner = np.concatenate([[[b1, yb1]], points[i + 1:j + 1], [[a2, ya2]]])  # after crossing i, before j
        outer = np.concatenate([[[b2, yb2]], points[j + 1:], points[:i + 1], [[a1, ya1]]])
        rings = [inner, outer]
        if n and (b1 != a2 or b2 != a1):
            raise SystemExit("a ring that crosses the antimeridian and does not come back: not handled")
    return [np.concatenate([r, r[:1]]) for r in rings]


def area2(ring: np.ndarray) -> int:
    """Twice the signed area of the closed ring (shoelace), exact on the integer grid."""
    x, y = ring[:, 0].astype(np.int64), ring[:, 1].astype(np.int64)
    return int(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def contains(ring: np.ndarray, point: np.ndarray) -> bool:
    """Whether the closed planar ring contains the point (even-odd ray casting)."""
    (x, y), a, b = point, ring[:-1].astype(float), ring[1:].astype(float)
    spans = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return bool(np.count_nonzero(spans & (x < at)) % 2)


def land_arrays(topology: dict) -> dict[str, np.ndarray]:
    rings, sizes = rings_of(topology)
    transform = topology["transform"]
    (sx, sy), (_, ty) = transform["scale"], transform["translate"]
    x_span = int(round(360 / sx))
    y_pole = {-1: int(round((-90 - ty) / sy)), 1: int(round((90 - ty) / sy))}
    planar, planar_sizes, at = [], [], 0
    for size in sizes:
        pieces = [split_at_antimeridian(r, x_span, y_pole) for r in rings[at:at + size]]
        at += size
        if len(pieces[0]) == 1 and all(len(p) == 1 for p in pieces):
            planar += [p[0] for p in pieces]
            planar_sizes.append(size)
        elif all(len(p) == 1 for p in pieces[1:]):
            # an exterior cut in pieces, each a polygon of its own with the holes that lie in it
            for exterior in pieces[0]:
                holes = [h[0] for h in pieces[1:] if contains(exterior, h[0][0])]
                planar += [exterior] + holes
                planar_sizes.append(1 + len(holes))
            if sum(planar_sizes[-len(pieces[0]):]) != len(pieces[0]) + size - 1:
                raise SystemExit("a hole in none of its cut exterior's pieces: not handled")
        else:
            raise SystemExit("a hole crossing the antimeridian: not handled")
    # cutting leaves slivers where a ring ran out to the antimeridian and straight back: no area, no land
    rings, sizes, at = [], [], 0
    for size in planar_sizes:
        polygon = [r for r in planar[at:at + size] if area2(r) != 0]
        at += size
        if polygon and area2(polygon[0]) == area2(planar[at - size]):
            rings += polygon
            sizes.append(len(polygon))
    points = np.concatenate(rings)
    deltas = np.diff(points, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)).astype(np.int32)
    return {"dx": deltas[:, 0], "dy": deltas[:, 1],
            "ring_end": np.cumsum([len(r) for r in rings]).astype(np.int32),
            "polygon_end": np.cumsum(sizes).astype(np.int32),
            "scale": np.asarray(transform["scale"], dtype=np.float64),
            "translate": np.asarray(transform["translate"], dtype=np.float64),
            "source": np.asarray(SOURCE)}


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # zip members dated 1980-01-01: the same arrays give the same bytes
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path, help=f"{PACKAGE}'s tarball (default: npm pack it)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or fetch_tarball(Path(tmp))
        arrays = land_arrays(read_topology(tarball))
    data = encode(arrays)
    rings, polygons = len(arrays["ring_end"]), len(arrays["polygon_end"])
    summary = f"{len(arrays['dx'])} points, {rings} rings, {polygons} polygons, {len(data)} bytes"
    if args.check:
        same = args.out.is_file() and args.out.read_bytes() == data
        print(f"{args.out}: {'matches' if same else 'DIFFERS from'} the rebuild ({summary})")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
