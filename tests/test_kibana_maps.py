"""The three Kibana Vega maps, rendered by the real Vega library on data from their own queries.

Traffic comes from the simulator and goes through the real pipeline (NMEA -> parse -> assemble ->
decode -> document -> ElasticsearchSink) into the test engine; events are indexed as documents
shaped by ``es_templates/events.json`` at simulated ship positions. Each test renders a spec to SVG
with vl-convert and checks the picture against what the index holds, counted independently:
one glyph per ship with the right rotation, colour, size ordering and a Mercator position; one trail
per vessel with one vertex per position; one symbol per event with its type's shape. A spec with a
wrong field name fails these checks (tested by corrupting the specs on purpose). The offline
render's land is checked in the PNG: land-coloured where Natural Earth has land (Rotterdam, the
harbour mouth when zoomed to it), sea-coloured offshore, at positions found from the ships' glyphs.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import struct
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections import defaultdict

import numpy as np
import pytest
from click.testing import CliRunner

from aiswatch import es_templates
from aiswatch.es_templates import IndexNames
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.esclient import make_client
from aiswatch.ingest.lines import Line
from aiswatch.kibana import SPEC_NAMES, load_spec, spec_text
from aiswatch.kibana.placeholders import KibanaContext, RenderError, date_histogram_interval, round_interval
from aiswatch.kibana.render import LAND, SEA, add_map_projection, prepare, to_png, to_svg, undrawn_marks

SVG = "{http://www.w3.org/2000/svg}"
START = dt.datetime(2026, 3, 14, 10, 0, tzinfo=dt.timezone.utc)
DURATION_S = 15 * 60
VESSELS = 24
SPEC_INDEX = {"vessel_map": "ships-seen", "tracks_map": "ais", "events_map": "events"}


# -- the data: one simulator run through the real pipeline, shared by the module's tests ---------------

@pytest.fixture(scope="module")
def world(es_url, tmp_path_factory):
    from helpers import delete_namespace
    from aiswatch.ingest import simulation as simulate
    from aiswatch.ingest.pipeline import Pipeline
    from aiswatch.es_templates.install import install_templates
    from aiswatch.ingest.sink import ElasticsearchSink

    names = IndexNames(f"k{uuid.uuid4().hex[:8]}-")
    client = make_client(es_url)
    tmp = tmp_path_factory.mktemp("kibana-world")
    try:
        install_templates(client, names, retention_days=None, echo=lambda *_: None)
        start = START.timestamp()
        fleet = simulate.random_fleet(VESSELS, seed=7, start=start)
        sim = simulate.Simulator(fleet, start=start, seed=7, station="sim")
        counters = Counters()
        sink = ElasticsearchSink(client, names, counters, spool_dir=tmp / "spool", dead_letter_path=tmp / "dead.ndjson",
                                 flush_seconds=0.2)
        pipeline = Pipeline(sink, counters)
        positions: dict[str, list[float]] = defaultdict(list)  # MMSI -> times of its position reports
        for msg in sim.events(DURATION_S):
            for text in msg.lines:
                pipeline.feed(Line(text, msg.time, "simulate:sim"))
            if msg.msg_type in (1, 2, 3, 18, 19):
                positions[str(msg.mmsi)].append(msg.time)
        pipeline.finish()
        sink.close()
        assert counters.get("dead_letters") == 0
        client.indices.refresh(index=names.namespace + "*")
        events = index_events(client, names)
        yield {"client": client, "names": names, "positions": dict(positions), "events": events,
               "ctx": KibanaContext(START, START + dt.timedelta(seconds=DURATION_S))}
    finally:
        delete_namespace(client, names.namespace)
        client.close()


EVENT_TYPES = ["gap", "loitering", "encounter", "spoofing", "identity"]
SEVERITIES = ["info", "low", "medium", "high"]


def index_events(client, names: IndexNames) -> list[dict]:
    """Events at ships' last positions: inside the time range, plus ones outside it or without a location."""
    hits = client.search(index=names.ships, size=100, sort=[{"mmsi": "asc"}])["hits"]["hits"]
    events = []
    for i, hit in enumerate(hits[:12]):
        src = hit["_source"]
        when = START + dt.timedelta(minutes=i)
        doc = {"@timestamp": when.isoformat().replace("+00:00", "Z"), "type": EVENT_TYPES[i % 5],
               "severity": SEVERITIES[i % 4], "mmsi": src["mmsi"], "start": when.isoformat(), "summary": f"event {i}",
               "location": src["location"], "lat": src["location"]["lat"], "lon": src["location"]["lon"]}
        if i == 10:
            doc["@timestamp"] = (START - dt.timedelta(days=2)).isoformat()  # outside the time range
        if i == 11:
            del doc["location"], doc["lat"], doc["lon"]  # an identity event has no place: not on the map
        client.index(index=names.events, id=f"e{i}", document=doc)
        events.append(doc)
    client.indices.refresh(index=names.events)
    return events


# -- reading the SVG ------------------------------------------------------------------------------------

def mark_items(svg: str, mark_name: str, tag: str = "path") -> list[ET.Element]:
    """Every item of the named mark (all facets), in document order."""
    root = ET.fromstring(svg)
    items = []
    for g in root.iter(SVG + "g"):
        classes = g.get("class", "").split()
        if "role-mark" in classes and mark_name in classes:
            items += [child for child in g if child.tag == SVG + tag]
    return items


def transform_of(el: ET.Element) -> tuple[float, float, float]:
    text = el.get("transform", "")
    m = re.search(r"translate\(([-\d.e]+),([-\d.e]+)\)", text)
    assert m, f"mark without a position: {text!r}"
    r = re.search(r"rotate\(([-\d.e]+)\)", text)
    return float(m.group(1)), float(m.group(2)), float(r.group(1)) if r else 0.0


def path_points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML]([-\d.e]+),([-\d.e]+)", d)]


