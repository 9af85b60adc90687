"""Behaviour building blocks without a cluster: MMSI identity, geography, event ids and merging."""
from __future__ import annotations

import pytest

from aiswatch.behavior.events import Event, merge_events
from aiswatch.behavior.geo import Geography
from aiswatch.behavior.identity import classify
from aiswatch.behavior.settings import detect_settings
from aiswatch.common.durations import parse_duration


@pytest.mark.parametrize("mmsi, station, flag, valid", [
    ("244123001", "vessel", "NL", True),
    ("636123002", "vessel", "LR", True),
    ("2442000", "coast_station", "NL", True),        # 002442000 sent as a number loses its zeros
    ("002442000", "coast_station", "NL", True),
    ("111232500", "sar_aircraft", "GB", True),
    ("992351234", "aton", "GB", True),
    ("982191234", "craft_of_parent_ship", "DK", True),
    ("970123456", "sart", None, True),
    ("972123456", "mob", None, True),
    ("974123456", "epirb", None, True),
    ("823212345", "handheld", "GB", True),
    ("023212345", "group", "GB", True),
])
def test_mmsi_station_types_and_flags(mmsi, station, flag, valid):
    ident = classify(mmsi)
    assert (ident.station_type, ident.flag_code, ident.valid) == (station, flag, valid)


@pytest.mark.parametrize("mmsi, problem", [
    ("123456789", "test_number"), ("000000000", "test_number"), ("111111111", "test_number"),
    ("999999999", "test_number"), ("777777777", "test_number"), ("1000", "length"), ("12345678901", "length"),
    ("abc", "length"), ("290123456", "mid_unallocated"), ("200123456", "mid_unallocated"),
])
def test_fake_and_invalid_mmsis(mmsi, problem):
    ident = classify(mmsi)
    assert not ident.valid and problem in ident.problems


def test_flags_of_convenience():
    assert classify("636123002").flag_of_convenience          # Liberia
    assert classify("351123000").flag_of_convenience          # Panama
    assert classify("255123000").flag_of_convenience          # Madeira's MAR register
    assert not classify("263123000").flag_of_convenience      # Portugal's main register
    assert not classify("244123001").flag_of_convenience      # Netherlands
    assert classify("244123001", foc_flags=["NL"]).flag_of_convenience


@pytest.fixture(scope="module")
def geo():
    return Geography()


def test_shore_distance_from_the_land_mask(geo):
    assert geo.shore_nm(55.0, 3.0) > 100        # the middle of the North Sea
    assert geo.shore_nm(52.6, 4.45) < 10        # a few miles off the Dutch coast
    assert geo.shore_nm(52.37, 4.90) == 0       # Amsterdam
    assert 20 < geo.shore_nm(54.3, 3.0) < 108


def test_ports_and_regions(geo):
    assert geo.port_at(51.985, 3.93).name == "Rotterdam"
    assert geo.port_at(-23.98, -46.31).name == "Santos"
    assert geo.port_at(55.0, 3.0) is None and geo.km_from_port(55.0, 3.0) > 100
    assert geo.region(55.0, 3.0) == "North Sea"
    assert geo.region(-24.5, -45.0) == "Brazil South-Southeast"
    latam = [p for p in geo.ports if p.country in {"BR", "AR", "UY", "CL", "PE", "EC", "CO", "PA", "MX", "GT"}]
    assert len(latam) >= 23
    assert sum(1 for r in geo.regions if r.name in {
        "Gulf of Mexico", "Caribbean", "Panama Canal approaches", "Mexican Pacific", "Central American Pacific",
        "Colombia-Ecuador Pacific", "Peru-Chile Pacific", "Brazil North-Northeast", "Brazil South-Southeast",
        "Rio de la Plata-Patagonia"}) == 10


def test_event_ids_are_deterministic_and_merging_extends():
    a = Event("loitering", "loitering", "medium", ["636123002"], 1_000, 5_000, 55.0, 3.0, {"duration_h": 0.0})
    b = Event("loitering", "loitering", "medium", ["636123002"], 1_000, 9_000, 55.1, 3.1, {"duration_h": 0.0})
    assert a.id == b.id                                   # same vessel and start: same event
    pair1 = Event("encounter", "encounter", "high", ["2", "1"], 0, 1, None, None)
    pair2 = Event("encounter", "encounter", "high", ["1", "2"], 0, 1, None, None)
    assert pair1.id == pair2.id                           # the order of the vessels does not matter
    merged = merge_events(a, b)
    assert (merged.start_ms, merged.end_ms, merged.lat) == (1_000, 9_000, 55.1)
    assert merge_events(b, a).lat == 55.1                 # the later end wins; a rerun changes nothing


