"""AisstreamSource against a local websocket server speaking aisstream's protocol (tests/aisstream_server.py):
subscription shape, every mapped message type decoding back to its fields, key secrecy, and
recovery from dropped, silent and rate-limited connections."""
import inspect
import logging
import threading
import time

import pytest
from pyais.messages import to_turn

from aisstream_server import FakeAisstream, meta, sample_messages
from aiswatch.ingest.aisstream_map import message_time
from aiswatch.ingest.counters import Counters
from aiswatch.sources import make_source
from aiswatch.ingest.sources.aisstream import AisstreamSource, KeyRefused
from helpers import collect

KEY = "f3e1c2d4b5a69788a1b2c3d4e5f60718293a4b5c"     # made up; the shape of an aisstream key
FAST = dict(backoff_initial=0.05, backoff_max=0.2)


def test_subscription_shape_and_every_mapped_type_decodes_to_the_original_fields():
    sample = sample_messages()
    binaries = [m for m in sample if m["MessageType"] == "AddressedBinaryMessage"]
    mapped = [m for m in sample if m["MessageType"] != "AddressedBinaryMessage"]
    messages = mapped[:1] + binaries + mapped[1:] + [{"MessageType": "PositionReport", "Message": {}}]
    counters = Counters()
    with FakeAisstream(KEY, messages) as server:
        src = AisstreamSource(KEY, [[[50, -10], [60, 20]], [[-40, 140], [-30.5, 160]]],
                              message_types=["PositionReport", "ShipStaticData"], mmsis=[259000420, "2573485"],
                              url=server.url, counters=counters, **FAST)
        lines = collect(src, 11)
    assert server.problems == []
    assert server.subscriptions == [{
        "APIKey": KEY,
        "BoundingBoxes": [[[50.0, -10.0], [60.0, 20.0]], [[-40.0, 140.0], [-30.5, 160.0]]],
        "FiltersShipMMSI": ["259000420", "002573485"],
        "FilterMessageTypes": ["PositionReport", "ShipStaticData"]}]
    assert server.subscribe_delays[0] < 3.0
    assert len(lines) == 10 and all(r.source == "aisstream" for r in lines)

    # Already decoded: station and message time from MetaData.time_utc, fields under the decoder's names.
    assert {r.station for r in lines} == {"aisstream"}
    assert lines[0].msg_time == pytest.approx(1795323600.123456)   # 2026-11-22 05:00:00.123456789 +0000 UTC
    assert lines[1].msg_time == 1795323601
    decoded = [r.fields for r in lines]
    pos, static, b18, b19, b24a, b24b, base, aton, longrange, sar = decoded

    assert pos["msg_type"] == 1 and pos["mmsi"] == 259000420 and pos["status"] == 0
    assert pos["lat"] == pytest.approx(66.02695, abs=1e-5) and pos["lon"] == pytest.approx(12.253822, abs=1e-5)
    assert (pos["speed"], pos["course"], pos["heading"], pos["second"]) == (12.5, 308.1, 235, 31)
    assert pos["turn"] == to_turn(20) and pos["accuracy"] is True and pos["radio"] == 81982

    assert static["msg_type"] == 5 and static["mmsi"] == 259000420
    assert (static["shipname"], static["callsign"], static["destination"]) == ("AUGUSTSON", "LLUX", "BODO")
    assert (static["imo"], static["ship_type"], static["draught"], static["ais_version"]) == (9123456, 60, 4.2, 2)
    assert (static["to_bow"], static["to_stern"], static["to_port"], static["to_starboard"]) == (60, 12, 6, 6)
    assert (static["month"], static["day"], static["hour"], static["minute"]) == (12, 30, 8, 15)
    assert static["epfd"] == 1

    assert b18["msg_type"] == 18 and b18["mmsi"] == 211234560
    assert b18["lat"] == pytest.approx(-33.8568, abs=1e-5) and b18["lon"] == pytest.approx(151.2153, abs=1e-5)
    assert (b18["speed"], b18["course"], b18["heading"], b18["second"]) == (6.1, 45.3, 511, 12)
    assert (b18["cs"], b18["display"], b18["dsc"], b18["band"], b18["msg22"], b18["raim"]) == (True, False, True, True, True, True)

    assert b19["msg_type"] == 19 and b19["shipname"] == "SEA BREEZE" and b19["ship_type"] == 37
    assert (b19["to_bow"], b19["to_stern"], b19["to_port"], b19["to_starboard"]) == (10, 5, 2, 3)
    assert (b19["speed"], b19["course"], b19["heading"], b19["dte"]) == (0.0, 180.0, 90, True)
    assert (b19["lat"], b19["lon"]) == (pytest.approx(40.5), pytest.approx(-73.9))

    assert (b24a["msg_type"], b24a["partno"], b24a["shipname"]) == (24, 0, "SEA BREEZE")
    assert (b24b["partno"], b24b["ship_type"], b24b["callsign"], b24b["vendorid"]) == (1, 37, "WDB1234", "SRT")
    assert (b24b["model"], b24b["serial"], b24b["to_bow"], b24b["to_starboard"]) == (3, 4242, 10, 3)

    assert base["msg_type"] == 4 and base["mmsi"] == 2573485 and base["epfd"] == 7
    assert (base["year"], base["month"], base["day"], base["hour"], base["minute"], base["second"]) == (2026, 11, 22, 4, 59, 58)
    assert (base["lat"], base["lon"]) == (pytest.approx(59.9), pytest.approx(10.7))

    assert aton["msg_type"] == 21 and aton["aid_type"] == 13 and aton["name"] == "LANGOYA N"
    assert aton["virtual_aid"] is True and aton["off_position"] is False and aton["epfd"] == 7
    assert (aton["lat"], aton["lon"]) == (pytest.approx(58.1), pytest.approx(7.9))

    assert longrange["msg_type"] == 27 and longrange["repeat"] == 3
    assert (longrange["lat"], longrange["lon"], longrange["speed"], longrange["course"]) == (-10.5, 80.25, 14, 270)

    assert sar["msg_type"] == 9 and sar["alt"] == 300 and sar["speed"] == 120 and sar["course"] == 12.5
    assert (sar["lat"], sar["lon"]) == (pytest.approx(60.1), pytest.approx(5.2))

    # Two unmapped messages of one type: both counted; the body-less PositionReport never arrives
    # before the 10th report, so it is not counted here.
    assert counters.get("source.aisstream.unmapped") == 2
    assert counters.get("source.aisstream.unmapped.AddressedBinaryMessage") == 2
    assert counters.get("source.aisstream.reports") == 10


