"""ElasticsearchSink against a real ES-compatible server (osmem-server, or the cluster in ES_URL).

Documents are built here by hand in the ``ais-*`` shape so these tests exercise the sink alone;
tests/test_sink_pipeline.py runs NMEA lines through the whole pipeline.
"""
from __future__ import annotations

import json

import pytest

from aiswatch.ingest.counters import Counters
from aiswatch.embedded import free_port
from aiswatch.ingest.esclient import make_client
from aiswatch.es_templates.install import install_templates
from aiswatch.ingest.ships_seen import ms_to_iso
from aiswatch.ingest.sink import ElasticsearchSink

DAY1 = 1_763_078_400_000  # 2025-11-14T00:00:00Z
DAY2 = DAY1 + 86_400_000


def position(mmsi, ts, lat, lon, source="file:test.nmea"):
    return {"_id": f"p-{mmsi}-{ts}", "_ts": ts, "@timestamp": ms_to_iso(ts), "mmsi": str(mmsi), "msg_type": 1,
            "msg_kind": "position", "class": "A", "location": {"lat": lat, "lon": lon}, "lat": lat, "lon": lon,
            "sog": 12.5, "cog": 80.0, "source": source, "raw": f"!AIVDM,{mmsi},{ts}"}


def static(mmsi, ts, name, source="file:test.nmea", **more):
    doc = {"_id": f"s-{mmsi}-{ts}", "_ts": ts, "@timestamp": ms_to_iso(ts), "mmsi": str(mmsi), "msg_type": 5,
           "msg_kind": "static", "name": name, "ship_type": 70, "source": source}
    doc.update(more)
    return doc


def make_sink(es, names, tmp_path, counters=None, **kw):
    kw.setdefault("flush_seconds", 0.2)
    return ElasticsearchSink(es, names, counters or Counters(), spool_dir=tmp_path / "spool",
                             dead_letter_path=tmp_path / "dead.ndjson", **kw)


def counts(es, names):
    es.indices.refresh(index=names.messages_pattern + "," + names.ships, ignore_unavailable=True)
    rows = es.cat.indices(index=names.namespace + "*", format="json")
    return {r["index"]: int(r["docs.count"]) for r in rows}


def ship(es, names, mmsi):
    return es.get(index=names.ships, id=str(mmsi))["_source"]