def test_settings_merge_and_durations():
    s = detect_settings({"detect": {"loitering": {"min_hours": 8}}})
    assert s["loitering"]["min_hours"] == 8 and s["loitering"]["max_speed_kn"] == 2.0
    assert s["gap"]["min_hours"] == 12 and s["encounter"]["max_distance_m"] == 500
    assert parse_duration("10m") == 600 and parse_duration("24h") == 86400 and parse_duration(5) == 5


# -- detectors on hand-made slot summaries (what Elasticsearch would return) ----------------------

from aiswatch.behavior.encounter import detect_encounters  # noqa: E402
from aiswatch.behavior.gap import detect_gaps  # noqa: E402
from aiswatch.behavior.loitering import detect_loitering  # noqa: E402
from aiswatch.behavior.tracks import Slot  # noqa: E402

SLOT = 600_000
HOUR = 3_600_000


def slots(mmsi, start_ms, n, lat, lon, sog, dlat=0.0, every=SLOT):
    """n consecutive 10-minute slot summaries of one vessel, moving dlat degrees per slot."""
    return [Slot(mmsi, start_ms + i * every, start_ms + i * every + 5_000, start_ms + i * every + 595_000,
                 lat + i * dlat, lon, sog) for i in range(n)]


def test_gap_classes_and_the_shore_filter(geo):
    cfg = detect_settings(None)["gap"]
    t0 = 1_800_000_000_000
    far = slots("244000001", t0, 6, 55.0, 3.0, 10.0) + slots("244000001", t0 + 13 * HOUR, 3, 55.5, 3.0, 10.0)
    short = slots("244000002", t0, 6, 55.2, 3.5, 10.0) + slots("244000002", t0 + 3 * HOUR, 3, 55.3, 3.5, 10.0)
    coast = slots("244000003", t0, 6, 52.6, 4.45, 5.0) + slots("244000003", t0 + 13 * HOUR, 3, 52.7, 4.5, 5.0)
    events = detect_gaps({"244000001": far, "244000002": short, "244000003": coast}, None, geo, cfg,
                         t0 + HOUR, t0 + 14 * HOUR)
    by_mmsi = {e.mmsi[0]: e for e in events}
    assert set(by_mmsi) == {"244000001", "244000002"}          # the coaster's gap is within 50 nm of shore
    assert (by_mmsi["244000001"].subtype, by_mmsi["244000001"].severity) == ("gap", "high")
    assert (by_mmsi["244000002"].subtype, by_mmsi["244000002"].severity) == ("short", "low")
    far_gap = by_mmsi["244000001"]
    assert far_gap.start_ms == far[5].last and far_gap.end_ms == far[6].first
    assert 29 < far_gap.details["distance_nm"] < 31 and far_gap.details["implied_speed_kn"] < 3
    off = dict(cfg, min_shore_nm=0)
    assert len(detect_gaps({"244000003": coast}, None, geo, off, t0 + HOUR, t0 + 14 * HOUR)) == 1


def test_one_vessel_in_two_encounters_at_once_and_crossing_at_speed_is_none(geo):
    cfg = dict(detect_settings(None)["encounter"], refine=False)
    t0 = 1_800_000_000_000
    tracks = {
        "636000001": slots("636000001", t0, 18, 55.6, 5.5, 0.8),            # carrier
        "412000001": slots("412000001", t0, 18, 55.6025, 5.5, 0.9),         # 278 m north of it
        "412000002": slots("412000002", t0, 18, 55.5975, 5.5, 1.1),         # 278 m south (556 m apart)
        "244000001": slots("244000001", t0, 18, 55.0, 6.0, 14.0),           # fast ones sharing a spot
        "244000002": slots("244000002", t0, 18, 55.0005, 6.0, 14.0),
    }
    events = detect_encounters(tracks, None, geo, cfg, t0, t0 + 3 * HOUR, SLOT)
    pairs = sorted(tuple(e.mmsi) for e in events)
    assert pairs == [("412000001", "636000001"), ("412000002", "636000001")]
    for e in events:
        assert e.start_ms == t0 + 5_000 and e.end_ms == t0 + 17 * SLOT + 595_000
        assert 270 < e.details["median_distance_m"] < 290