def test_unmapped_types_logged_once_and_bad_messages_rejected(caplog):
    caplog.set_level(logging.INFO, logger="aiswatch.ingest.sources.aisstream")
    pos = sample_messages()[0]
    binary = {"MessageType": "AddressedBinaryMessage", "MetaData": meta(1), "Message": {"AddressedBinaryMessage": {}}}
    messages = [binary, binary, {"MessageType": "PositionReport", "Message": {}}, {"no": "type"},
                {"MessageType": "PositionReport", "Message": {"PositionReport": {"UserID": "x"}}}, pos]
    counters = Counters()
    with FakeAisstream(KEY, messages) as server:
        lines = collect(AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, counters=counters, **FAST), 1)
    assert len(lines) == 1
    assert counters.get("source.aisstream.unmapped.AddressedBinaryMessage") == 2
    assert counters.get("rejected.aisstream_bad_message") == 3
    assert counters.get("lines_in") == 3           # source-level rejections are lines in
    assert caplog.text.count("AddressedBinaryMessage messages are not mapped") == 1


def test_the_key_never_reaches_logs_output_repr_errors_or_counters(caplog, capsys):
    caplog.set_level(logging.DEBUG)                 # websockets logs every frame at DEBUG
    stderr_handler = logging.StreamHandler()        # and formatted output, tracebacks included, to stderr
    stderr_handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(stderr_handler)
    counters = Counters()
    try:
        # A server that rejects the key and echoes it back in its error, then a 429, a drop, a stream.
        with FakeAisstream("another-key", [], echo_key_in_errors=True) as server:
            src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, counters=counters, **FAST)
            with pytest.raises(KeyRefused) as refused:   # a key that never worked: no retrying for ever
                list(src.lines())
            logging.getLogger("test").error("%s", refused.value)
            assert server.attempts == 1
        with FakeAisstream(KEY, sample_messages()[:3], plan=["429", "drop", "stream"]) as server:
            src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, counters=counters, **FAST)
            assert len(collect(src, 4)) == 4
        with pytest.raises(ValueError) as bad_box:
            AisstreamSource(KEY, [[[0, 500], [1, 1]]])
    finally:
        logging.getLogger().removeHandler(stderr_handler)
    out, err = capsys.readouterr()
    texts = {"logs": caplog.text, "stdout": out, "stderr": err, "repr": repr(src), "error": str(bad_box.value),
             "counters": repr(counters.snapshot())}
    # the paths that could leak were really exercised
    assert "Api Key Is Not Valid: ***" in caplog.text
    assert "[payload not logged]" in caplog.text and "429" in caplog.text
    assert counters.get("source.aisstream.errors") >= 1 and counters.get("source.aisstream.rate_limited") == 1
    for where, text in texts.items():
        assert KEY not in text, where
        leaked = [KEY[i:i + 8] for i in range(len(KEY) - 7) if KEY[i:i + 8] in text]
        assert not leaked, (where, leaked)


