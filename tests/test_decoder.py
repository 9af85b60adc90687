"""ingest.decoder: the same fields as pyais, plain values, and every failure counted."""
from __future__ import annotations

import random

import pyais
import pytest
from pyais.encode import encode_dict

from aiswatch.ingest.assembler import FragmentAssembler, SentenceGroup
from aiswatch.ingest.counters import Counters
from ais_vectors import (BORDER_LENGTHS, EVERY_TYPE, MALFORMED, lines_of, message_bits, resized, sentence,
                         with_field)
from aiswatch.ingest.decoder import decode, message_fields
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import parse_line

T0 = 1_790_000_000.0


def group_of(lines: list[str], counters: Counters) -> SentenceGroup:
    assembler = FragmentAssembler(counters)
    group = None
    for text in lines:
        sentence = parse_line(Line(text, T0, "test"), counters)
        assert sentence is not None, text
        group = assembler.push(sentence)
    assert group is not None
    return group


def plain(value) -> bool:
    return type(value) in (int, float, str, bool, bytes) or value is None


MESSAGES = [
    {"type": 1, "mmsi": 244670316, "status": 7, "turn": 25, "speed": 11.5, "lat": 52.1, "lon": 4.2,
     "course": 123.4, "heading": 120, "accuracy": 1},
    {"type": 2, "mmsi": 244670317, "status": 0, "lat": -33.9, "lon": 18.4},
    {"type": 3, "mmsi": 244670318, "status": 5, "lat": 1.25, "lon": 103.8},
    {"type": 4, "mmsi": 2573485, "year": 2026, "month": 9, "day": 21, "hour": 12, "lat": 59.9, "lon": 10.7},
    {"type": 5, "mmsi": 366123456, "imo": 9876543, "callsign": "WDC1234", "shipname": "EVER GIVEN",
     "ship_type": 70, "to_bow": 300, "to_stern": 100, "to_port": 30, "to_starboard": 29,
     "month": 3, "day": 23, "hour": 7, "minute": 40, "draught": 15.7, "destination": "ROTTERDAM"},
    {"type": 9, "mmsi": 111232511, "alt": 300, "speed": 120, "lat": 54.0, "lon": 7.0, "course": 90},
    {"type": 11, "mmsi": 2573486, "year": 2026, "lat": 60.0, "lon": 5.3},
    {"type": 18, "mmsi": 211000001, "speed": 5.2, "lat": 54.3, "lon": 10.1, "course": 270, "heading": 511},
    {"type": 19, "mmsi": 211000002, "speed": 3.1, "lat": 54.3, "lon": 10.2, "shipname": "SAILOR",
     "ship_type": 36, "to_bow": 8, "to_stern": 4, "to_port": 2, "to_starboard": 2},
    {"type": 21, "mmsi": 992111111, "aid_type": 30, "name": "NORTH CARDINAL", "lat": 53.5, "lon": 8.1},
    {"type": 24, "mmsi": 211000003, "partno": 0, "shipname": "LITTLE BOAT"},
    {"type": 24, "mmsi": 211000003, "partno": 1, "ship_type": 37, "callsign": "DB1234",
     "to_bow": 6, "to_stern": 3, "to_port": 1, "to_starboard": 2},
    {"type": 27, "mmsi": 244670319, "status": 0, "lat": 52.2, "lon": 4.1, "speed": 12, "course": 45},
    {"type": 8, "mmsi": 244670320, "dac": 1, "fi": 31},
]


@pytest.mark.parametrize("data", MESSAGES, ids=lambda d: f"type{d['type']}")
def test_same_fields_as_pyais_as_plain_values(data):
    lines = encode_dict(data, talker_id="AI", radio_channel="B", seq_id=2)
    counters = Counters()
    fields = decode(group_of(lines, counters), counters)
    expected = pyais.decode(*lines).asdict(enum_as_int=True)
    if "turn" in expected:
        expected["turn"] = float(expected["turn"])
    assert fields == expected
    assert all(plain(v) for v in fields.values()), fields
    assert counters.get("messages_decoded") == 1
    assert counters.get("sentences_decoded") == len(lines)
    assert counters.get("rejected") == 0


