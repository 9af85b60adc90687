"""AIS test vectors shared by the decoder tests and the replay tests: messages of every type 1-27
as bits, the lengths real transmitters send, and malformed cases with the reason each is refused."""
from __future__ import annotations

from functools import reduce
from operator import xor

from pyais import encode_dict


def sentence(body: str) -> str:
    return f"!{body}*{reduce(xor, body.encode(), 0):02X}"


def to_bits(payload: str, fill: int) -> str:
    bits = "".join(f"{(ord(c) - 48) - (8 if ord(c) - 48 > 40 else 0):06b}" for c in payload)
    return bits[:len(bits) - fill]


def from_bits(bits: str) -> tuple[str, int]:
    fill = -len(bits) % 6
    bits += "0" * fill
    values = [int(bits[i:i + 6], 2) for i in range(0, len(bits), 6)]
    return "".join(chr(v + 48 if v < 40 else v + 56) for v in values), fill


def message_bits(data: dict) -> str:
    lines = encode_dict({"msg_type": data["type"], **data}, talker_id="AI")   # pyais writes type 2 as 1 otherwise
    return to_bits("".join(line.split(",")[5] for line in lines), int(lines[-1].split(",")[6][0]))


def lines_of(bits: str, seq_id: int = 1) -> list[str]:
    """The bits as AIVDM sentences of at most 60 payload characters."""
    payload, fill = from_bits(bits)
    parts = [payload[i:i + 60] for i in range(0, len(payload), 60)]
    if len(parts) == 1:
        return [sentence(f"AIVDM,1,1,,A,{payload},{fill}")]
    return [sentence(f"AIVDM,{len(parts)},{k},{seq_id},A,{part},{fill if k == len(parts) else 0}")
            for k, part in enumerate(parts, 1)]


def with_field(bits: str, offset: int, width: int, value: int) -> str:
    return bits[:offset] + f"{value:0{width}b}" + bits[offset + width:]


def resized(bits: str, n_bits: int) -> str:
    """Cut to ``n_bits``, or pad with zero bits (what a transmitter sending a longer frame does)."""
    return (bits + "0" * n_bits)[:n_bits]


MMSI = 244670321
EVERY_TYPE = [
    {"type": 1, "mmsi": MMSI, "lat": 52.1, "lon": 4.2}, {"type": 2, "mmsi": MMSI}, {"type": 3, "mmsi": MMSI},
    {"type": 4, "mmsi": 2442001, "year": 2026}, {"type": 5, "mmsi": MMSI, "shipname": "EVERY TYPE"},
    {"type": 6, "mmsi": MMSI, "dest_mmsi": 244670322, "dac": 235, "fid": 10, "data": b"\x01\x02"},
    {"type": 7, "mmsi": MMSI, "mmsi1": 244670322}, {"type": 8, "mmsi": MMSI, "dac": 1, "fid": 31, "data": b"\x05" * 30},
    {"type": 9, "mmsi": 111244001, "alt": 300}, {"type": 10, "mmsi": MMSI, "dest_mmsi": 2442001},
    {"type": 11, "mmsi": MMSI}, {"type": 12, "mmsi": MMSI, "dest_mmsi": 244670322, "text": "SAFETY FIRST"},
    {"type": 13, "mmsi": MMSI, "mmsi1": 244670322}, {"type": 14, "mmsi": MMSI, "text": "SART ACTIVE"},
    {"type": 15, "mmsi": 2442001, "mmsi1": MMSI, "type1_1": 5}, {"type": 16, "mmsi": 2442001, "mmsi1": MMSI},
    {"type": 17, "mmsi": 2442001, "lon": 4.2, "lat": 52.1, "data": b"\x00" * 10}, {"type": 18, "mmsi": MMSI},
    {"type": 19, "mmsi": MMSI, "shipname": "EXTENDED B"}, {"type": 20, "mmsi": 2442001, "offset1": 100},
    {"type": 21, "mmsi": 992446001, "name": "BUOY WITH A VERY LONG NAME"}, {"type": 22, "mmsi": 2442001},
    {"type": 23, "mmsi": 2442001}, {"type": 24, "mmsi": MMSI, "partno": 0, "shipname": "PART A"},
    {"type": 24, "mmsi": MMSI, "partno": 1, "callsign": "PB1234"},
    {"type": 25, "mmsi": MMSI, "data": b"\x01" * 4},
    {"type": 25, "mmsi": MMSI, "addressed": 1, "dest_mmsi": 1, "data": b"\x01"},
    {"type": 25, "mmsi": MMSI, "structured": 1, "app_id": 7, "data": b"\x01"},
    {"type": 26, "mmsi": MMSI, "data": b"\x02" * 40}, {"type": 26, "mmsi": MMSI, "addressed": 1, "structured": 1,
                                                     "dest_mmsi": 1, "app_id": 7, "data": b"\x02" * 40},
    {"type": 27, "mmsi": MMSI, "lat": 52.2, "lon": 4.1},
]
# lengths real transmitters send besides the nominal one
BORDER_LENGTHS = [(1, 163), (1, 204), (3, 204), (5, 420), (5, 422), (24, 160), (27, 168), (21, 272), (21, 360),
                  (4, 176), (18, 176)]