def test_loitering_needs_the_duration_the_shore_distance_and_no_port(geo):
    cfg = detect_settings(None)["loitering"]
    t0 = 1_800_000_000_000
    tracks = {
        "636000001": slots("636000001", t0, 30, 55.2, 3.5, 1.0),      # 5 h, far out: loitering
        "636000002": slots("636000002", t0, 18, 55.3, 3.5, 1.0),      # 3 h only
        "636000003": slots("636000003", t0, 30, 51.985, 3.93, 0.1),  # Rotterdam anchorage
        "636000004": slots("636000004", t0, 30, 52.6, 4.45, 1.0),     # 6 nm off the coast
    }
    events = detect_loitering(tracks, geo, cfg, t0, t0 + 6 * HOUR, SLOT)
    assert [e.mmsi for e in events] == [["636000001"]]
    assert events[0].start_ms == t0 + 5_000 and events[0].details["avg_speed_kn"] == 1.0


def test_schedule_survives_an_unreachable_cluster():
    from aiswatch.behavior.runner import Detector, run_scheduled
    from aiswatch.es_templates import IndexNames
    from aiswatch.embedded import free_port
    from aiswatch.ingest.esclient import make_client

    client = make_client(f"http://127.0.0.1:{free_port()}", request_timeout=1, max_retries=0)
    pauses = []
    try:
        runs = run_scheduled(Detector(client, IndexNames("x-"), {}), every_s=1.0, sleep=pauses.append,
                             stop=lambda: len(pauses) >= 3)
    finally:
        client.close()
    assert runs == 0 and pauses == [1.0, 2.0, 3.0]      # backs off and keeps trying, never raises


def test_loitering_inside_an_offshore_anchorage_is_not_loitering(geo):
    """Far from shore (the shore filter passes) but inside an anchorage circle: no event; just outside it: one."""
    cfg = detect_settings(None)["loitering"]
    anchorage = Geography({"extra_ports": [{"name": "Dogger Anchorage", "country": "GB", "lat": 55.2, "lon": 3.5,
                                            "radius_km": 5}]}, shore=geo.shore)
    assert anchorage.shore_nm(55.2, 3.5) > 20 and anchorage.port_at(55.2, 3.5).name == "Dogger Anchorage"
    assert anchorage.port_at(55.26, 3.5) is None                    # 6.7 km north: 1.7 km outside the circle
    t0 = 1_800_000_000_000
    inside = {"636000011": slots("636000011", t0, 30, 55.2, 3.5, 1.0)}
    outside = {"636000012": slots("636000012", t0, 30, 55.26, 3.5, 1.0)}
    assert detect_loitering(inside, anchorage, cfg, t0, t0 + 6 * HOUR, SLOT) == []
    assert [e.mmsi for e in detect_loitering(outside, anchorage, cfg, t0, t0 + 6 * HOUR, SLOT)] == [["636000012"]]
    assert [e.mmsi for e in detect_loitering(inside, geo, cfg, t0, t0 + 6 * HOUR, SLOT)] == [["636000011"]]


def test_speed_mismatch_and_stationary_but_moving(geo):
    from aiswatch.behavior.spoofing import detect_spoofing

    cfg = detect_settings(None)["spoofing"]
    t0 = 1_800_000_000_000
    per_slot_5kn = 5 / 6 / 60          # degrees of latitude a 10-minute slot at 5 kn
    tracks = {
        "244000021": slots("244000021", t0, 8, 55.0, 3.0, 20.0, dlat=per_slot_5kn),        # says 20 kn, moves 5
        "244000022": slots("244000022", t0, 8, 55.0, 3.5, 5.0, dlat=per_slot_5kn),         # says 5 kn, moves 5
        "244000023": slots("244000023", t0, 8, 55.0, 4.0, 0.2, dlat=8 / 5 * per_slot_5kn),  # says 0, moves 8
        "244000024": slots("244000024", t0, 3, 55.0, 4.5, 20.0, dlat=per_slot_5kn),        # 2 slot pairs only
    }
    events = detect_spoofing(tracks, None, geo, cfg, t0, t0 + 2 * HOUR, SLOT)
    found = sorted((e.mmsi[0], e.subtype) for e in events)
    assert found == [("244000021", "speed_mismatch"), ("244000023", "stationary_moving")]
    mismatch = next(e for e in events if e.subtype == "speed_mismatch")
    assert mismatch.start_ms == tracks["244000021"][0].first and mismatch.end_ms == tracks["244000021"][-1].last
    assert mismatch.details["reported_speed_kn"] == 20.0 and 4.5 < mismatch.details["implied_speed_kn"] < 5.5