def test_real_world_sentences():
    counters = Counters()
    fields = decode(group_of(["!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26"], counters), counters)
    assert fields["mmsi"] == 244670316 and fields["lat"] == 51.89475 and fields["lon"] == 4.379285
    assert fields["status"] == 15 and fields["turn"] == -128.0 and fields["heading"] == 511
    lines = ["!AIVDM,2,1,4,A,55O0W7`00001L@gCWGA2uItLth@DqtL5@F22220j1h742t0Ht0000000,0*08",
             "!AIVDM,2,2,4,A,000000000000000,2*20"]
    fields = decode(group_of(lines, counters), counters)
    assert (fields["mmsi"], fields["shipname"], fields["callsign"], fields["ship_type"]) == (
        368060190, "P/V_GOLDEN_GATE", "WDK4954", 50)
    assert counters.get("sentences_decoded") == 3 and counters.get("messages_decoded") == 2


def set_bits(payload: str, fill: int, offset: int, width: int, value: int) -> str:
    """``payload`` with ``width`` bits at ``offset`` replaced by ``value`` (6-bit armour both ways)."""
    n_bits = len(payload) * 6
    number = 0
    for ch in payload:
        v = ord(ch) - 48
        number = number << 6 | (v - 8 if v > 40 else v)
    shift = n_bits - offset - width
    number = number & ~(((1 << width) - 1) << shift) | value << shift
    chars = []
    for i in range(len(payload)):
        v = number >> (n_bits - 6 * (i + 1)) & 63
        chars.append(chr(v + 48 if v < 40 else v + 56))
    return "".join(chars)


def test_reserved_ship_type_code_is_kept_as_sent():
    """pyais's ShipType enum folds reserved codes (26 -> 25, 15 -> 0, ...); the 8 bits as sent are kept."""
    first, second = encode_dict({"type": 5, "mmsi": 366000001, "ship_type": 70}, talker_id="AI", seq_id=1)
    payload = first.split(",")[5] + second.split(",")[5]
    fill = int(second.split(",")[6][0])
    for code in (26, 15, 150):
        patched = set_bits(payload, fill, 232, 8, code)
        cut = len(first.split(",")[5])
        lines = [sentence(f"AIVDM,2,1,1,A,{patched[:cut]},0"), sentence(f"AIVDM,2,2,1,A,{patched[cut:]},{fill}")]
        assert int(pyais.decode(*lines).ship_type) != code
        counters = Counters()
        assert decode(group_of(lines, counters), counters)["ship_type"] == code


@pytest.mark.parametrize("payload,fill,reason", [
    ("13aEOK", 0, "short_payload"),                     # 36 bits: no room for the MMSI
    ("13aEOK?", 5, "short_payload"),                    # 42 - 5 fill = 37 bits
    ("w3aEOK?P00PD2wVMdLDRhgvL289?", 0, "unknown_type"),  # type 63
    ("N3aEOK?P00PD2wVMdLDRhgvL289?", 0, "unknown_type"),  # type 30
])
def test_undecodable_payloads_are_counted(payload, fill, reason):
    counters = Counters()
    group = group_of([sentence(f"AIVDM,1,1,,A,{payload},{fill}")], counters)
    assert decode(group, counters) is None
    assert counters.get(f"rejected.{reason}") == 1 and counters.get("rejected") == 1
    assert counters.get("messages_decoded") == 0 and counters.get("sentences_decoded") == 0


