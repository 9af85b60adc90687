"""The ships-seen merge on its own: newest group wins, in any order, and foreign fields survive."""
from __future__ import annotations

import itertools

from aiswatch.ingest.ships_seen import iso_to_ms, merge_ship, ms_to_iso

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


def test_the_messages_needed_for_the_merge_give_what_all_give():
    """merge_ship over ``needed_for_merge``'s subset equals merge_ship over every message, for random
    batches with ties in time, positions, statics and other messages, onto nothing and onto a
    stored document (the sink parses only the subset of a decode process's documents)."""
    import random

    from aiswatch.ingest.ships_seen import document_kinds, needed_for_merge

    rng = random.Random(5)
    for _ in range(2000):
        msgs = []
        for i in range(rng.randint(1, 12)):
            ts = T0 + rng.randint(0, 6) * 1000
            kind = rng.random()
            if kind < 0.5:
                msgs.append(pos(ts, 60 + i / 100, 5.0, heading=rng.choice([None, 90]),
                                source=rng.choice(["file:a", "udp:x"])))
            elif kind < 0.8:
                msgs.append(static(ts, **rng.choice([{"name": f"N{i}"}, {"callsign": f"C{i}"},
                                                     {"name": f"N{i}", "ship_type": 70}])))
            else:
                msgs.append((ts, {"mmsi": "257000001", "msg_kind": "other", "source": "file:a", "station": f"s{i}"}))
        stored = None, None
        if rng.random() < 0.5:
            stored = merge_ship(None, None, [pos(T0 + 3000, 59.0, 4.0), static(T0 + 3000, name="STORED")])
        subset = [msgs[i] for i in needed_for_merge([(ts, document_kinds(doc)) for ts, doc in msgs])]
        assert merge_ship(*stored, subset) == merge_ship(*stored, msgs)
