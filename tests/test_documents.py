"""ingest.documents: ais-* documents per es_templates/ais.json, sentinels missing, stable ids."""
from __future__ import annotations

import datetime as dt
import random
from hashlib import blake2b
import re
from functools import reduce
from operator import xor

from pyais.encode import encode_dict

from aiswatch import es_templates
from aiswatch.ingest import geohash
from aiswatch.ingest.assembler import FragmentAssembler
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.decoder import decode
from aiswatch.ingest.documents import build_document
from aiswatch.ingest.itu_codes import NAV_STATUS_TEXT, SHIP_TYPE, ship_type_info
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import parse_line

T0 = 1_790_000_000.25          # receive time used by most tests: 2026-09-21T14:13:20.250Z
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MAPPED = set(es_templates.load("ais")["template"]["mappings"]["properties"])


def tag(body: str) -> str:
    return f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\"


def documents(lines: list[str], *, at: float = T0, source: str = "test", offsets: bool = False,
              prefix: str = "") -> list[dict]:
    counters = Counters()
    assembler = FragmentAssembler(counters)
    docs = []
    for i, text in enumerate(lines):
        sentence = parse_line(Line(prefix + text, at, source, i if offsets else None), counters)
        assert sentence is not None, text
        group = assembler.push(sentence)
        if group is not None:
            fields = decode(group, counters)
            assert fields is not None
            doc = build_document(group, fields)
            assert doc is not None
            docs.append(doc)
    assert counters.get("rejected") == 0
    return docs


def document(data: dict, **kwargs) -> dict:
    docs = documents(encode_dict(data, talker_id="AI", radio_channel=kwargs.pop("channel", "A")), **kwargs)
    assert len(docs) == 1
    return docs[0]


