"""aisstream messages are mapped straight to the decoder's fields (no NMEA round trip) and come out
of the same document builder as radio messages: the documents their JSON describes, and the same
fields as the radio would give for the same message."""
import json

from aisstream_server import sample_messages
from aiswatch.ingest.aisstream_map import report_of
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.pipeline import ListSink, Pipeline


def _documents(messages):
    counters = Counters()
    sink = ListSink()
    pipeline = Pipeline(sink, counters)
    for message in messages:
        pipeline.feed(report_of(message, 1795323700.0, json.dumps(message)))
    pipeline.finish()
    return sink.documents, counters


def test_position_and_static_documents_match_the_json():
    sample = sample_messages()
    docs, counters = _documents(sample[:2])
    pos, static = docs
    assert pos["@timestamp"] == "2026-11-22T05:00:00.123Z"        # MetaData.time_utc to the ms, not receive time
    assert pos["mmsi"] == "259000420" and pos["msg_kind"] == "position" and pos["station"] == "aisstream"
    assert pos["location"] == {"lat": 66.02695, "lon": 12.253822}
    assert (pos["sog"], pos["cog"], pos["heading"], pos["nav_status"]) == (12.5, 308.1, 235, 0)
    assert static["@timestamp"] == "2026-11-22T05:00:01.000Z" and static["msg_kind"] == "static"
    assert (static["name"], static["callsign"], static["imo"], static["destination"]) == ("AUGUSTSON", "LLUX", "9123456", "BODO")
    assert (static["ship_type"], static["length"], static["beam"], static["draught"]) == (60, 72, 12, 4.2)
    assert counters.get("rejected") == 0


def test_not_available_values_become_missing_fields_and_replays_keep_their_ids():
    report = sample_messages()[2]                                  # class B, TrueHeading 511
    docs, _ = _documents([report])
    assert "heading" not in docs[0] and docs[0]["sog"] == 6.1
    again, _ = _documents([report])
    assert again[0]["_id"] == docs[0]["_id"]                      # same message, same id: no duplicates


def test_missing_position_is_not_available_not_zero_and_text_fits_the_ais_alphabet():
    import copy
    import pytest
    from aiswatch.ingest.aisstream_map import BadMessage, message_fields
    report = copy.deepcopy(sample_messages()[0])
    body = report["Message"]["PositionReport"]
    del body["Latitude"], body["Longitude"], body["Sog"]
    docs, _ = _documents([report])
    assert "location" not in docs[0] and "lat" not in docs[0] and "sog" not in docs[0]
    assert docs[0]["cog"] == 308.1

    static = copy.deepcopy(sample_messages()[1])
    static["Message"]["ShipStaticData"]["Name"] = "Næringsfisk ~1"
    assert message_fields(static)["shipname"] == "N?RINGSFISK ?1"
    docs, _ = _documents([static])
    assert docs[0]["name"] == "N?RINGSFISK ?1"

    static["Message"]["ShipStaticData"]["ImoNumber"] = "not a number"
    with pytest.raises(BadMessage, match="bad field value"):
        message_fields(static)


def test_the_same_message_by_radio_and_by_aisstream_gives_the_same_fields():
    """What the radio would have sent (the fields encoded as AIVDM, decoded by the NMEA path) and
    the aisstream JSON give the same document fields; only the provenance differs."""
    from pyais import encode_dict

    from aiswatch.ingest.aisstream_map import TYPES, message_fields
    from aiswatch.ingest.lines import Line

    volatile = {"_id", "raw", "source", "station", "channel", "received_at"}
    mapped = [m for m in sample_messages() if m["MessageType"] in TYPES]
    assert len(mapped) >= 9
    for message in mapped:
        fields = message_fields(message)
        sentences = encode_dict(fields, talker_id="AI", sentence_type="VDM", radio_channel="A")
        sink, counters = ListSink(), Counters()
        pipeline = Pipeline(sink, counters)
        for text in sentences:
            pipeline.feed(Line(text, 1795323700.0, "radio"))
        pipeline.finish()
        by_json, _ = _documents([message])
        assert len(sink.documents) == len(by_json) == 1, message["MessageType"]
        radio = {k: v for k, v in sink.documents[0].items() if k not in volatile | {"@timestamp", "_ts"}}
        direct = {k: v for k, v in by_json[0].items() if k not in volatile | {"@timestamp", "_ts"}}
        for key in ("lat", "lon"):   # AIVDM carries 1/10000 minute
            if key in radio:
                assert abs(radio.pop(key) - direct.pop(key)) < 1e-5
        radio.pop("location", None), direct.pop("location", None)
        assert radio == direct, message["MessageType"]


def test_reports_keep_the_accounting_identity():
    from aiswatch.ingest.aisstream_map import TYPES

    docs, counters = _documents([m for m in sample_messages() if m["MessageType"] in TYPES])
    assert counters.get("lines_in") == counters.get("sentences_decoded") == counters.get("messages_decoded") == len(docs)


def test_a_report_that_breaks_m1371_is_refused_by_reason_like_a_radio_message():
    import copy

    bad = copy.deepcopy(sample_messages()[0])
    bad["Message"]["PositionReport"]["UserID"] = 1003117694      # 10 digits
    docs, counters = _documents([bad, sample_messages()[0]])
    assert len(docs) == 1 and counters.get("rejected.bad_mmsi") == 1
    assert counters.get("lines_in") == counters.get("sentences_decoded") + counters.get("rejected")
