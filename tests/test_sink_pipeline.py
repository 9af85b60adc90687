"""End to end: an NMEA log through the whole pipeline into a real ES-compatible server.

Lines are made with ``pyais.encode_dict`` and carry NMEA 4.10 tag blocks with the message time,
so the expected documents, daily indices and ships-seen states are known exactly.
"""
from __future__ import annotations

import random
from functools import reduce

import pytest
from pyais import encode_dict

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.pipeline import Pipeline
from aiswatch.es_templates.install import install_templates
from aiswatch.ingest.ships_seen import ms_to_iso
from aiswatch.ingest.sink import ElasticsearchSink

MIDNIGHT = 1_763_164_800  # 2025-11-15T00:00:00Z: the traffic straddles it


def tag(sentence: str, t: int, station: str = "bergen") -> str:
    body = f"s:{station},c:{t}"
    check = reduce(lambda a, ch: a ^ ord(ch), body, 0)
    return f"\\{body}*{check:02X}\\{sentence}"


def nmea_traffic(n_ships: int = 12, positions: int = 25, start: int = MIDNIGHT - 600, seed: int = 7):
    """Tagged NMEA lines in time order and what they must produce.

    Returns (lines, expected) where expected maps MMSI -> {"name", "lat", "lon", "time"} of the
    newest position, and the number of messages per UTC day.
    """
    rng = random.Random(seed)
    events = []
    expected = {}
    for s in range(n_ships):
        mmsi = 257_100_000 + s
        name = f"VESSEL {s}"
        t_static = start + rng.randint(0, 60)
        events.append((t_static, encode_dict(
            {"msg_type": 5, "mmsi": mmsi, "shipname": name, "callsign": f"LA{s:03d}", "ship_type": 70,
             "destination": "BERGEN", "to_bow": 50, "to_stern": 20, "to_port": 5, "to_starboard": 5,
             "imo": 9_000_000 + s}, talker_id="AI", sentence_type="VDM", seq_id=s % 10)))
        lat, lon = 60.0 + s / 50, 4.5 + s / 50
        for k in range(positions):
            t = start + 10 + k * 50 + s
            lat, lon = round(lat + 0.001, 5), round(lon + 0.002, 5)
            events.append((t, encode_dict({"msg_type": 1, "mmsi": mmsi, "lat": lat, "lon": lon, "speed": 11.5,
                                           "course": 63.0, "heading": 60, "status": 0}, talker_id="AI", sentence_type="VDM")))
            expected[mmsi] = {"name": name, "lat": lat, "lon": lon, "time": t}
    events.sort(key=lambda e: e[0])
    lines = [tag(sentence, t) for t, sentences in events for sentence in sentences]
    per_day = {"2025.11.14": sum(1 for t, _ in events if t < MIDNIGHT),
               "2025.11.15": sum(1 for t, _ in events if t >= MIDNIGHT)}
    return lines, expected, per_day


def replay(es, names, tmp_path, lines, counters=None, source="file:traffic.nmea"):
    counters = counters or Counters()
    sink = ElasticsearchSink(es, names, counters, spool_dir=tmp_path / "spool",
                             dead_letter_path=tmp_path / "dead.ndjson", batch_size=200, flush_seconds=0.2)
    pipeline = Pipeline(sink, counters)
    pipeline.feed_many(Line(text, 1_800_000_000.0, source, offset=i) for i, text in enumerate(lines))
    pipeline.finish()
    sink.close()
    return counters


def index_counts(es, names):
    es.indices.refresh(index=names.namespace + "*")
    return {r["index"][len(names.namespace):]: int(r["docs.count"])
            for r in es.cat.indices(index=names.namespace + "*", format="json")}


def assert_ships(es, names, expected):
    for mmsi, want in expected.items():
        doc = es.get(index=names.ships, id=f"{mmsi:09d}")["_source"]
        assert doc["name"] == want["name"]
        assert doc["lat"] == pytest.approx(want["lat"], abs=1e-5)
        assert doc["lon"] == pytest.approx(want["lon"], abs=1e-5)
        assert doc["location"]["lat"] == pytest.approx(want["lat"], abs=1e-5)
        assert doc["position_time"] == ms_to_iso(want["time"] * 1000)


def test_log_gives_one_document_per_message_and_replay_changes_nothing(es, names, tmp_path):
    install_templates(es, names, None)
    lines, expected, per_day = nmea_traffic()
    lines_with_noise = lines[:50] + ["!AIVDM,1,1,,A,garbage,0*00", "not nmea at all"] + lines[50:]
    counters = replay(es, names, tmp_path, lines_with_noise)
    n_messages = sum(per_day.values())
    assert counters.get("messages_decoded") == n_messages
    assert counters.get("documents_indexed") == n_messages
    assert counters.get("rejected") == 2
    want = {"ais-2025.11.14": per_day["2025.11.14"], "ais-2025.11.15": per_day["2025.11.15"],
            "ships-seen": len(expected)}
    assert index_counts(es, names) == want
    assert_ships(es, names, expected)
    assert counters.get("last_message_time.file:traffic.nmea") == max(e["time"] for e in expected.values())

    counters = replay(es, names, tmp_path, lines)  # the same log again
    assert counters.get("documents_indexed") == n_messages
    assert index_counts(es, names) == want
    assert_ships(es, names, expected)


def test_out_of_order_input_leaves_the_newest_position(es, names, tmp_path):
    lines, expected, per_day = nmea_traffic(n_ships=6, positions=20)
    # shuffle whole messages (a type 5's two fragments stay together)
    messages, i = [], 0
    while i < len(lines):
        n = int(lines[i].split("!AIVDM,")[1].split(",")[0])
        messages.append(lines[i:i + n])
        i += n
    random.Random(3).shuffle(messages)
    shuffled = [line for m in messages for line in m]
    counters = replay(es, names, tmp_path, shuffled)
    assert counters.get("documents_indexed") == sum(per_day.values())
    assert index_counts(es, names)["ships-seen"] == len(expected)
    assert_ships(es, names, expected)
