"""ingest.nmea: every line ends as a Sentence or as a rejection counted by reason."""
from __future__ import annotations

import logging
from functools import reduce
from operator import xor

import pytest
from pyais.encode import encode_dict

from aiswatch.ingest import nmea
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import Sentence, parse_line, parse_tag_block

T0 = 1_790_000_000.0
POSITION = "!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26"   # a real class A report (gpsd test data)


def checksum(body: str) -> str:
    return f"{reduce(xor, body.encode(), 0):02X}"


def sentence(body: str, start: str = "!") -> str:
    """``body`` (without start character and checksum) as a complete sentence."""
    return f"{start}{body}*{checksum(body)}"


def tag(body: str) -> str:
    return f"\\{body}*{checksum(body)}\\"


def parse(text: str, counters: Counters | None = None, source: str = "test", offset: int | None = None):
    counters = counters if counters is not None else Counters()
    return parse_line(Line(text, T0, source, offset), counters), counters


def rejected(counters: Counters) -> dict[str, float]:
    return {k[len("rejected."):]: v for k, v in counters.snapshot().items() if k.startswith("rejected.")}


def test_valid_sentence_fields():
    s, counters = parse(POSITION, offset=7)
    assert isinstance(s, Sentence)
    assert (s.raw, s.talker, s.formatter) == (POSITION, "AI", "VDM")
    assert (s.total, s.number, s.seq_id, s.channel, s.fill) == (1, 1, None, "A", 0)
    assert s.payload == "13aEOK?P00PD2wVMdLDRhgvL289?"
    assert (s.msg_time, s.station, s.group, s.source, s.received_at, s.offset) == (None, None, None, "test", T0, 7)
    assert dict(s.tags) == {}
    assert counters.get("sentences_in") == 1 and counters.get("rejected") == 0


@pytest.mark.parametrize("talker", ["AI", "AB", "AD", "AN", "AR", "AS", "AT", "AX", "BS", "SA"])
@pytest.mark.parametrize("formatter", ["VDM", "VDO"])
@pytest.mark.parametrize("start", ["!", "$"])
def test_talkers_formatters_and_start_characters(talker, formatter, start):
    text = sentence(f"{talker}{formatter},1,1,,B,13aEOK?P00PD2wVMdLDRhgvL289?,0", start)
    s, _ = parse(text)
    assert s is not None and (s.talker, s.formatter, s.channel) == (talker, formatter, "B")


def test_multi_fragment_fields_and_line_endings():
    parts = encode_dict({"type": 5, "mmsi": 366123456, "shipname": "X", "destination": "Y"},
                        talker_id="AI", radio_channel="B", seq_id=3)
    assert len(parts) == 2
    for number, text in enumerate(parts, 1):
        s, _ = parse(text + "\r\n")    # a stray CRLF is not part of the sentence
        assert (s.total, s.number, s.seq_id, s.channel) == (2, number, 3, "B")
        assert s.raw == text


def test_tag_block_station_time_group_and_unknown_fields():
    text = tag("s:2573485,c:1790000123,g:1-2-42,x:-71.5") + POSITION
    s, counters = parse(text)
    assert s.raw == POSITION
    assert s.station == "2573485" and s.msg_time == 1790000123.0 and s.group == "1-2-42"
    assert s.tags["x"] == "-71.5"              # kept for later (e.g. our demodulator's signal data)
    assert counters.get("rejected") == 0


def test_tag_block_time_in_milliseconds_and_without_checksum():
    s, _ = parse(tag("c:1790000123456") + POSITION)
    assert s.msg_time == pytest.approx(1790000123.456)
    s, _ = parse("\\s:rx1,c:1790000000\\" + POSITION)     # checksum is optional in practice
    assert s.station == "rx1" and s.msg_time == 1790000000.0


def test_time_prefix_and_tag_block_precedence():
    s, _ = parse(f"1790000100.5 {POSITION}")
    assert s.msg_time == 1790000100.5 and s.raw == POSITION
    s, _ = parse(f"2026-09-21T12:00:00Z,{POSITION}")
    assert s.msg_time == 1789992000.0
    s, _ = parse(f"1790000100 {tag('c:1790000200')}{POSITION}")
    assert s.msg_time == 1790000200.0         # the tag block's time wins over the logger's


def test_parse_tag_block_checksum():
    assert parse_tag_block("s:a,c:1") is not None
    assert parse_tag_block(f"s:a,c:1*{checksum('s:a,c:1')}") == {"s": "a", "c": "1"}
    assert parse_tag_block("s:a,c:1*00") is None
    assert parse_tag_block("s:a,,c:1") is None


def _flip(text: str, index: int) -> str:
    return text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1:]