def _type(msg_type: int, n_bits: int | None = None, **fields) -> str:
    bits = message_bits({"type": 1, "mmsi": MMSI, **fields})
    bits = with_field(bits, 0, 6, msg_type)
    return bits if n_bits is None else resized(bits, n_bits)


MALFORMED = [
    ("type 28", _type(28), "unknown_type"),
    ("type 0 (pyais reads it as type 1)", _type(0), "unknown_type"),
    ("type 63", _type(63), "unknown_type"),
    ("10-digit MMSI, position report", message_bits({"type": 1, "mmsi": 1003117694}), "bad_mmsi"),
    ("10-digit MMSI, static data", message_bits({"type": 5, "mmsi": 1003117694}), "bad_mmsi"),
    ("largest 30-bit MMSI", message_bits({"type": 18, "mmsi": 2 ** 30 - 1}), "bad_mmsi"),
    ("type 23 of 58 bits", resized(message_bits({"type": 23, "mmsi": MMSI}), 58), "bad_length"),
    ("type 23 of 88 bits", resized(message_bits({"type": 23, "mmsi": MMSI}), 88), "bad_length"),
    ("type 23 of 192 bits", resized(message_bits({"type": 23, "mmsi": MMSI}), 192), "bad_length"),
    ("type 26 of 48 bits", resized(message_bits({"type": 26, "mmsi": MMSI}), 48), "bad_length"),
    ("type 26 addressed and structured, 80 bits",
     resized(message_bits({"type": 26, "mmsi": MMSI, "addressed": 1, "structured": 1, "dest_mmsi": 1}), 80),
     "bad_length"),
    ("type 26 of 1070 bits", resized(message_bits({"type": 26, "mmsi": MMSI}), 1070), "bad_length"),
    ("type 25 addressed, 56 bits", resized(message_bits({"type": 25, "mmsi": MMSI, "addressed": 1}), 56), "bad_length"),
    ("type 27 of 104 bits", resized(message_bits({"type": 27, "mmsi": MMSI}), 104), "bad_length"),
    ("type 27 of 120 bits", resized(message_bits({"type": 27, "mmsi": MMSI}), 120), "bad_length"),
    ("type 27 of 88 bits", resized(message_bits({"type": 27, "mmsi": MMSI}), 88), "bad_length"),
    ("type 24 part A of 174 bits", resized(message_bits({"type": 24, "mmsi": MMSI, "partno": 0}), 174), "bad_length"),
    ("type 24 part B of 160 bits", resized(message_bits({"type": 24, "mmsi": MMSI, "partno": 1}), 160), "bad_length"),
    ("type 24 part D", with_field(message_bits({"type": 24, "mmsi": MMSI, "partno": 1}), 38, 2, 3), "unknown_part"),
    ("type 5 of 418 bits", resized(message_bits({"type": 5, "mmsi": MMSI}), 418), "bad_length"),
    ("type 1 of 210 bits", resized(message_bits({"type": 1, "mmsi": MMSI}), 210), "bad_length"),
    ("type 4 of 180 bits", resized(message_bits({"type": 4, "mmsi": 2442001}), 180), "bad_length"),
    ("type 1 of 37 bits", resized(message_bits({"type": 1, "mmsi": MMSI}), 37), "short_payload"),
]
