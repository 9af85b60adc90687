"""aisstream messages mapped to NMEA go through the same parser, assembler, decoder and document
builder as radio lines and come out as the documents their JSON describes."""
from aisstream_server import sample_messages
from aiswatch.ingest.aisstream_map import AisstreamEncoder
from aiswatch.ingest.assembler import FragmentAssembler
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.decoder import decode
from aiswatch.ingest.documents import build_document
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import parse_line


def _documents(messages):
    counters = Counters()
    assembler = FragmentAssembler(counters)
    encoder = AisstreamEncoder()
    docs = []
    for message in messages:
        for text in encoder.lines(message):
            sentence = parse_line(Line(text, 1795323700.0, "aisstream"), counters)
            assert sentence is not None, text
            group = assembler.push(sentence)
            if group is not None:
                docs.append(build_document(group, decode(group, counters)))
    return docs, counters


def test_position_and_static_documents_match_the_json():
    sample = sample_messages()
    docs, counters = _documents(sample[:2])
    pos, static = docs
    assert pos["@timestamp"] == "2026-11-22T05:00:00.000Z"        # from MetaData.time_utc, not receive time
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
    from aiswatch.ingest.aisstream_map import BadMessage, pyais_fields
    report = copy.deepcopy(sample_messages()[0])
    body = report["Message"]["PositionReport"]
    del body["Latitude"], body["Longitude"], body["Sog"]
    docs, _ = _documents([report])
    assert "location" not in docs[0] and "lat" not in docs[0] and "sog" not in docs[0]
    assert docs[0]["cog"] == 308.1

    static = copy.deepcopy(sample_messages()[1])
    static["Message"]["ShipStaticData"]["Name"] = "Næringsfisk ~1"
    assert pyais_fields(static)["shipname"] == "N?RINGSFISK ?1"
    docs, _ = _documents([static])
    assert docs[0]["name"] == "N?RINGSFISK ?1"

    static["Message"]["ShipStaticData"]["ImoNumber"] = "not a number"
    with pytest.raises(BadMessage, match="bad field value"):
        pyais_fields(static)