def test_type_24_part_c_is_refused_for_every_sentence_of_the_group():
    # type 24 with part number 2 does not exist (pyais raises on it): refused before decoding,
    # each sentence counted
    data = encode_dict({"type": 24, "mmsi": 211000004, "partno": 1, "callsign": "X"}, talker_id="AI")[0]
    payload = data.split(",")[5]
    bits = pyais.messages.bit_vector(payload.encode(), 0)
    assert bits.get(38, 2) == 1
    broken = set_bits(payload, 0, 38, 2, 2)
    half = len(broken) // 2
    lines = [sentence(f"AIVDM,2,1,3,A,{broken[:half]},0"), sentence(f"AIVDM,2,2,3,A,{broken[half:]},0")]
    with pytest.raises(Exception):
        pyais.decode(*lines)
    counters = Counters()
    assert decode(group_of(lines, counters), counters) is None
    assert counters.get("rejected.unknown_part") == 2 and counters.get("rejected") == 2


class _Unreadable:
    """A pyais message class that cannot read any payload (what a pyais bug would look like)."""

    @classmethod
    def from_vector(cls, bits):
        raise ValueError("cannot read this")


def test_pyais_exception_counts_every_sentence_of_the_group(monkeypatch):
    """No valid payload makes pyais raise (tests/test_properties.py feeds random ones), but a pyais
    that does must cost the message, counted for each of its sentences, never the stream."""
    lines = encode_dict({"type": 5, "mmsi": 366000002, "shipname": "UNREADABLE"}, talker_id="AI", seq_id=3)
    monkeypatch.setitem(pyais.messages.MSG_CLASS, 5, _Unreadable)
    with pytest.raises(Exception):
        pyais.decode(*lines)
    counters = Counters()
    assert decode(group_of(lines, counters), counters) is None
    assert counters.get("rejected.decode_error") == 2
    assert counters.get("decode_errors") == 1


def test_message_fields_matches_asdict_for_every_class():
    """The generated field readers agree with pyais's own asdict for every message class."""
    checked = set()
    for msg_type in range(1, 28):
        for extra in ({}, {"partno": 1}, {"dac": 1, "fi": 31}, {"dac": 200, "fi": 10}):
            try:
                lines = encode_dict({"type": msg_type, "mmsi": 123456789, "dest_mmsi": 1, **extra}, talker_id="AI")
                msg = pyais.decode(*lines)
            except Exception:
                continue
            expected = msg.asdict(enum_as_int=True)
            if expected.get("turn") is not None:
                expected["turn"] = float(expected["turn"])
            assert message_fields(msg) == expected, (msg_type, extra)
            checked.add(type(msg).__name__)
    assert len(checked) >= 25


def _armor(value: int, n_chars: int) -> str:
    """``value`` as ``n_chars`` characters of AIS 6-bit armour (the most significant first)."""
    chars = []
    for shift in range((n_chars - 1) * 6, -1, -6):
        six = (value >> shift) & 63
        chars.append(chr(six + 48 if six < 40 else six + 56))
    return "".join(chars)


@pytest.mark.parametrize("msg_type", [1, 2, 3, 18])
def test_position_reports_give_exactly_what_pyais_gives(msg_type):
    """Types 1, 2, 3, 18 of 168 bits are decoded without pyais's message object: the same dict
    (values, types, key order) as ``message_fields`` of pyais's own decoding, for random payloads
    and every value of the 8-bit rate of turn, the status and the manoeuvre indicator."""
    from pyais.bit_vector import bit_vector
    from pyais.messages import MSG_CLASS

    rng = random.Random(msg_type)
    counters = Counters()
    mmsi_bits = 0x3FFFFFFF << 130    # bits 8-37; an MMSI of 9 digits at most
    values = [(msg_type << 162) | (rng.getrandbits(162) & ~mmsi_bits) | (rng.randint(0, 999_999_999) << 130)
              for _ in range(2000)]
    if msg_type != 18:   # every turn (bits 118-125), status (126-129) and manoeuvre (23-24) value
        base = values[0] & ~((0xFF << 118) | (0xF << 126) | (0x3 << 23))
        values += [base | (turn << 118) | ((turn & 15) << 126) | ((turn & 3) << 23) for turn in range(256)]
    for value in values:
        payload = _armor(value, 28)
        group = group_of([sentence(f"AIVDM,1,1,,A,{payload},0")], counters)
        expected = message_fields(MSG_CLASS[msg_type].from_vector(bit_vector(payload.encode(), 0)))
        got = decode(group, counters)
        assert got == expected and list(got) == list(expected), payload
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()], payload
        assert all(plain(v) for v in got.values())
    assert counters.get("messages_decoded") == len(values) and counters.get("rejected") == 0


