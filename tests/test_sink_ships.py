"""The ships-seen merge on its own: newest group wins, in any order, and foreign fields survive."""
from __future__ import annotations

import itertools

from ingest.ships_seen import iso_to_ms, merge_ship, ms_to_iso

T0 = 1_763_000_000_000


def pos(ts, lat, lon, heading=None, source="file:a"):
    d = {"mmsi": "257000001", "msg_kind": "position", "location": {"lat": lat, "lon": lon}, "lat": lat,
         "lon": lon, "sog": 10.0, "class": "A", "source": source}
    if heading is not None:
        d["heading"] = heading
    return ts, d


def static(ts, **fields):
    d = {"mmsi": "257000001", "msg_kind": "static", "source": "file:a"}
    d.update(fields)
    return ts, d


def test_time_conversions_round_trip():
    assert ms_to_iso(T0 + 7) == "2025-11-13T02:13:20.007Z"
    assert iso_to_ms(ms_to_iso(T0 + 7)) == T0 + 7
    assert iso_to_ms("garbage") is None


def test_every_order_gives_the_same_document():
    msgs = [pos(T0, 60.0, 5.0, heading=90), static(T0 + 1000, name="OLD NAME", callsign="LAAA"),
            pos(T0 + 2000, 60.1, 5.1), static(T0 + 3000, name="NEW NAME"), pos(T0 - 5000, 59.0, 4.0, heading=10)]
    results = set()
    for perm in itertools.permutations(msgs):
        doc, version = merge_ship(None, None, perm)
        results.add((repr(sorted(doc.items())), version))
    assert len(results) == 1
    doc, version = merge_ship(None, None, msgs)
    assert version == T0 + 3000
    assert doc["location"] == {"lat": 60.1, "lon": 5.1} and doc["position_time"] == ms_to_iso(T0 + 2000)
    assert "heading" not in doc  # the newest position had no heading: no stale value left over
    assert doc["name"] == "NEW NAME" and doc["callsign"] == "LAAA"  # older message fills a missing field
    assert doc["static_time"] == ms_to_iso(T0 + 3000)
    assert doc["first_seen"] == ms_to_iso(T0 - 5000) and doc["@timestamp"] == ms_to_iso(T0 + 3000)


def test_merging_into_stored_keeps_foreign_fields_and_skips_no_change():
    stored, version = merge_ship(None, None, [pos(T0, 60.0, 5.0), static(T0, name="A")])
    stored = dict(stored, identity={"flag": "NO"}, risk={"score": 0.5})
    assert merge_ship(stored, version, [pos(T0, 60.0, 5.0)]) is None  # a replay changes nothing
    older, _ = merge_ship(stored, version, [pos(T0 - 1, 61.0, 6.0)])  # older position: only first_seen moves
    assert older["location"] == {"lat": 60.0, "lon": 5.0} and older["first_seen"] == ms_to_iso(T0 - 1)
    doc, new_version = merge_ship(stored, version + 1, [static(T0 - 10, destination="BERGEN")])
    assert doc["destination"] == "BERGEN" and doc["name"] == "A"
    assert doc["identity"] == {"flag": "NO"} and doc["risk"] == {"score": 0.5}
    assert new_version == version + 1  # a detector's update bumped the stored version: never go below it