def test_a_failed_refinement_keeps_the_slot_edges_and_says_so(caplog):
    """A refinement query that fails (no cluster there) leaves the 10-minute edges and logs a warning."""
    from aiswatch.behavior.refine import refine_edges
    from aiswatch.behavior.tracks import TrackReader
    from aiswatch.embedded import free_port
    from aiswatch.ingest.esclient import make_client

    client = make_client(f"http://127.0.0.1:{free_port()}", request_timeout=1, max_retries=0)
    try:
        reader = TrackReader(client, "x-ais-*")
        with caplog.at_level("WARNING", logger="aiswatch.behavior.refine"):
            edges = refine_edges(reader, "636000001", 1_800_000_000_000, 1_800_021_600_000, SLOT, lambda s: True)
    finally:
        client.close()
    assert edges == (1_800_000_000_000, 1_800_021_600_000)
    warnings = [r.getMessage() for r in caplog.records if r.name == "aiswatch.behavior.refine"]
    assert len(warnings) == 2 and "refining the start of 636000001 failed" in warnings[0]
    assert "refining the end of 636000001 failed" in warnings[1]


@pytest.mark.parametrize("mmsi, ship, gear", [
    ("367501050", True, None), ("201000001", True, None), ("775999999", True, None),
    ("941203527", False, "unknown"),        # net buoys: a number outside every class
    ("982191001", False, "craft_of_parent_ship"), ("864123456", False, "handheld"),
    ("970123456", False, "sart"), ("123456789", False, "unknown"),
    ("200123456", False, "vessel"),         # first digit 2 but MID 200: not a ship's number
    ("992351234", False, None), ("002442000", False, None), ("111232500", False, None),   # AtoN, coast, aircraft
])
def test_ships_by_itu_r_m585_and_what_may_be_gear(mmsi, ship, gear):
    from aiswatch.behavior.identity import gear_kind, is_ship

    assert is_ship(mmsi) is ship and gear_kind(mmsi) == gear


@pytest.mark.parametrize("lat, lon, region", [
    (41.5144, -88.09048, "inland waters"),   # the Illinois river (a shared MMSI of the US day)
    (47.5, -87.5, "Great Lakes"),            # Lake Superior: GLOBE counts it as land, never an ocean
    (46.809, -90.813, "Great Lakes"),        # Bayfield's ferry dock
    (26.91, -80.084, "North Atlantic"),      # Jupiter, Florida's Atlantic coast (a box called it Pacific)
    (30.35, -81.3, "North Atlantic"),        # Jacksonville
    (29.134, -90.201, "Gulf of Mexico"),     # Port Fourchon
    (34.015, -119.441, "North Pacific East"),
    (9.5, -85.5, "Central American Pacific"),   # the Caribbean box used to take the Pacific side too
    (45.0, -3.0, "North Atlantic"),          # Bay of Biscay (the Mediterranean box took it)
    (55.0, 3.0, "North Sea"),
])
def test_regions_follow_coasts_and_the_land_mask(geo, lat, lon, region):
    assert geo.region(lat, lon) == region


def test_user_regions_come_first_and_take_polygons(geo):
    mine = Geography({"extra_regions": [{"name": "My River", "polygon": [[41.4, -88.2], [41.7, -88.2], [41.7, -88.0],
                                                                          [41.4, -88.0]]},
                                        {"name": "My Box", "box": [54.9, 2.9, 55.1, 3.1]}]}, shore=geo.shore)
    assert mine.region(41.5144, -88.09048) == "My River" and mine.region(55.0, 3.0) == "My Box"
    with pytest.raises(ValueError, match="polygon or a box"):
        Geography({"extra_regions": [{"name": "Nowhere"}]}, shore=geo.shore)