@pytest.mark.parametrize("text,reason", [
    ("", "empty"),
    ("   \r\n", "empty"),
    ("hello world", "not_nmea"),
    ("1790000000 hello", "not_nmea"),
    ("0001-01-01T00:00:00 " + POSITION, "bad_time"),
    ("#AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26", "not_nmea"),
    (_flip(POSITION, 20), "bad_checksum"),
    (POSITION[:-3], "bad_checksum"),                               # no checksum at all
    (POSITION[:-2] + "ZZ", "bad_checksum"),
    (POSITION + "garbage", "bad_checksum"),
    (sentence("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "$"), "not_vdm"),
    (sentence("AIVDX,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "not_vdm"),
    (sentence("aiVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "bad_field"),
    (sentence("AIVDM,1,0,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "bad_field"),   # fragment 0
    (sentence("AIVDM,2,3,1,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "bad_field"),  # number > total
    (sentence("AIVDM,10,1,1,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "bad_field"), # total > 9
    (sentence("AIVDM,0,0,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "bad_field"),
    (sentence("AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,6"), "bad_field"),   # fill bits 6
    (sentence("AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,"), "bad_field"),
    (sentence("AIVDM,1,1,x,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "bad_field"),
    (sentence("AIVDM,1,1,,Q,13aEOK?P00PD2wVMdLDRhgvL289?,0"), "bad_field"),
    (sentence("AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?"), "bad_field"),     # a field missing
    (sentence("AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0,0"), "bad_field"),
    (sentence("AIVDM,1,1,,A,,0"), "bad_payload"),
    (sentence("AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289X,0"), "bad_payload"),  # X is not 6-bit armour
    (sentence("AIVDM,1,1,,A,13aEOK?P00PD2wVMd LDRhgvL289,0"), "bad_payload"),
    (sentence("AIVDM,1,1,,A," + "1" * 201 + ",0"), "bad_payload"),
    ("\\s:a,c:1790000000*00\\" + POSITION, "bad_tag_block"),                 # tag checksum wrong
    ("\\s:a,c:1790000000" + POSITION, "bad_tag_block"),                      # unterminated
    (tag("s:a,c:soon") + POSITION, "bad_tag_block"),
    (tag("c:12") + POSITION, "bad_tag_block"),                                # not a plausible time
    (tag("novalue") + POSITION, "bad_tag_block"),
])
def test_rejections_are_counted_by_reason(text, reason):
    s, counters = parse(text)
    assert s is None
    assert rejected(counters) == {reason: 1}
    assert counters.get("rejected") == 1 and counters.get("sentences_in") == 1


def test_every_line_counted_in_a_mixed_stream():
    counters = Counters()
    lines = [POSITION, "junk", _flip(POSITION, 30), POSITION, "", sentence("GPRMC,1,2,3", "$")]
    results = [parse(text, counters)[0] for text in lines]
    assert sum(r is not None for r in results) == 2
    assert counters.get("sentences_in") == len(lines)
    assert counters.get("rejected") == 4
    assert rejected(counters) == {"not_nmea": 1, "bad_checksum": 1, "empty": 1, "not_vdm": 1}


@pytest.fixture
def fresh_log_limit(monkeypatch):
    """A rejection log limiter with its whole burst left, whatever ran before."""
    monkeypatch.setattr(nmea, "_log_reject", nmea.RateLimitedLog(nmea.log))


def test_rejection_logging_is_rate_limited(caplog, fresh_log_limit):
    counters = Counters()
    with caplog.at_level(logging.DEBUG, logger="aiswatch.ingest.nmea"):
        for i in range(2000):
            parse(f"garbage line {i}", counters)
    assert counters.get("rejected.not_nmea") == 2000
    records = [r for r in caplog.records if r.name == "aiswatch.ingest.nmea"]
    assert 1 <= len(records) <= 25
    assert "garbage line 0" in records[0].getMessage()


def test_huge_garbage_line_is_rejected_and_logged_short(caplog, fresh_log_limit):
    counters = Counters()
    with caplog.at_level(logging.DEBUG, logger="aiswatch.ingest.nmea"):
        s, _ = parse("!" + "A" * 100_000, counters)
    assert s is None and counters.get("rejected.bad_checksum") == 1
    records = [r for r in caplog.records if r.name == "aiswatch.ingest.nmea"]
    assert len(records) == 1 and len(records[0].getMessage()) < 400


def test_checksum_is_the_xor_of_the_bytes_for_any_text():
    """Both forms (the loop when compiled, the big-int folds as Python) against the definition."""
    import functools
    import operator
    import random

    rng = random.Random(5)
    alphabet = "".join(chr(c) for c in range(32, 127)) + "é\u20ac"
    for length in list(range(0, 70)) + [255, 256, 257, 300, 1000]:
        text = "".join(rng.choice(alphabet) for _ in range(length))
        data = text.encode("latin-1", "replace")
        assert nmea.nmea_checksum(text) == functools.reduce(operator.xor, data, 0), text