def traffic(n_ships=20, per_ship=30):
    docs = []
    for s in range(n_ships):
        mmsi = 257_000_000 + s
        docs.append(static(mmsi, DAY1 + 500_000 + s, f"SHIP {s}"))
        for k in range(per_ship):
            # the last half of each track falls on the next UTC day
            ts = DAY2 - 60_000 * (per_ship // 2) + k * 60_000 + s
            docs.append(position(mmsi, ts, 60.0 + k / 100, 5.0 + s / 100))
    return docs


def test_daily_indices_ships_seen_and_replay_changes_no_count(es, names, tmp_path):
    install_templates(es, names, None)
    docs = traffic()
    counters = Counters()
    sink = make_sink(es, names, tmp_path, counters, batch_size=150)
    for d in docs:
        sink.submit(dict(d))
    sink.close()
    day1, day2 = names.messages("2025.11.14"), names.messages("2025.11.15")
    expected = {day1: 20 + 20 * 15, day2: 20 * 15, names.ships: 20}
    assert {k: v for k, v in counts(es, names).items() if k in expected} == expected
    assert counters.get("documents_indexed") == len(docs)
    assert counters.get("bulk_errors") == 0 and counters.get("spool_depth") == 0
    assert counters.get("last_message_time.file:test.nmea") == pytest.approx((DAY2 + 14 * 60_000 + 19) / 1000)
    s5 = ship(es, names, 257_000_005)
    assert s5["name"] == "SHIP 5" and s5["location"] == {"lat": 60.29, "lon": 5.05}
    assert s5["position_time"] == ms_to_iso(DAY2 + 14 * 60_000 + 5)
    assert s5["first_seen"] == ms_to_iso(DAY1 + 500_005)

    again = Counters()
    sink = make_sink(es, names, tmp_path, again)
    for d in docs:
        sink.submit(dict(d))
    sink.close()
    assert {k: v for k, v in counts(es, names).items() if k in expected} == expected
    assert again.get("ships_written") == 0  # nothing newer: ships-seen is not even rewritten


def test_out_of_order_keeps_newest_position_and_static(es, names, tmp_path):
    mmsi = 258_000_001
    sink = make_sink(es, names, tmp_path, batch_size=1)  # one message per batch: every merge goes via ES
    sink.submit(position(mmsi, DAY1 + 10_000, 61.0, 6.0))
    sink.submit(static(mmsi, DAY1 + 9_000, "NEWER NAME"))
    sink.submit(position(mmsi, DAY1 + 5_000, 50.0, 1.0))      # older position: must not win
    sink.submit(static(mmsi, DAY1 + 1_000, "OLD NAME", callsign="LXYZ"))  # older static: fills callsign only
    sink.close()
    doc = ship(es, names, mmsi)
    assert doc["location"] == {"lat": 61.0, "lon": 6.0}
    assert doc["name"] == "NEWER NAME" and doc["callsign"] == "LXYZ"
    assert doc["@timestamp"] == ms_to_iso(DAY1 + 10_000) and doc["first_seen"] == ms_to_iso(DAY1 + 1_000)
    assert es.get(index=names.ships, id=str(mmsi))["_version"] == DAY1 + 10_000


def test_restart_keeps_static_fields_and_detector_fields(es, names, tmp_path):
    mmsi = 259_000_001
    sink = make_sink(es, names, tmp_path)
    sink.submit(static(mmsi, DAY1, "KEEP ME"))
    sink.submit(position(mmsi, DAY1 + 1000, 60.0, 5.0))
    sink.close()
    # a behaviour detector writes its fields with a partial update (this bumps the stored version)
    es.update(index=names.ships, id=str(mmsi), doc={"risk": {"score": 0.7}, "identity": {"flag": "NO"}},
              refresh=True)
    counters = Counters()
    sink = make_sink(es, names, tmp_path, counters)  # a new process: nothing cached
    sink.submit(position(mmsi, DAY1 + 2000, 60.5, 5.5))
    sink.submit(static(mmsi, DAY1 - 500, "OLDER", destination="OSLO"))  # older than the stored static
    sink.close()
    doc = ship(es, names, mmsi)
    assert doc["name"] == "KEEP ME" and doc["destination"] == "OSLO"
    assert doc["location"] == {"lat": 60.5, "lon": 5.5}
    assert doc["risk"] == {"score": 0.7} and doc["identity"] == {"flag": "NO"}
    assert counters.get("documents_stale") == 0


class _RacingClient:
    """The real client, except that after the sink's first ships-seen read (``mget``) a rival
    writer stores a newer state of ``mmsi`` (through the same server), before the sink writes."""

    def __init__(self, es, names, mmsi):
        self._es, self._names, self._mmsi = es, names, mmsi
        self.raced = False

    def mget(self, **kwargs):
        stored = self._es.mget(**kwargs)
        if not self.raced:  # its position is newer than ours, and it has no name
            self.raced = True
            mmsi, when = self._mmsi, DAY1 + 50_000
            self._es.index(index=self._names.ships, id=str(mmsi), version=when, version_type="external_gte",
                           document={"mmsi": str(mmsi), "@timestamp": ms_to_iso(when),
                                     "position_time": ms_to_iso(when), "location": {"lat": 1.0, "lon": 2.0}},
                           refresh=True)
        return stored

    def __getattr__(self, name):
        return getattr(self._es, name)


def test_concurrent_newer_write_is_stale_and_remerged(es, names, tmp_path):
    """Another writer stores a newer state between our read and our write: 409, re-read, nothing lost."""
    mmsi = 259_500_001
    counters = Counters()
    client = _RacingClient(es, names, mmsi)
    sink = make_sink(client, names, tmp_path, counters)
    sink.submit(static(mmsi, DAY1 + 1000, "MINE"))
    sink.submit(position(mmsi, DAY1 + 2000, 60.0, 5.0))
    sink.close()
    doc = ship(es, names, mmsi)
    assert client.raced
    assert counters.get("documents_stale") == 1
    assert doc["location"] == {"lat": 1.0, "lon": 2.0} and doc["name"] == "MINE"


def test_mapping_errors_go_to_dead_letters(es, names, tmp_path):
    install_templates(es, names, None)
    counters = Counters()
    sink = make_sink(es, names, tmp_path, counters)
    good = position(260_000_001, DAY1, 60.0, 5.0)
    bad = position(260_000_002, DAY1, 60.0, 5.0)
    bad["sog"] = "very fast"
    sink.submit(good)
    sink.submit(bad)
    sink.close()
    lines = [json.loads(x) for x in (tmp_path / "dead.ndjson").read_text().splitlines()]
    # the raw message and the ships-seen state merged from it are both rejected, each with its reason
    assert sorted((x["index"], x["id"]) for x in lines) == sorted(
        [(names.messages("2025.11.14"), "p-260000002-%d" % DAY1), (names.ships, "260000002")])
    assert all(x["status"] == 400 and x["error"] and x["document"]["sog"] == "very fast" for x in lines)
    assert counters.get("dead_letters") == 2 and counters.get("bulk_errors") == 2
    assert counters.get("documents_indexed") == 1 and counters.get("spool_depth") == 0


def test_unreachable_es_spools_then_a_restart_replays(es_url, names, tmp_path):
    docs = traffic(n_ships=5, per_ship=20)
    dead = make_client(f"http://127.0.0.1:{free_port()}", request_timeout=2)
    counters = Counters()
    sink = make_sink(dead, names, tmp_path, counters, batch_size=40, probe_max_seconds=0.5)
    for d in docs:
        sink.submit(dict(d))
    sink.close(drain_seconds=1.0)
    assert counters.get("es_up") == 0
    assert counters.get("spool_depth") == len(docs) and counters.get("documents_indexed") == 0
    dead.close()

    live = make_client(es_url)
    counters = Counters()
    sink = make_sink(live, names, tmp_path, counters, batch_size=40)
    sink.submit(position(257_000_000, DAY2 + 3_600_000, 10.0, 10.0))  # new traffic queues behind the spool
    sink.close()
    assert counters.get("replayed_total") == len(docs) + 1 and counters.get("spool_depth") == 0
    c = counts(live, names)
    assert c[names.messages("2025.11.14")] + c[names.messages("2025.11.15")] == len(docs) + 1
    assert c[names.ships] == 5
    assert ship(live, names, 257_000_000)["location"] == {"lat": 10.0, "lon": 10.0}
    live.close()


def test_full_queue_spills_to_disk_without_loss(es, names, tmp_path):
    docs = traffic(n_ships=4, per_ship=50)
    counters = Counters()
    sink = make_sink(es, names, tmp_path, counters, queue_size=10, batch_size=25, block_seconds=0)
    for d in docs:
        sink.submit(dict(d))
    sink.close()
    assert counters.get("spooled_total") > 0 and counters.get("spool_depth") == 0
    c = counts(es, names)
    assert c[names.messages("2025.11.14")] + c[names.messages("2025.11.15")] == len(docs)


def test_block_seconds_none_is_pure_backpressure(es, names, tmp_path):
    docs = traffic(n_ships=4, per_ship=50)
    counters = Counters()
    sink = make_sink(es, names, tmp_path, counters, queue_size=10, batch_size=25, block_seconds=None)
    for d in docs:
        sink.submit(dict(d))
    sink.close()
    assert counters.get("spooled_total") == 0 and counters.get("documents_indexed") == len(docs)