def test_recovers_from_a_dropped_connection_and_subscribes_again(caplog):
    caplog.set_level(logging.INFO, logger="aiswatch.ingest.sources.aisstream")
    messages = sample_messages()[2:4] + sample_messages()[:1]
    counters = Counters()
    with FakeAisstream(KEY, messages, plan=["drop", "stream"], drop_after=1) as server:
        src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, counters=counters, **FAST)
        lines = collect(src, 4)
    assert len(lines) == 4
    assert server.behaviours[:2] == ["drop", "stream"]
    # re-subscribed on the new connection, with empty filters left out
    assert server.subscriptions == [{"APIKey": KEY, "BoundingBoxes": [[[0.0, 0.0], [1.0, 1.0]]]}] * 2
    assert server.problems == []
    assert counters.get("source.aisstream.disconnects") == 1
    assert counters.get("source.aisstream.reconnects") == 1
    assert "code 1006" in caplog.text


def test_recovers_from_a_silent_connection():
    counters = Counters()
    with FakeAisstream(KEY, sample_messages()[:1], plan=["silent", "stream"]) as server:
        src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, counters=counters,
                              silence_timeout=0.6, ping_interval=0.2, **FAST)
        start = time.monotonic()
        lines = collect(src, 1)
        elapsed = time.monotonic() - start
    assert len(lines) == 1
    assert counters.get("source.aisstream.silences") == 1
    assert len(server.subscriptions) == 2
    assert 0.6 <= elapsed < 5


def test_http_429_backs_off_longer_then_recovers():
    counters = Counters()
    with FakeAisstream(KEY, sample_messages()[:1], plan=["429", "stream"]) as server:
        src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, counters=counters,
                              backoff_initial=0.05, backoff_max=1.0)
        start = time.monotonic()
        assert len(collect(src, 1)) == 1
        elapsed = time.monotonic() - start
    assert counters.get("source.aisstream.rate_limited") == 1
    assert elapsed >= 0.5              # 10 x backoff_initial after a 429, where a plain retry waits 0.05-0.1 s
    assert server.behaviours[:2] == ["429", "stream"]