def bisection_geohash(lat: float, lon: float, precision: int) -> str:
    """The textbook geohash: halve the intervals bit by bit, longitude first."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    bits = []
    for i in range(5 * precision):
        if i % 2 == 0:
            mid = (lon_lo + lon_hi) / 2
            bits.append(lon >= mid)
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            bits.append(lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
    return "".join(geohash.BASE32[int("".join("1" if b else "0" for b in bits[i:i + 5]), 2)]
                   for i in range(0, len(bits), 5))


def assert_schema(doc: dict) -> None:
    """Only mapped fields (plus the sink's meta keys), no None anywhere."""
    assert set(doc) - {"_id", "_ts"} <= MAPPED, set(doc) - MAPPED
    assert None not in doc.values()
    assert ISO.match(doc["@timestamp"]) and ISO.match(doc["received_at"])
    assert isinstance(doc["_ts"], int) and re.fullmatch(r"[0-9a-f]{32}", doc["_id"])


def test_class_a_position_document():
    doc = document({"type": 1, "mmsi": 244670316, "status": 7, "turn": 25, "speed": 11.5, "accuracy": 1,
                    "lat": 52.1, "lon": 4.2, "course": 123.4, "heading": 120})
    assert_schema(doc)
    assert doc["mmsi"] == "244670316" and doc["msg_type"] == 1
    assert doc["msg_kind"] == "position" and doc["class"] == "A"
    assert doc["location"] == {"lat": 52.1, "lon": 4.2} and (doc["lat"], doc["lon"]) == (52.1, 4.2)
    assert doc["cell"] == bisection_geohash(52.1, 4.2, 6)
    assert (doc["sog"], doc["cog"], doc["heading"]) == (11.5, 123.4, 120)
    assert doc["rot"] == 26.0 and doc["accuracy"] is True     # 25 deg/min, after the ROT_AIS quantisation
    assert (doc["nav_status"], doc["nav_status_text"]) == (7, "engaged in fishing")
    assert (doc["channel"], doc["source"]) == ("A", "test") and "station" not in doc
    assert doc["raw"] == encode_dict({"type": 1, "mmsi": 244670316, "status": 7, "turn": 25, "speed": 11.5,
                                      "accuracy": 1, "lat": 52.1, "lon": 4.2, "course": 123.4,
                                      "heading": 120}, talker_id="AI", radio_channel="A")
    assert doc["@timestamp"] == doc["received_at"] == "2026-09-21T14:13:20.250Z"
    assert doc["_ts"] == 1_790_000_000_250


def test_geohash_cell_of_a_known_place():
    assert geohash.encode(57.64911, 10.40744, 11) == "u4pruydqqvj"   # the classic example
    doc = document({"type": 18, "mmsi": 211000001, "lat": 57.64911, "lon": 10.40744})
    assert doc["cell"] == "u4pruy"


def test_not_available_sentinels_become_missing_fields():
    doc = document({"type": 1, "mmsi": 244000001, "status": 15, "turn": -128, "speed": 102.3,
                    "lat": 91, "lon": 181, "course": 360, "heading": 511})
    assert_schema(doc)
    for missing in ("location", "lat", "lon", "cell", "sog", "cog", "heading", "rot"):
        assert missing not in doc, missing
    assert (doc["nav_status"], doc["nav_status_text"]) == (15, "not defined")   # a code, still stored
    # turning fast without a turn indicator: no rate either
    assert "rot" not in document({"type": 1, "mmsi": 244000001, "turn": 127, "lat": 1, "lon": 1})
    # lat 91 alone (lon valid) still means no position
    doc = document({"type": 18, "mmsi": 211000009, "lat": 91, "lon": 10.0, "speed": 102.3, "heading": 511})
    assert "location" not in doc and "lon" not in doc and "sog" not in doc and "heading" not in doc


def test_zero_speed_and_north_are_values_not_missing():
    doc = document({"type": 1, "mmsi": 244000002, "speed": 0, "course": 0, "heading": 0, "turn": 0,
                    "lat": 0.5, "lon": -0.5, "status": 0})
    assert (doc["sog"], doc["cog"], doc["heading"], doc["rot"], doc["nav_status"]) == (0.0, 0.0, 0, 0.0, 0)
    assert doc["location"] == {"lat": 0.5, "lon": -0.5}


def test_static_voyage_document():
    doc = document({"type": 5, "mmsi": 366123456, "imo": 9876543, "callsign": "WDC1234", "shipname": "EVER GIVEN",
                    "ship_type": 84, "to_bow": 300, "to_stern": 100, "to_port": 30, "to_starboard": 29,
                    "month": 3, "day": 23, "hour": 7, "minute": 40, "draught": 15.7, "destination": "ROTTERDAM"})
    assert_schema(doc)
    assert doc["msg_kind"] == "static" and doc["class"] == "A"
    assert (doc["name"], doc["callsign"], doc["imo"], doc["destination"]) == (
        "EVER GIVEN", "WDC1234", "9876543", "ROTTERDAM")
    assert (doc["ship_type"], doc["ship_type_text"], doc["ship_category"]) == (
        84, "tanker, hazardous category D", "tanker")
    assert (doc["to_bow"], doc["to_stern"], doc["to_port"], doc["to_starboard"]) == (300, 100, 30, 29)
    assert (doc["length"], doc["beam"], doc["draught"], doc["eta"]) == (400, 59, 15.7, "03-23T07:40")
    assert len(doc["raw"]) == 2 and "location" not in doc


def test_static_not_available_values_are_missing():
    doc = document({"type": 5, "mmsi": 366000002, "imo": 0, "callsign": "", "shipname": "@@@@",
                    "ship_type": 0, "month": 0, "day": 0, "hour": 24, "minute": 60, "draught": 0,
                    "destination": ""})
    assert_schema(doc)
    for missing in ("imo", "callsign", "name", "destination", "eta", "draught", "length", "beam"):
        assert missing not in doc, missing
    assert (doc["ship_type"], doc["ship_type_text"], doc["ship_category"]) == (0, "not available", "unknown")
    # a valid date with "hour not available" is not a usable ETA
    assert "eta" not in document({"type": 5, "mmsi": 366000003, "month": 5, "day": 2, "hour": 24, "minute": 0})


def test_at_padding_inside_text_is_removed():
    doc = document({"type": 5, "mmsi": 366000004, "shipname": "NORDIC@@@@", "callsign": "AB12@@",
                    "destination": "HAMBURG@@@@@"})
    assert (doc["name"], doc["callsign"], doc["destination"]) == ("NORDIC", "AB12", "HAMBURG")


def test_class_b_static_parts_and_extended_report():
    part_a = document({"type": 24, "mmsi": 211000003, "partno": 0, "shipname": "LITTLE BOAT"})
    assert (part_a["name"], part_a["class"], part_a["msg_kind"]) == ("LITTLE BOAT", "B", "static")
    assert "ship_type" not in part_a
    part_b = document({"type": 24, "mmsi": 211000003, "partno": 1, "ship_type": 37, "callsign": "DB1234",
                       "to_bow": 6, "to_stern": 3, "to_port": 1, "to_starboard": 2})
    assert_schema(part_b)
    assert (part_b["ship_type"], part_b["ship_category"], part_b["callsign"]) == (37, "pleasure", "DB1234")
    assert (part_b["length"], part_b["beam"]) == (9, 3) and "name" not in part_b
    ext = document({"type": 19, "mmsi": 211000002, "speed": 3.1, "lat": 54.3, "lon": 10.2, "heading": 511,
                    "shipname": "SAILOR", "ship_type": 36, "to_bow": 8, "to_stern": 4, "to_port": 2,
                    "to_starboard": 2})
    assert_schema(ext)
    assert (ext["msg_kind"], ext["class"], ext["name"], ext["ship_category"]) == ("position", "B", "SAILOR", "sailing")
    assert ext["sog"] == 3.1 and "heading" not in ext and ext["length"] == 12


def test_base_station_aton_long_range_and_other():
    base = document({"type": 4, "mmsi": 2573485, "year": 2026, "lat": 59.9, "lon": 10.7, "accuracy": 1})
    assert_schema(base)
    assert (base["mmsi"], base["msg_kind"], base["location"]) == ("002573485", "base_station", {"lat": 59.9, "lon": 10.7})
    assert "class" not in base
    aton = document({"type": 21, "mmsi": 992111111, "aid_type": 30, "name": "NORTH CARDINAL",
                     "lat": 53.5, "lon": 8.1, "to_bow": 2, "to_stern": 2})
    assert_schema(aton)
    assert (aton["msg_kind"], aton["aton_type"], aton["name"], aton["length"]) == ("aton", 30, "NORTH CARDINAL", 4)
    lr = document({"type": 27, "mmsi": 244670319, "status": 1, "lat": 52.2, "lon": 4.1, "speed": 63, "course": 511})
    assert_schema(lr)
    assert (lr["msg_kind"], lr["class"], lr["nav_status_text"]) == ("position", "A", "at anchor")
    assert "sog" not in lr and "cog" not in lr and lr["location"] == {"lat": 52.2, "lon": 4.1}
    lr = document({"type": 27, "mmsi": 244670319, "lat": 52.2, "lon": 4.1, "speed": 12, "course": 45})
    assert (lr["sog"], lr["cog"]) == (12.0, 45.0)
    sar = document({"type": 9, "mmsi": 111232511, "alt": 300, "speed": 1023, "lat": 54.0, "lon": 7.0, "course": 90})
    assert sar["msg_kind"] == "other" and "sog" not in sar and sar["cog"] == 90.0
    binary = document({"type": 8, "mmsi": 244670320, "dac": 1, "fi": 31})
    assert_schema(binary)
    assert binary["msg_kind"] == "other" and "location" not in binary


def test_message_time_from_tag_block_or_prefix_else_receive_time():
    line = encode_dict({"type": 18, "mmsi": 211000005, "lat": 54.0, "lon": 10.0}, talker_id="AI")[0]
    by_tag = documents([tag("s:rx1,c:1790000100") + line])[0]
    assert by_tag["@timestamp"] == "2026-09-21T14:15:00.000Z" and by_tag["_ts"] == 1_790_000_100_000
    assert by_tag["received_at"] == "2026-09-21T14:13:20.250Z" and by_tag["station"] == "rx1"
    by_ms = documents([tag("c:1790000100123") + line])[0]
    assert by_ms["@timestamp"] == "2026-09-21T14:15:00.123Z"
    by_prefix = documents([line], prefix="2026-09-21T13:00:00.5Z ")[0]
    assert by_prefix["@timestamp"] == "2026-09-21T13:00:00.500Z"
    live = documents([line])[0]
    assert live["@timestamp"] == live["received_at"] == "2026-09-21T14:13:20.250Z"


def test_multi_fragment_time_from_the_first_line_of_a_tag_group():
    one, two = encode_dict({"type": 5, "mmsi": 366000005, "shipname": "GROUPED"}, talker_id="AI", seq_id=2)
    doc = documents([tag("g:1-2-77,s:rx2,c:1790000200") + one, tag("g:2-2-77") + two])[0]
    assert doc["@timestamp"] == "2026-09-21T14:16:40.000Z" and doc["station"] == "rx2"
    assert doc["raw"] == [one, two]


def test_ids_are_stable_for_replays_and_distinct_for_repeats():
    line = encode_dict({"type": 1, "mmsi": 244000003, "lat": 50.0, "lon": 1.0}, talker_id="AI")[0]
    timed = [tag("c:1790000300") + line, tag("c:1790000310") + line]
    first_run = documents(timed, at=T0)
    replay = documents(timed, at=T0 + 86400)
    assert [d["_id"] for d in first_run] == [d["_id"] for d in replay]        # same log, same ids
    assert first_run[0]["_id"] != first_run[1]["_id"]                         # same payload, later: new doc
    # untimed log: ids follow the line's position in the file
    untimed = documents([line, line], offsets=True)
    untimed_replay = documents([line, line], offsets=True, at=T0 + 3600)
    assert [d["_id"] for d in untimed] == [d["_id"] for d in untimed_replay]
    assert untimed[0]["_id"] != untimed[1]["_id"]
    # the same message heard by two stations in the same second is one document
    assert documents([tag("s:a,c:1790000300") + line])[0]["_id"] == documents([tag("s:b,c:1790000300") + line])[0]["_id"]
    # live, untimed, no offset: the receive time decides
    assert documents([line], at=T0)[0]["_id"] != documents([line], at=T0 + 1)[0]["_id"]


def document_id(group, ts_ms: int, has_msg_time: bool) -> str:
    """The id as documented, written out on its own: a hash of the payload plus when (message time
    to the second) or where (source, line offset) it was seen, else the receive time in ms."""
    sentences = group.sentences
    first = sentences[0]
    payload = ",".join([s.payload for s in sentences])
    if has_msg_time:
        seen = f"t{ts_ms - ts_ms % 1000}"
    elif first.offset is not None:
        seen = f"o{first.source}\x00{first.offset}"
    else:
        seen = f"r{ts_ms}"
    key = f"{payload}\x00{sentences[-1].fill}\x00{seen}"
    return blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def test_document_id_is_the_documented_hash():
    one, two = encode_dict({"type": 5, "mmsi": 366000006, "shipname": "IDS"}, talker_id="AI", seq_id=3)
    counters = Counters()
    for has_time, lines in ((False, [one, two]), (True, [tag("c:1790000400") + one, two])):
        for offset in (None, 5):
            assembler = FragmentAssembler(counters)   # a fresh one: the same lines again would be duplicates
            group = None
            for text in lines:
                group = assembler.push(parse_line(Line(text, T0, "src", offset), counters))
            doc = build_document(group, decode(group, counters))
            assert document_id(group, doc["_ts"], has_time) == doc["_id"]


def test_signal_measurements_from_our_demodulator():
    from aiswatch.demod.nmea_out import NmeaFormatter

    line = encode_dict({"type": 18, "mmsi": 211000007, "lat": 54.0, "lon": 10.0}, talker_id="AI")[0]
    payload, fill = line.split(",")[5], int(line.split(",")[6][0])
    bits = "".join(f"{(ord(c) - 48 - (8 if ord(c) - 48 > 40 else 0)):06b}" for c in payload)
    bits = bits[:len(bits) - fill]
    message = int(bits, 2).to_bytes(len(bits) // 8, "big")
    formatter = NmeaFormatter(tags=True, station="sdr1")
    text = formatter.sentences(message, "B", timestamp=1790000500.7, level_db=-23.46, freq_offset_hz=-812.4)[0]
    doc = documents([text])[0]
    assert doc["signal"] == {"level_db": -23.5, "freq_offset_hz": -812.0}
    assert doc["station"] == "sdr1" and doc["@timestamp"] == "2026-09-21T14:21:40.000Z"
    assert doc["mmsi"] == "211000007" and doc["channel"] == "B"
    bad = documents([tag("L:loud,F:nan") + line])[0]
    assert "signal" not in bad


def test_channel_numbers_are_normalised_and_mmsi_is_zero_padded():
    line = encode_dict({"type": 18, "mmsi": 9123, "lat": 1.0, "lon": 2.0}, talker_id="AI", radio_channel="B")[0]
    body = line[1:line.index("*")].replace(",B,", ",2,")     # receivers that number the channels
    doc = documents([f"!{body}*{reduce(xor, body.encode(), 0):02X}"])[0]
    assert doc["channel"] == "B" and doc["mmsi"] == "000009123"


def test_ship_type_table():
    assert ship_type_info(30) == ("fishing", "fishing")
    assert ship_type_info(52) == ("tug", "tug")
    assert ship_type_info(31)[1] == ship_type_info(32)[1] == "tug"
    assert ship_type_info(70) == ("cargo, all ships of this type", "cargo")
    assert ship_type_info(71) == ("cargo, hazardous category A", "cargo")
    assert ship_type_info(79) == ("cargo, no additional information", "cargo")
    assert ship_type_info(60)[1] == "passenger" and ship_type_info(89)[1] == "tanker"
    assert ship_type_info(40)[1] == ship_type_info(49)[1] == "high_speed"
    assert ship_type_info(35) == ("military operations", "military")
    assert ship_type_info(36)[1] == "sailing" and ship_type_info(37)[1] == "pleasure"
    assert ship_type_info(50)[1] == "pilot" and ship_type_info(51)[1] == "sar"
    assert ship_type_info(55)[1] == "law_enforcement"
    assert ship_type_info(90) == ("other type", "other")
    assert ship_type_info(0) == ("not available", "unknown")
    assert ship_type_info(15)[1] == ship_type_info(150)[1] == ship_type_info(255)[1] == "unknown"
    assert set(SHIP_TYPE) == set(range(256)) and set(NAV_STATUS_TEXT) == set(range(16))


def test_documents_index_into_the_ais_template(es, names):
    """The documents are accepted by the real mapping and are searchable as the schema says."""
    es.indices.put_index_template(name=names.template_name("ais"), **es_templates.load("ais", names.namespace))
    rng = random.Random(3)
    lines = []
    for i in range(20):
        data = {"type": rng.choice((1, 18)), "mmsi": 244000100 + i, "lat": rng.uniform(51, 53),
                "lon": rng.uniform(3, 5), "speed": rng.uniform(0, 20), "heading": 511 if i % 2 else 90}
        lines.append(tag(f"s:rx,c:{1790000000 + i * 60}") + encode_dict(data, talker_id="AI")[0])
    lines += [tag("c:1790003000") + t for t in encode_dict({"type": 5, "mmsi": 244000100, "shipname": "ALPHA",
                                                             "ship_type": 30}, talker_id="AI", seq_id=1)]
    docs = documents(lines)
    for doc in docs:
        day = dt.datetime.fromtimestamp(doc["_ts"] / 1000, dt.timezone.utc).strftime("%Y.%m.%d")
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        es.index(index=names.messages(day), id=doc["_id"], document=body)
    index = names.messages("2026.09.21")
    es.indices.refresh(index=index)
    assert es.count(index=index)["count"] == 21
    box = {"top_left": {"lat": 53.0, "lon": 3.0}, "bottom_right": {"lat": 51.0, "lon": 5.0}}
    hits = es.search(index=index, size=50, query={"geo_bounding_box": {"location": box}})["hits"]["hits"]
    assert len(hits) == 20
    fishing = es.search(index=index, query={"bool": {"filter": [
        {"term": {"ship_category": "fishing"}}, {"term": {"mmsi": "244000100"}}]}})["hits"]["hits"]
    assert [h["_source"]["name"] for h in fishing] == ["ALPHA"]
    no_heading = es.count(index=index, query={"bool": {"must_not": {"exists": {"field": "heading"}}}})["count"]
    assert no_heading == 11   # the 10 odd reports with heading 511 and the static message