def extent(d: str) -> float:
    nums = [abs(float(v)) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", d)]
    return max(nums) if nums else 0.0


def merc_y(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def assert_mercator(pixels: list[tuple[float, float]], lonlats: list[tuple[float, float]], width: int, height: int):
    """x is linear in longitude and y linear in Mercator latitude (one projection for all marks), all in view.

    Returns the projection found, (lon, lat) -> (x, y)."""
    assert len(pixels) == len(lonlats) >= 2
    for (px, py) in pixels:
        assert 0 <= px <= width and 0 <= py <= height, f"mark outside the view at {px},{py}"
    fit = []
    for axis, f in ((0, lambda ll: ll[0]), (1, lambda ll: merc_y(ll[1]))):
        vals = [f(ll) for ll in lonlats]
        pix = [p[axis] for p in pixels]
        lo, hi = vals.index(min(vals)), vals.index(max(vals))
        assert vals[hi] > vals[lo], "all marks on one line: positions collapsed"
        scale = (pix[hi] - pix[lo]) / (vals[hi] - vals[lo])
        assert abs(scale) > 1e-6
        for v, p in zip(vals, pix):
            assert abs(pix[lo] + (v - vals[lo]) * scale - p) < 0.5, "mark not at its projected position"
        fit.append((f, pix[lo] - vals[lo] * scale, scale))
    return lambda lon, lat: tuple(b + f((lon, lat)) * a for f, b, a in fit)


def png_pixels(data: bytes) -> np.ndarray:
    """An 8-bit, non-interlaced RGB(A) PNG (what vl-convert writes) as an (height, width, channels) array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (2, 6), header
    ch = 4 if colour == 6 else 3
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * ch)
    out = np.zeros((height, width * ch), np.int64)
    prev = np.zeros(width * ch, np.int64)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: each byte plus the one a pixel to its left
            cur = line.reshape(width, ch).cumsum(axis=0).ravel() % 256
        elif kind == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average, Paeth: pixel by pixel
            cur = np.zeros_like(line)
            for i in range(len(line)):
                a = cur[i - ch] if i >= ch else 0
                b, c = prev[i], (prev[i - ch] if i >= ch else 0)
                if kind == 3:
                    cur[i] = (line[i] + (a + b) // 2) % 256
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    cur[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) % 256
        out[y], prev = cur, cur
    return out.reshape(height, width, ch).astype(np.uint8)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def colour_at(pixels: np.ndarray, x: float, y: float) -> tuple[int, int, int]:
    assert 0 <= x < pixels.shape[1] and 0 <= y < pixels.shape[0], f"({x:.0f}, {y:.0f}) is outside the picture"
    return tuple(int(v) for v in pixels[int(y), int(x), :3])


def scale_map(spec: dict, name: str) -> dict:
    scale = next(s for s in spec["scales"] if s["name"] == name)
    return dict(zip(scale["domain"], scale["range"]))


def render(spec: dict, world, width=960, height=640):
    vega, counts = prepare(spec, world["client"], world["ctx"], world["names"].namespace, width, height)
    return to_svg(vega), vega, counts


# -- the vessel map ---------------------------------------------------------------------------------------

def check_vessel_map(spec: dict, world) -> int:
    svg, vega, counts = render(spec, world)
    client, names, ctx = world["client"], world["names"], world["ctx"]
    # independently: every ship seen in the range with a position, straight from the index
    expected = client.count(index=names.ships, query={"bool": {"filter": [
        {"range": {"@timestamp": {"gte": ctx.start.isoformat(), "lte": ctx.end.isoformat()}}},
        {"exists": {"field": "location"}}]}})["count"]
    assert expected == len(world["positions"]), "ships-seen disagrees with the simulator"
    rows = next(d for d in vega["data"] if d["name"] == "ships")["values"]
    marks = mark_items(svg, "ship")
    assert len(rows) == expected
    assert len(marks) == expected, f"{len(marks)} glyphs for {expected} ships"
    colours = scale_map(load_spec("vessel_map"), "category")
    pixels, lonlats, sized = [], [], []
    for row, mark in zip(rows, marks):
        src = row["_source"]
        x, y, angle = transform_of(mark)
        want = src.get("heading", src.get("cog"))
        if want is None:
            assert angle == 0 and "A" in mark.get("d", "")  # a circle for a ship with neither heading nor course
        else:
            assert abs(angle - want) < 0.01, f"MMSI {src['mmsi']}: rotated {angle}, heading/course {want}"
        assert mark.get("fill") == colours[src.get("ship_category", "unknown")], f"MMSI {src['mmsi']}: wrong colour"
        pixels.append((x, y))
        lonlats.append((src["location"]["lon"], src["location"]["lat"]))
        if src.get("length"):
            sized.append((src["length"], extent(mark.get("d"))))
    assert_mercator(pixels, lonlats, 960, 640)
    assert len({s for s in sized}) >= 3, "too few ships with a length to check sizes"
    for la, ea in sized:
        for lb, eb in sized:
            if la > lb * 1.3:
                assert ea > eb, f"a {la} m ship drawn no bigger than a {lb} m one"
    return expected


def test_vessel_map_one_glyph_per_ship(world):
    n = check_vessel_map(load_spec("vessel_map"), world)
    assert n >= VESSELS - 4  # a few may be silent (transponder off) in the window


@pytest.mark.parametrize("good, bad", [
    ('"_source.location.lon"', '"_source.location.lng"'),
    ("datum._source.heading", "datum._source.headng"),
    ("datum._source.ship_category", "datum._source.shipcat"),
    ('"field": "_source.length"', '"field": "_source.lenght"'),
])
def test_vessel_map_with_a_wrong_field_name_fails(world, good, bad):
    text = spec_text("vessel_map")
    assert good in text
    broken = json.loads(text.replace(good, bad))
    with pytest.raises((AssertionError, RenderError, ValueError)):
        check_vessel_map(broken, world)


# -- the land under the offline render --------------------------------------------------------------------

# (lat, lon): inland in Natural Earth's 1:10m land, and well offshore (none on a graticule line)
ROTTERDAM_CITY, LONDON, MAASSLUIS = (51.922, 4.478), (51.51, -0.13), (51.923, 4.233)
OPEN_NORTH_SEA, DOGGER_BANK, OFF_THE_MAAS = (53.37, 3.23), (54.73, 2.27), (52.023, 3.947)


def glyph_projection(svg: str, rows: list[dict]):
    """(lon, lat) -> pixel, as Vega placed the ships' glyphs (independent of how the land was drawn)."""
    pixels = [transform_of(m)[:2] for m in mark_items(svg, "ship")]
    lonlats = [(r["_source"]["location"]["lon"], r["_source"]["location"]["lat"]) for r in rows]
    return assert_mercator(pixels, lonlats, 960, 640)


def assert_land_aligned(svg: str, project, width: int = 960, height: int = 640) -> int:
    """Every Natural Earth vertex inside the view is drawn within a pixel of where the ships' projection
    puts it (the paths snap to a half-pixel grid). Returns how many vertices were checked."""
    from aiswatch.kibana.land import load_land

    drawn = np.array([pt for el in mark_items(svg, "basemap-land") for pt in path_points(el.get("d"))])
    land = load_land()
    # the projection is x = a + b lon, y = c + d mercator(lat): read a..d off it, then project every vertex at once
    (a, c), (a1, c1) = project(0.0, 0.0), project(1.0, 45.0)
    px = a + (a1 - a) * land.lon
    py = c + (c1 - c) / merc_y(45.0) * np.log(np.tan(np.pi / 4 + np.radians(np.clip(land.lat, -85, 85)) / 2))
    inside = (px > 1) & (px < width - 1) & (py > 1) & (py < height - 1)
    expected = np.stack([px[inside], py[inside]], axis=1)
    assert len(expected) >= 20 and len(drawn), "too few coastline vertices in view to check"
    for x, y in expected[:: max(1, len(expected) // 400)]:
        off = np.min(np.hypot(drawn[:, 0] - x, drawn[:, 1] - y))
        assert off < 0.75, f"coastline vertex drawn {off:.1f} px from where the ships' projection puts it"
    return len(expected)


def test_vessel_map_draws_land_under_the_ships(world):
    """The offline render: Natural Earth land where there is land, sea elsewhere, in the PNG, aligned with
    the ships; Vega fetches nothing (every URL is refused), so this is the whole picture offline."""
    vega, counts = prepare(load_spec("vessel_map"), world["client"], world["ctx"], world["names"].namespace, 960, 640)
    svg = to_svg(vega)
    land_paths = mark_items(svg, "basemap-land")
    assert land_paths, "no land drawn"
    order = [m for m in re.findall(r'role-mark (basemap-sea|basemap-land|basemap-graticule|ship)"', svg)]
    assert order == ["basemap-sea", "basemap-land", "basemap-graticule", "ship"], "land is not under the ships"
    project = glyph_projection(svg, next(d for d in vega["data"] if d["name"] == "ships")["values"])
    assert_land_aligned(svg, project)
    pixels = png_pixels(to_png(vega))
    assert pixels.shape[:2] == (640, 960)
    for name, (lat, lon) in {"Rotterdam": ROTTERDAM_CITY, "London": LONDON}.items():
        assert colour_at(pixels, *project(lon, lat)) == rgb(LAND), f"{name} is not drawn as land"
    for name, (lat, lon) in {"the open North Sea": OPEN_NORTH_SEA, "the Dogger Bank": DOGGER_BANK}.items():
        assert colour_at(pixels, *project(lon, lat)) == rgb(SEA), f"{name} is not drawn as sea"
    # --no-land: the same view, all sea
    bare, _ = prepare(load_spec("vessel_map"), world["client"], world["ctx"], world["names"].namespace, 960, 640,
                      land=False)
    assert bare["projections"] == vega["projections"]
    assert colour_at(png_pixels(to_png(bare)), *project(*ROTTERDAM_CITY[::-1])) == rgb(SEA)


def ship_hit(mmsi: int, lat: float, lon: float, heading: float, length: int = 120) -> dict:
    """A ships-seen hit as Elasticsearch returns it for the vessel map's query."""
    return {"_index": "ships-seen", "_id": str(mmsi), "_source": {
        "mmsi": str(mmsi), "name": f"SHIP {mmsi}", "location": {"lat": lat, "lon": lon}, "heading": heading,
        "length": length, "ship_category": "cargo", "@timestamp": "2026-03-14T10:00:00Z"}}


def with_rows(rows: list[dict]) -> dict:
    """The vessel map with its query's answer in place (what resolve_data makes of a response)."""
    spec = load_spec("vessel_map")
    ships = spec["data"][0]
    del ships["url"], ships["format"]
    ships["values"] = rows
    return spec


def test_map_zoomed_to_a_harbour_shows_its_coast():
    """Ships at Rotterdam's harbour mouth: the map zooms to ~30 km and the 1:10m coast is drawn there
    (the Maasvlakte and the shore north of it in tens of vertices, not the few of a 1:50m map)."""
    rows = [ship_hit(244123010, 51.985, 3.930, 80), ship_hit(244123011, 51.990, 3.950, 95),
            ship_hit(244660001, 51.950, 4.100, 270), ship_hit(244660002, 51.890, 4.440, 0)]
    vega = add_map_projection(with_rows(rows), 960, 640)
    svg = to_svg(vega)
    project = glyph_projection(svg, rows)
    (west, _), (east, _) = project(3.93, 51.9), project(4.44, 51.9)
    assert east - west > 600, "not zoomed in to the harbour"
    coast = [pt for el in mark_items(svg, "basemap-land") for pt in path_points(el.get("d"))
             if 0 < pt[0] < 960 and 0 < pt[1] < 640]
    assert len(coast) >= 20, f"{len(coast)} coastline vertices in view: not 1:10m"
    assert assert_land_aligned(svg, project) >= 20
    pixels = png_pixels(to_png(vega))
    for name, (lat, lon) in {"Rotterdam": ROTTERDAM_CITY, "Maassluis": MAASSLUIS}.items():
        assert colour_at(pixels, *project(lon, lat)) == rgb(LAND), f"{name} is not drawn as land"
    assert colour_at(pixels, *project(OFF_THE_MAAS[1], OFF_THE_MAAS[0])) == rgb(SEA), "the anchorage is not sea"


def test_ships_are_fitted_beside_the_legend():
    """A ship in the data's north-east corner would sit under the top-right legend if the data filled the
    view (wide data: the fit is set by the width, the top reaches the legend's height)."""
    rows = [ship_hit(1, 52.2, 0.0, 0), ship_hit(2, 53.0, 4.0, 0), ship_hit(3, 53.7, 8.0, 45)]
    svg = to_svg(add_map_projection(with_rows(rows), 960, 640))
    legend = re.search(r'role-legend".*?<g transform="translate\(([-\d.]+),([-\d.]+)\)"><path class="background"'
                       r'[^>]*d="M0,0h([\d.]+)v([\d.]+)h', svg)
    assert legend, "no legend found"
    lx, ly, lw, lh = map(float, legend.groups())
    for mark in mark_items(svg, "ship"):
        x, y, _ = transform_of(mark)
        assert not (lx - 10 < x < lx + lw + 10 and ly - 10 < y < ly + lh + 10), f"a ship under the legend at {x},{y}"
    xs = sorted(transform_of(m)[0] for m in mark_items(svg, "ship"))
    assert xs[-1] > lx - 100, "the data no longer reach the legend's side: the test checks nothing"

# d3's category20, the scheme the tracks map's vessel scale uses
CATEGORY20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
              "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
              "#17becf", "#9edae5"]


def _hit_location(bucket: dict) -> tuple[float, float]:
    loc = bucket["last"]["hits"]["hits"][0]["_source"]["location"]
    return loc["lon"], loc["lat"]


def check_tracks_map(spec: dict, world) -> int:
    vega, counts = prepare(spec, world["client"], world["ctx"], world["names"].namespace, 960, 640)
    rows = next(d for d in vega["data"] if d["name"] == "vessels")["values"]
    # Elasticsearch returns a vessel's buckets in time order; hand them to Vega with the middle ones reversed
    # (first and latest in place: the head reads the latest), so a trail drawn in time order shows that the
    # spec sorts by time itself
    for row in rows:
        buckets = row["track"]["buckets"]
        if len(buckets) > 3:
            row["track"]["buckets"] = buckets[:1] + buckets[-2:0:-1] + buckets[-1:]
    svg = to_svg(vega)
    positions = world["positions"]
    # independently: the simulator's own record of who sent positions in the window
    assert counts["vessels"] == len(positions)
    trails = mark_items(svg, "trail")
    heads = mark_items(svg, "head")
    assert len(trails) == len(positions), f"{len(trails)} trails for {len(positions)} vessels"
    assert len(heads) == len(positions)
    # ~40 buckets over 15 minutes: Kibana's %autointerval% rounds 22.5 s up to 30 s
    assert world["ctx"].query_url(spec["data"][0]["url"])["aggs"]["vessels"]["aggs"]["track"][
        "date_histogram"]["fixed_interval"] == "30s"
    vertices = sorted(len(path_points(t.get("d"))) for t in trails)
    buckets = sorted(len({int(t // 30) for t in times}) for times in positions.values())
    assert vertices == buckets, "a trail without one vertex per time bucket with positions"
    latest = [_hit_location(r["track"]["buckets"][-1]) for r in rows]
    project = assert_mercator([transform_of(h)[:2] for h in heads], latest, 960, 640)
    # each vessel's colour: the ordinal scale's domain is the keys in row order, over category20
    colour = {r["key"]: CATEGORY20[i % len(CATEGORY20)] for i, r in enumerate(rows)}
    for row, head in zip(rows, heads):
        assert head.get("fill") == colour[row["key"]], f"MMSI {row['key']}: head not in its vessel's colour"
    # every trail: one vessel's reported positions, in time order, in that vessel's colour
    expected = {r["key"]: [project(*_hit_location(b)) for b in sorted(r["track"]["buckets"], key=lambda b: b["key"])]
                for r in rows}
    matched = set()
    for trail in trails:
        drawn = path_points(trail.get("d"))

        def off(key):
            want = expected[key]
            if len(want) != len(drawn):
                return math.inf
            return max(abs(a - c) + abs(b - d) for (a, b), (c, d) in zip(sorted(drawn), sorted(want)))
        key = min(expected, key=off)
        assert off(key) < 1, "trail vertices are not one vessel's positions"
        assert max(abs(a - c) + abs(b - d) for (a, b), (c, d) in zip(drawn, expected[key])) < 1, \
            f"MMSI {key}: trail not drawn in time order"
        assert trail.get("stroke") == colour[key], f"MMSI {key}: trail not in its vessel's colour"
        matched.add(key)
    assert len(matched) == len(trails), "two trails drawn for one vessel"
    return len(trails)


def test_tracks_map_one_trail_per_vessel(world):
    assert check_tracks_map(load_spec("tracks_map"), world) >= VESSELS - 4


@pytest.mark.parametrize("good, bad", [
    ('"hit._source.location.lat"', '"hit._source.location.latitude"'),
    ("peek(datum.track.buckets)", "datum.track.buckets[0]"),
    ('"field": "mmsi"', '"field": "mmsi_id"'),
    ('"sort": {"field": "datum.t"}', '"sort": {"field": "datum.tt"}'),
    ('"fill": {"scale": "vessel", "field": "key"}', '"fill": {"scale": "vessel", "field": "kee"}'),
    ('"stroke": {"scale": "vessel", "field": "key"}', '"stroke": {"value": "#1f77b4"}'),
])
def test_tracks_map_with_a_wrong_field_name_fails(world, good, bad):
    text = spec_text("tracks_map")
    assert good in text
    with pytest.raises((AssertionError, RenderError, ValueError, KeyError)):
        check_tracks_map(json.loads(text.replace(good, bad)), world)


def test_tracks_map_query_is_bounded():
    vessels = load_spec("tracks_map")["data"][0]["url"]["body"]["aggs"]["vessels"]
    track = vessels["aggs"]["track"]
    assert vessels["terms"]["size"] <= 500
    assert track["date_histogram"]["interval"]["%autointerval%"] <= 100  # buckets per vessel (Kibana may round to ~2x)
    assert track["aggs"]["last"]["top_hits"]["size"] == 1


# -- the events map ---------------------------------------------------------------------------------------

def check_events_map(spec: dict, world) -> int:
    svg, vega, counts = render(spec, world)
    client, names, ctx = world["client"], world["names"], world["ctx"]
    expected = client.count(index=names.events, query={"bool": {"filter": [
        {"range": {"@timestamp": {"gte": ctx.start.isoformat(), "lte": ctx.end.isoformat()}}},
        {"exists": {"field": "location"}}]}})["count"]
    assert expected == len(world["events"]) - 2
    rows = next(d for d in vega["data"] if d["name"] == "events")["values"]
    marks = mark_items(svg, "event")
    assert len(rows) == len(marks) == expected, f"{len(marks)} symbols for {expected} events"
    shapes: dict[str, set] = defaultdict(set)
    colours = scale_map(load_spec("events_map"), "severity")
    for row, mark in zip(rows, marks):
        shapes[row["_source"]["type"]].add(mark.get("d"))
        assert mark.get("fill") == colours[row["_source"]["severity"]]
    assert all(len(ds) == 1 for ds in shapes.values()), "one event type drawn with different symbols"
    assert len({next(iter(ds)) for ds in shapes.values()}) == len(shapes), "two event types share a symbol"
    assert_mercator([transform_of(m)[:2] for m in marks],
                    [(r["_source"]["location"]["lon"], r["_source"]["location"]["lat"]) for r in rows], 960, 640)
    return expected


def test_events_map_one_symbol_per_event(world):
    assert check_events_map(load_spec("events_map"), world) == 10


@pytest.mark.parametrize("good, bad", [
    ('"field": "_source.type"', '"field": "_source.event_type"'),
    ('"field": "_source.severity"', '"field": "_source.level"'),
])
def test_events_map_with_a_wrong_field_name_fails(world, good, bad):
    text = spec_text("events_map")
    assert good in text
    with pytest.raises((AssertionError, RenderError, ValueError)):
        check_events_map(json.loads(text.replace(good, bad)), world)


# -- static checks of the specs ------------------------------------------------------------------------------

def mapped_fields(template_key: str) -> set[str]:
    out = set()

    def walk(props, prefix=""):
        for name, body in props.items():
            out.add(prefix + name)
            if "properties" in body:
                walk(body["properties"], prefix + name + ".")
            for sub in body.get("fields", {}):
                out.add(prefix + name + "." + sub)
    walk(es_templates.load(template_key)["template"]["mappings"]["properties"])
    return out


FIELD = r"([A-Za-z@_][\w@]*(?:\.[A-Za-z_]\w*)*)"
# how a spec reaches a document's fields: a hit's _source, or (tracks) a top hit's _source bound to datum.head
SOURCE_PATHS = [r"_source(?:\.|\[')" + FIELD, r"(?:datum\.|\")head(?:\.|\[')" + FIELD]


def fields_read(text: str) -> set[str]:
    """Every document field the spec's expressions, fields and tooltips read (``_source.x``, ``datum.head.x``)."""
    return {m for pattern in SOURCE_PATHS for m in re.findall(pattern, text) if m}


def _covers(names, field: str) -> bool:
    return any(field == n or field.startswith(n + ".") or n.startswith(field + ".") for n in names)


# the other Elasticsearch data of a spec, by data name: the template its index is made by
OTHER_DATA_INDEX = {"anchorages": "anchorages"}


def spec_field_problems(name: str, text: str, data_index: int = 0) -> list[str]:
    """Fields a spec reads that its index does not map, or that its query does not fetch (``_source`` lists).

    With several Elasticsearch data in a spec, each is checked against its own index with the
    fields of the marks drawn from it (``data_index``: which one; 0 reads the rest of the spec)."""
    spec = json.loads(text)
    data = spec["data"][data_index]
    fields = mapped_fields(SPEC_INDEX[name] if data_index == 0 else OTHER_DATA_INDEX[data["name"]])
    body = data["url"]["body"]
    others = [d["name"] for i, d in enumerate(spec["data"]) if i != data_index and "url" in d]
    marks = [m for m in spec.get("marks", []) if ((m.get("from") or {}).get("data") not in others)]
    read = fields_read(json.dumps(data) + json.dumps(marks, indent=1)) if others else fields_read(text)
    used = set(read)
    used |= set(re.findall(r'"field": "([^"]+)"', json.dumps(body)))
    fetched = []
    for hits in re.findall(r'"_source": \[([^\]]*)\]', json.dumps(body)):
        fetched += json.loads(f"[{hits}]")
    used |= set(fetched)
    assert read and fetched, "no fields found: the check is not looking"
    problems = [f"{u} is not mapped" for u in sorted(used) if not _covers(fields, u)
                and u.rsplit(".", 1)[0] != "location"]  # location.lat / location.lon: the geo_point's parts
    # a field outside the query's _source list is undefined in Vega: a blank tooltip row, a missing glyph
    problems += [f"{u} is read but not fetched (_source {fetched})" for u in sorted(read) if not _covers(fetched, u)]
    return problems


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_spec_fields_exist_in_the_index_template(name):
    """Every document field a spec reads is mapped in its index's template and fetched by its query."""
    assert spec_field_problems(name, spec_text(name)) == []
    for i, data in enumerate(load_spec(name)["data"][1:], start=1):
        if "url" in data:
            assert spec_field_problems(name, spec_text(name), i) == [], data["name"]


def test_static_field_check_reads_the_anchorage_layer_against_its_own_index():
    text = spec_text("events_map")
    good = "datum._source.vessel_count"
    assert good in text
    assert spec_field_problems("events_map", text.replace(good, "datum._source.vessels_count"), 1) == [
        "vessels_count is not mapped", "vessels_count is read but not fetched "
        "(_source ['location', 'vessel_count', 'first_seen', 'last_seen'])"]


def test_events_map_draws_one_anchor_per_learnt_anchorage(world):
    """Anchorage cells with ``anchorage: true`` are drawn under the events, one glyph each, at their
    Mercator position; cells that are not anchorages are not drawn."""
    client, names = world["client"], world["names"]
    cells = [(53.9, 8.1, True), (54.2, 7.6, True), (54.0, 7.9, False)]
    try:
        for i, (lat, lon, flag) in enumerate(cells):
            client.index(index=names.anchorages, id=f"a{i}", document={
                "@timestamp": "2026-03-14T09:00:00Z", "cell": f"a{i}", "location": {"lat": lat, "lon": lon},
                "lat": lat, "lon": lon, "anchorage": flag, "vessel_count": 3 + i})
        client.indices.refresh(index=names.anchorages)
        svg, vega, counts = render(load_spec("events_map"), world)
        assert counts["anchorages"] == 2
        anchors = mark_items(svg, "anchorage")
        assert len(anchors) == 2 and len(mark_items(svg, "event")) == counts["events"]
        rows = next(d for d in vega["data"] if d["name"] == "anchorages")["values"]
        events = next(d for d in vega["data"] if d["name"] == "events")["values"]
        lonlats = [(r["_source"]["location"]["lon"], r["_source"]["location"]["lat"]) for r in rows + events]
        assert_mercator([transform_of(m)[:2] for m in anchors + mark_items(svg, "event")], lonlats, 960, 640)
    finally:
        client.indices.delete(index=names.anchorages, ignore_unavailable=True)


@pytest.mark.parametrize("name, good, bad", [
    ("tracks_map", "datum.head.sog", "datum.head.speed"),                    # head tooltip
    ("tracks_map", "datum.hit._source.sog", "datum.hit._source.speed"),      # trail tooltip
    ("vessel_map", "datum._source.destination", "datum._source.dest"),
    ("events_map", "datum._source.detector", "datum._source.detectr"),
])
def test_static_field_check_catches_a_wrong_tooltip_field(name, good, bad):
    text = spec_text(name)
    assert good in text
    problems = spec_field_problems(name, text.replace(good, bad))
    assert any(p.startswith(bad.rsplit(".", 1)[1]) for p in problems), problems


def test_static_field_check_catches_a_field_the_query_does_not_fetch():
    text = spec_text("tracks_map")
    good = '"_source": ["location", "@timestamp", "sog", "cog"]'
    assert good in text
    problems = spec_field_problems("tracks_map", text.replace(good, '"_source": ["location", "@timestamp", "cog"]'))
    assert problems == ["sog is read but not fetched (_source ['location', '@timestamp', 'cog'])"]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_spec_is_kibana_map_mode_with_context_placeholders(name):
    spec = load_spec(name)
    assert spec["config"]["kibana"]["type"] == "map"
    assert "projections" not in spec, "map mode: Kibana supplies the projection"
    url = spec["data"][0]["url"]
    assert "%context%" not in url, "%context% cannot be combined with a custom query"
    body = json.dumps(url["body"])
    for placeholder in ('"%dashboard_context-must_clause%"', '"%dashboard_context-filter_clause%"',
                        '"%dashboard_context-must_not_clause%"', '{"%timefilter%": true}'):
        assert placeholder in body
    assert all(t.get("projection") == "projection" for d in spec["data"] for t in d.get("transform", [])
               if t["type"] == "geopoint")
    # Kibana's map mode puts its zoom buttons in the top-left corner (vega_map_view/view.ts): legends go elsewhere
    assert spec["config"]["kibana"]["zoomControl"] is True
    assert all(legend.get("orient") == "top-right" for legend in spec.get("legends", []))


# -- Kibana's placeholders ------------------------------------------------------------------------------------

def test_placeholders_are_replaced_as_kibana_does():
    ctx = KibanaContext(START, START + dt.timedelta(hours=1), filters={"filter": [{"term": {"ship_category": "tanker"}}]})
    body = ctx.query_url({"index": "x", "body": {"query": {"bool": {
        "must": ["%dashboard_context-must_clause%", {"range": {"@timestamp": {"%timefilter%": True}}}],
        "filter": ["%dashboard_context-filter_clause%", {"exists": {"field": "location"}}],
        "must_not": ["%dashboard_context-must_not_clause%"]}},
        "aggs": {"t": {"date_histogram": {"field": "@timestamp", "interval": {"%autointerval%": True},
                                          "extended_bounds": {"min": {"%timefilter%": "min"},
                                                              "max": {"%timefilter%": "max", "shift": -10, "unit": "m"}}}}}}})
    b = body["query"]["bool"]
    assert b["must"][0] == {"match_all": {}}
    assert b["must"][1]["range"]["@timestamp"] == {"gte": "2026-03-14T10:00:00.000Z", "lte": "2026-03-14T11:00:00.000Z",
                                                   "format": "strict_date_optional_time"}
    assert b["filter"] == [{"term": {"ship_category": "tanker"}}, {"exists": {"field": "location"}}]
    assert b["must_not"] == []
    hist = body["aggs"]["t"]["date_histogram"]
    # 60 min / 50 buckets = 72 s: Kibana's _roundInterval gives 1m (<= 3 min), and a single minute is a calendar unit
    assert hist["calendar_interval"] == "1m" and "interval" not in hist and "fixed_interval" not in hist
    assert hist["extended_bounds"]["min"] == int(START.timestamp() * 1000)
    assert hist["extended_bounds"]["max"] == int(START.timestamp() * 1000) + 3_600_000 - 600_000
    shifted = ctx.apply({"min": {"%timefilter%": "min", "shift": 2, "unit": "hour"}})
    assert shifted["min"] == int(START.timestamp() * 1000) + 7_200_000
    # no unit: Kibana shifts by days
    assert ctx.apply({"min": {"%timefilter%": "min", "shift": -1}})["min"] == int(START.timestamp() * 1000) - 86_400_000
    # shift 0 is no shift, whatever the unit says (Kibana tests `if (opts.shift)`)
    assert ctx.apply({"min": {"%timefilter%": "min", "shift": 0, "unit": "nonsense"}})["min"] == int(START.timestamp() * 1000)


@pytest.mark.parametrize("raw_ms, interval", [
    (400, "100ms"), (500, "100ms"), (501, "1s"), (5_000, "1s"), (7_500, "5s"), (15_000, "10s"), (22_500, "30s"),
    (45_000, "30s"), (45_001, "1m"), (72_000, "1m"), (180_000, "1m"), (432_000, "5m"), (450_001, "10m"),
    (1_200_000, "10m"), (1_728_000, "30m"), (7_200_000, "1h"), (12_096_000, "3h"), (86_400_000, "12h"),
    (604_800_000, "24h"), (1_814_400_000, "1w"), (1_814_400_001, "30d"), (3_628_800_000, "1y"),
])
def test_round_interval_is_kibanas_table(raw_ms, interval):
    assert round_interval(raw_ms) == interval


@pytest.mark.parametrize("interval, expected", [
    ("100ms", {"fixed_interval": "100ms"}), ("1s", {"fixed_interval": "1s"}), ("30s", {"fixed_interval": "30s"}),
    ("1m", {"calendar_interval": "1m"}), ("5m", {"fixed_interval": "5m"}), ("1h", {"calendar_interval": "1h"}),
    ("3h", {"fixed_interval": "3h"}), ("24h", {"fixed_interval": "24h"}), ("30d", {"fixed_interval": "30d"}),
    ("1w", {"calendar_interval": "1w"}), ("1y", {"calendar_interval": "1y"}),
])
def test_interval_kind_is_kibanas(interval, expected):
    assert date_histogram_interval(interval) == expected


def test_autointerval_over_the_time_range():
    def hist(minutes, size=True):
        ctx = KibanaContext(START, START + dt.timedelta(minutes=minutes))
        body = ctx.query_url({"index": "x", "body": {"aggs": {"t": {"date_histogram": {
            "field": "@timestamp", "interval": {"%autointerval%": size}}}}}})
        return {k: v for k, v in body["aggs"]["t"]["date_histogram"].items() if k != "field"}

    assert hist(15, 40) == {"fixed_interval": "30s"}          # 22.5 s
    assert hist(60) == {"calendar_interval": "1m"}            # 72 s
    assert hist(6 * 60) == {"fixed_interval": "5m"}           # 432 s
    assert hist(24 * 60) == {"fixed_interval": "30m"}         # 28.8 min
    assert hist(7 * 24 * 60) == {"fixed_interval": "3h"}      # 3.36 h
    assert hist(30 * 24 * 60) == {"fixed_interval": "12h"}    # 14.4 h
    assert hist(60 * 24 * 60) == {"fixed_interval": "24h"}    # 28.8 h
    # a plain interval string under date_histogram is converted the same way
    ctx = KibanaContext(START, START + dt.timedelta(hours=1))
    body = ctx.query_url({"index": "x", "body": {"aggs": {"t": {"date_histogram": {"field": "f", "interval": "1d"}}}}})
    assert body["aggs"]["t"]["date_histogram"] == {"field": "f", "calendar_interval": "1d"}


def test_bad_placeholders_are_errors_not_blank_maps():
    ctx = KibanaContext(START, START + dt.timedelta(hours=1))
    with pytest.raises(RenderError, match="unknown Kibana placeholder"):
        ctx.query_url({"index": "x", "body": {"query": {"bool": {"must": ["%dashboard_context-must%"]}}}})
    # Kibana 8 has must, filter and must_not placeholders only
    with pytest.raises(RenderError, match="should_clause% does not exist in Kibana 8"):
        ctx.query_url({"index": "x", "body": {"query": {"bool": {"should": ["%dashboard_context-should_clause%"]}}}})
    with pytest.raises(RenderError, match="cannot be combined"):
        ctx.query_url({"index": "x", "%context%": True, "body": {"query": {"match_all": {}}}})
    # units Kibana does not know (plurals, ms) and a shift that is not a number
    with pytest.raises(RenderError, match='unknown %timefilter% "unit" \'hours\''):
        ctx.apply({"min": {"%timefilter%": "min", "shift": 2, "unit": "hours"}})
    with pytest.raises(RenderError, match="unit"):
        ctx.apply({"min": {"%timefilter%": "min", "shift": 2, "unit": "ms"}})
    with pytest.raises(RenderError, match='"shift" must be a number'):
        ctx.apply({"min": {"%timefilter%": "min", "shift": "2"}})
    with pytest.raises(RenderError, match="must be true, 'min' or 'max'"):
        ctx.apply({"range": {"t": {"%timefilter%": "now"}}})
    with pytest.raises(RenderError, match="%autointerval% must be true or a number"):
        ctx.query_url({"index": "x", "body": {"aggs": {"t": {"date_histogram": {"interval": {"%autointerval%": "50"}}}}}})
    # Kibana replaces placeholders in body.query and body.aggs only, and dashboard clauses only in the query
    with pytest.raises(RenderError, match="only inside body.query and body.aggs"):
        ctx.query_url({"index": "x", "body": {"post_filter": {"range": {"t": {"%timefilter%": True}}}}})
    with pytest.raises(RenderError, match="only inside body.query and body.aggs"):
        ctx.query_url({"index": "x", "body": {"aggs": {"f": {"filter": {"bool": {
            "must": ["%dashboard_context-must_clause%"]}}}}}})
    with pytest.raises(RenderError, match="only inside body.query and body.aggs"):
        ctx.query_url({"index": "x", "body": {"aggs": {"t": {"histogram": {"interval": {"%autointerval%": True}}}}}})
    url = ctx.query_url({"index": "x", "%context%": True, "%timefield%": "@timestamp", "body": {"size": 0}})
    assert url["query"]["bool"]["must"] == [{"match_all": {}}, {"range": {"@timestamp": {
        "gte": "2026-03-14T10:00:00.000Z", "lte": "2026-03-14T11:00:00.000Z", "format": "strict_date_optional_time"}}}]


def test_a_spec_that_draws_nothing_is_reported(world):
    svg, _, counts = render(load_spec("vessel_map"), world)
    assert undrawn_marks(load_spec("vessel_map"), svg, counts) == []
    # a wrong object name: Vega fails at run time (on its console only) and the map comes out empty
    broken = json.loads(spec_text("vessel_map").replace('"_source.location.lon"', '"_source.locaton.lon"'))
    svg, _, counts = render(broken, world)
    assert counts["ships"] > 0 and mark_items(svg, "ship") == []
    assert "mark 'ship' drew nothing" in undrawn_marks(broken, svg, counts)[0]


# -- aiswatch map -------------------------------------------------------------------------------------------

def test_map_command_writes_png_and_html(world, es_url, tmp_path):
    from aiswatch.cli import main

    start = world["ctx"].start.isoformat()
    end = world["ctx"].end.isoformat()
    png, page = tmp_path / "ships.png", tmp_path / "ships.html"
    runner = CliRunner()
    for out in (png, page):
        result = runner.invoke(main, ["map", "--es", es_url, "--namespace", world["names"].namespace,
                                      "--out", str(out), "--start", start, "--end", end], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert f"ships: {len(world['positions'])}" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    assert text.count('class="mark-symbol role-mark ship"') == 1
    assert len(mark_items(text[text.index("<svg"):text.index("</svg>") + 6], "ship")) == len(world["positions"])
    bad = runner.invoke(main, ["map", "--es", es_url, "--out", str(tmp_path / "x.gif")])
    assert bad.exit_code != 0 and ".png, .svg or .html" in bad.output


# the log lines main() prints (logging.basicConfig's format); anything else on the terminal is output
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


def run_aiswatch(args, home, prelude: str = "", **env):
    """``aiswatch ARGS`` in a fresh process; ``prelude`` runs first (e.g. to make an import fail)."""
    import os
    import subprocess
    import sys

    environ = dict(os.environ, AISWATCH_HOME=str(home), **env)
    environ.pop("ES_URL", None)
    code = prelude + "\nfrom aiswatch.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *args], env=environ, capture_output=True, text=True,
                          timeout=120)


def terminal_lines(result) -> list[str]:
    """What the user reads besides INFO logs; a WARNING or worse log line counts as output too."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if not (LOG_LINE.match(line) and LOG_LINE.match(line).group(1) in ("DEBUG", "INFO"))]


def test_vl_convert_is_a_dependency_of_every_install():
    """``aiswatch map`` must work on a plain ``pip install`` (and in the Docker image, which has no extras)."""
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    requires = [line.strip() for line in cfg["options"]["install_requires"].splitlines()]
    assert "vl-convert-python>=1.6" in requires


def test_map_without_the_vega_library_is_one_clear_line(tmp_path):
    # None in sys.modules makes `import vl_convert` raise ImportError, as on an install without the package
    result = run_aiswatch(["map", "--es", "http://127.0.0.1:9", "--out", str(tmp_path / "x.png")], tmp_path,
                          prelude="import sys; sys.modules['vl_convert'] = None")
    assert result.returncode == 1
    lines = terminal_lines(result)
    assert len(lines) == 1 and lines[0].startswith("Error: rendering needs the Vega library"), lines
    assert "pip install 'vl-convert-python>=1.6'" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_map_with_an_unreachable_cluster_is_one_line(tmp_path):
    result = run_aiswatch(["map", "--es", "http://user:pw-secret@127.0.0.1:9", "--out", str(tmp_path / "x.png")],
                          tmp_path)
    assert result.returncode == 1
    assert terminal_lines(result) == ["Error: Elasticsearch at http://***@127.0.0.1:9 is not reachable (ConnectionError)"]
    assert "pw-secret" not in result.stdout + result.stderr


def test_map_without_a_cluster_uses_the_embedded_server_like_the_ingest_did(tmp_path):
    """The screenshot steps of docs/stack.md with nothing configured: ``aiswatch ingest file`` puts the
    messages in the embedded server (data on disk, server stopped at the end), and ``aiswatch map``
    starts it again and draws them."""
    from aiswatch.embedded import free_port
    from aiswatch.ingest.simulation import Simulator, random_fleet

    t0 = 1_773_475_200  # 2026-03-14T08:00:00Z
    sim = Simulator(random_fleet(6, seed=5, start=t0), start=t0, seed=5)
    log = tmp_path / "sim.nmea"
    log.write_text("\n".join(line for _, group in sim.messages(900) for line in group) + "\n")
    port = str(free_port())
    ingest = run_aiswatch(["ingest", "file", str(log)], tmp_path, AISWATCH_EMBEDDED__PORT=port)
    assert ingest.returncode == 0, ingest.stderr
    out = tmp_path / "ships.svg"
    result = run_aiswatch(["map", "--start", "2026-03-14T08:00:00Z", "--end", "2026-03-14T08:20:00Z",
                           "--out", str(out)], tmp_path, AISWATCH_EMBEDDED__PORT=port)
    assert result.returncode == 0, result.stderr
    assert terminal_lines(result) == [f"wrote {out} (ships: 6)"]


def test_map_with_a_bad_url_is_one_line(tmp_path):
    result = run_aiswatch(["map", "--es", "http://user:pw-secret@[::1", "--out", str(tmp_path / "x.png")], tmp_path)
    assert result.returncode == 1
    assert terminal_lines(result) == ["Error: not a valid Elasticsearch URL: http://***@[::1 "
                                      "(expected e.g. http://localhost:9200)"]


def test_map_with_no_data_says_so_and_still_draws(es_url, names, tmp_path):
    """An empty time range is not an error: the map (the spec's own view, land and graticule) is written,
    with a hint."""
    out = tmp_path / "empty.svg"
    result = run_aiswatch(["map", "--es", es_url, "--namespace", names.namespace, "--out", str(out),
                           "--start", "2026-03-14T08:00:00Z", "--end", "2026-03-14T10:00:00Z"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert terminal_lines(result) == [
        f"wrote {out} (ships: 0)",
        "warning: no data in 2026-03-14T08:00:00.000Z .. 2026-03-14T10:00:00.000Z; try a longer --since"]
    svg = out.read_text()
    assert mark_items(svg, "ship") == []
    assert mark_items(svg, "basemap-graticule") and mark_items(svg, "basemap-land")


def test_map_without_its_land_data_is_one_clear_line(es_url, names, tmp_path):
    """A broken install (the land file gone) is one line naming the file and the way out; --no-land draws."""
    prelude = "import aiswatch.kibana.land, pathlib; aiswatch.kibana.land.DATA_PATH = pathlib.Path('/nonexistent/ne_10m_land.npz')"
    args = ["map", "--es", es_url, "--namespace", names.namespace, "--start", "2026-03-14T08:00:00Z",
            "--end", "2026-03-14T10:00:00Z"]
    result = run_aiswatch(args + ["--out", str(tmp_path / "x.png")], tmp_path, prelude=prelude)
    assert result.returncode == 1
    assert terminal_lines(result) == ["Error: the land data /nonexistent/ne_10m_land.npz is missing: reinstall "
                                      "aiswatch, or rebuild it with tools/natural_earth_land.py (or draw without "
                                      "land: --no-land)"]
    assert not (tmp_path / "x.png").exists()
    result = run_aiswatch(args + ["--no-land", "--out", str(tmp_path / "y.svg")], tmp_path, prelude=prelude)
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "y.svg").read_text()
    assert mark_items(svg, "basemap-graticule") and not mark_items(svg, "basemap-land")