def test_documented_defaults_ping_20_s_silence_60_s_backoff_1_to_60_s(monkeypatch):
    """The documented numbers (docs/operations.md) are the code's defaults, for the constructor and for a config entry."""
    defaults = {name: param.default for name, param in inspect.signature(AisstreamSource).parameters.items()
                if name in ("ping_interval", "silence_timeout", "backoff_initial", "backoff_max")}
    assert defaults == {"ping_interval": 20, "silence_timeout": 60, "backoff_initial": 1, "backoff_max": 60}
    monkeypatch.setenv("AISSTREAM_API_KEY", KEY)
    for src in (AisstreamSource(KEY, [[[0, 0], [1, 1]]]),
                make_source({"type": "aisstream", "bboxes": [[[0, 0], [1, 1]]]}, Counters())):
        assert (src.ping_interval, src.silence_timeout) == (20, 60)
        assert (src._backoff.initial, src._backoff.maximum) == (1.0, 60.0)
        assert src._rate_limit_wait == 10.0            # after a 429: 10 x the first delay
        assert src.url == "wss://stream.aisstream.io/v0/stream"
    # aisstream closes a connection whose subscription is late: the test server holds it to the
    # same 3 s (and every test here checks no subscription came late, server.problems == [])
    assert FakeAisstream(KEY, []).subscribe_deadline == 3.0


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_good_connection():
    """Against the local server, scaled down (first delay 0.2 s, cap 0.8 s): four refusals wait
    0.2-0.4, 0.4-0.8, 0.8, 0.8 s; a connection that delivers a message and then drops resets the
    back-off (0.2-0.4 s again), the next refusal doubles it (0.4-0.8 s), then the stream."""
    counters = Counters()
    plan = ["refuse"] * 4 + ["drop", "refuse", "stream"]
    with FakeAisstream(KEY, sample_messages()[:1], plan=plan, drop_after=1) as server:
        src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, counters=counters,
                              backoff_initial=0.2, backoff_max=0.8)
        lines = collect(src, 2)
    assert len(lines) == 2                       # one from the dropped connection, one from the stream
    connections = server.connections
    assert [c["behaviour"] for c in connections] == plan
    # the wait between one attempt's end and the next attempt's start, as the server saw them
    gaps = [after["opened"] - before["closed"] for before, after in zip(connections, connections[1:])]
    ranges = [(0.2, 0.4), (0.4, 0.8), (0.8, 0.8), (0.8, 0.8), (0.2, 0.4), (0.4, 0.8)]
    slack = 0.25                                 # connecting, a busy machine; far below one doubling
    assert all(low <= gap <= high + slack for gap, (low, high) in zip(gaps, ranges)), list(zip(gaps, ranges))
    assert counters.get("source.aisstream.connect_failures") == 5
    assert counters.get("source.aisstream.disconnects") == 1
    assert counters.get("source.aisstream.reconnects") == 6
    assert counters.get("source.aisstream.rate_limited") == 0
    assert len(server.subscriptions) == 2 and max(server.subscribe_delays) < 0.5    # at once, well within 3 s


def test_pings_go_out_every_ping_interval_on_a_silent_connection():
    with FakeAisstream(KEY, [], plan=["silent"]) as server:
        src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, ping_interval=0.2, **FAST)
        threading.Timer(1.5, src.close).start()
        assert list(src.lines()) == []
    pings = server.pings
    assert 5 <= len(pings) <= 8, pings          # 1.5 s / 0.2 s, less the first interval
    intervals = [b - a for a, b in zip(pings, pings[1:])]
    assert all(0.15 <= i <= 0.4 for i in intervals), intervals
    assert len(server.subscriptions) == 1       # answered pings: the connection stayed up


def test_close_ends_lines_on_a_silent_connection():
    with FakeAisstream(KEY, [], plan=["silent"]) as server:
        src = AisstreamSource(KEY, [[[0, 0], [1, 1]]], url=server.url, **FAST)
        threading.Timer(0.5, src.close).start()
        start = time.monotonic()
        assert list(src.lines()) == []
        assert time.monotonic() - start < 2.0


def test_bad_arguments_are_clear_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="latitude first"):
        AisstreamSource(KEY, [[[10, 200], [20, 210]]])
    with pytest.raises(ValueError, match=r"\[\[lat, lon\], \[lat, lon\]\]"):
        AisstreamSource(KEY, [[10, 20, 30, 40]])
    with pytest.raises(ValueError, match="at least one bounding box"):
        AisstreamSource(KEY, [])
    with pytest.raises(ValueError, match="unknown aisstream message types"):
        AisstreamSource(KEY, [[[0, 0], [1, 1]]], message_types=["PositionReports"])
    with pytest.raises(ValueError, match="9 digits"):
        AisstreamSource(KEY, [[[0, 0], [1, 1]]], mmsis=["12345678901"])
    with pytest.raises(ValueError, match="API key"):
        AisstreamSource("  ", [[[0, 0], [1, 1]]])
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    monkeypatch.delenv("AISSTREAM_API_KEY", raising=False)
    src = make_source({"type": "aisstream", "bboxes": [[[0, 0], [1, 1]]], "types": ["PositionReport"],
                       "mmsis": [211000001], "api_key_file": str(key_file), "silence_timeout": 5}, Counters())
    assert src._subscription()["APIKey"] == KEY and src.silence_timeout == 5
    assert KEY not in repr(src)


def test_message_time_formats():
    assert message_time({"time_utc": "2026-11-22 05:00:00.123456789 +0000 UTC"}) == pytest.approx(1795323600.123456)
    assert message_time({"time_utc": "2026-11-22 07:00:00 +0200 CEST"}) == 1795323600
    assert message_time({"time_utc": "2026-11-22T05:00:00Z"}) == 1795323600
    assert message_time({"time_utc": "yesterday"}) is None
    assert message_time({}) is None and message_time(None) is None