# --- validation by ITU-R M.1371: what is refused, and every valid message of every type still decodes ---

def _decodes(lines: list[str]) -> dict | None:
    counters = Counters()
    fields = decode(group_of(lines, counters), counters)
    assert (counters.get("rejected") == 0) == (fields is not None)
    return fields


def test_every_valid_message_of_every_type_decodes():
    types = set()
    for data in EVERY_TYPE:
        bits = message_bits(data)
        fields = _decodes(lines_of(bits))
        assert fields is not None, (data, len(bits))
        assert (fields["msg_type"], fields["mmsi"]) == (data["type"], data["mmsi"])
        types.add(data["type"])
    assert types == set(range(1, 28))
    by_type: dict[int, dict] = {}
    for data in EVERY_TYPE:
        by_type.setdefault(data["type"], data)      # type 24: part A
    for msg_type, n_bits in BORDER_LENGTHS:
        fields = _decodes(lines_of(resized(message_bits(by_type[msg_type]), n_bits)))
        assert fields is not None and fields["msg_type"] == msg_type, (msg_type, n_bits)


def test_dgnss_reference_position_in_degrees():
    """Type 17 carries its position in 1/10 minute, signed; pyais reads unsigned minutes."""
    for lat, lon in ((52.1, 4.2), (-33.9, -70.65), (91.0, 181.0)):
        bits = message_bits({"type": 17, "mmsi": 2442001})
        bits = with_field(bits, 40, 18, round(lon * 600) & 0x3FFFF)
        bits = with_field(bits, 58, 17, round(lat * 600) & 0x1FFFF)
        fields = _decodes(lines_of(bits))
        assert (fields["lat"], fields["lon"]) == (lat, lon)


@pytest.mark.parametrize("bits,reason", [(b, r) for _, b, r in MALFORMED], ids=[name for name, _, _ in MALFORMED])
def test_malformed_messages_are_refused_by_reason(bits, reason):
    lines = lines_of(bits)
    counters = Counters()
    assert decode(group_of(lines, counters), counters) is None
    assert counters.get(f"rejected.{reason}") == counters.get("rejected") == len(lines)
    assert counters.get("messages_decoded") == 0


def test_random_payloads_of_valid_length_never_make_pyais_raise():
    """What passes the checks, pyais decodes: random bits at every type's allowed lengths (the
    message's MMSI and type 24 part put right) end as a message, never as a decode_error."""
    from aiswatch.ingest.decoder import BIT_LENGTHS

    rng = random.Random(27)
    counters = Counters()
    decoded = 0
    for msg_type, (least, most) in BIT_LENGTHS.items():
        for _ in range(150):
            n_bits = 96 if msg_type == 27 else rng.randint(least, 168 if msg_type == 24 else most)
            bits = "".join(rng.choice("01") for _ in range(n_bits))
            bits = with_field(bits, 0, 6, msg_type)
            bits = with_field(bits, 8, 30, rng.randint(0, 999_999_999))
            if msg_type == 24:
                bits = with_field(bits, 38, 2, 0 if n_bits <= 168 and rng.random() < 0.5 else 1)
                bits = resized(bits, 160 if bits[38:40] == "00" else 168)
            if msg_type in (25, 26):
                bits = with_field(bits, 38, 2, 0)     # broadcast, unstructured: any length in range
            fields = decode(group_of(lines_of(bits), counters), counters)
            assert fields is not None and fields["msg_type"] == msg_type, (msg_type, len(bits))
            decoded += 1
    assert counters.get("rejected") == 0 and counters.get("messages_decoded") == decoded