def test_the_land_grid_is_built_once_per_machine(geo, tmp_path):
    """A second ShoreDistance over the same cache directory loads, it does not build."""
    import shutil

    from aiswatch.behavior.geo import ShoreDistance

    geo.shore.land  # noqa: B018 - the session's grid (built or loaded)
    shutil.copy(geo.shore.cache_path, tmp_path / geo.shore.cache_path.name)
    again = ShoreDistance(cache_dir=tmp_path)
    assert again.nm(55.0, 3.0) == geo.shore.nm(55.0, 3.0) and not again.built
    assert again.inland(47.5, -87.5) and not again.inland(55.0, 3.0)


def box_slots(mmsi, start_ms, places, sog):
    """10-minute slots of one MMSI whose reports alternate among ``places`` [(lat, lon), ...] per slot."""
    from aiswatch.behavior.tracks import Slot

    out = []
    for i, here in enumerate(places):
        lats, lons = [p[0] for p in here], [p[1] for p in here]
        out.append(Slot(mmsi, start_ms + i * SLOT, start_ms + i * SLOT + 5_000, start_ms + i * SLOT + 595_000,
                        sum(lats) / len(lats), sum(lons) / len(lons), sog, min(lats), max(lats), min(lons), max(lons)))
    return out


def test_one_mmsi_in_two_places_in_the_same_slots_is_a_shared_mmsi(geo):
    from aiswatch.behavior.spoofing import detect_spoofing

    cfg = detect_settings(None)["spoofing"]
    t0 = 1_800_000_000_000
    a, b = (55.0, 3.0), (55.0, 3.16)            # 5.5 nm apart
    shared = box_slots("244000031", t0, [[a], [a, b], [a, b], [a, b], [a]], 0.1)     # three slots with both
    stray = box_slots("244000032", t0, [[a], [a, b], [a], [a], [a]], 0.1)            # one stray position
    fast = box_slots("244000033", t0, [[(55.0, 3.0), (55.0, 3.05)], [(55.0, 3.05), (55.0, 3.1)]], 20.0)  # 20 kn
    events = detect_spoofing({"244000031": shared, "244000032": stray, "244000033": fast}, None, geo, cfg,
                             t0, t0 + HOUR, SLOT)
    assert [(e.mmsi, e.subtype) for e in events] == [(["244000031"], "shared_mmsi")]
    e = events[0]
    assert e.details["slots"] == 3 and 5.0 < e.details["distance_nm"] < 6.0
    assert sorted(map(tuple, e.details["places"])) == [a, b]
    assert e.start_ms == shared[1].first and e.end_ms == shared[3].last


def test_an_anchorage_needs_three_ships_not_all_there_at_once():
    from aiswatch.behavior.anchorages import find_stays, is_anchorage

    h = 3_600_000
    assert is_anchorage({"1": [0, 10 * h], "2": [0, 10 * h], "3": [12 * h, 20 * h]}, 3)
    assert not is_anchorage({"1": [0, 10 * h], "2": [0, 10 * h], "3": [2 * h, 9 * h]}, 3)   # a rendezvous
    assert not is_anchorage({"1": [0, 10 * h], "2": [12 * h, 20 * h]}, 3)
    cfg = detect_settings(None)["anchorages"]
    t0 = 1_800_000_000_000
    tracks = {"244000041": slots("244000041", t0, 30, 53.175, 5.415, 0.0),     # 5 h moored
              "244000042": slots("244000042", t0, 18, 53.176, 5.415, 0.0),     # 3 h: too short
              "941000043": slots("941000043", t0, 30, 53.177, 5.415, 0.0),     # not a ship
              "244000044": slots("244000044", t0, 30, 53.175, 5.415, 5.0)}     # not slow
    assert [s.mmsi for s in find_stays(tracks, cfg)] == ["244000041"]
    far = {"244000045": slots("244000045", t0, 30, 55.0, 3.0, 0.0)}            # 100 nm out: fishing grounds
    geo_shore = Geography().shore_nm
    assert find_stays(far, cfg, geo_shore) == [] and len(find_stays(far, cfg)) == 1
