"""Decode a complete AIS message (a ``SentenceGroup``) into its fields with pyais.

The NMEA text was already parsed and checked by ``ingest.nmea``, so instead of handing the lines
to ``pyais.decode`` (which would split and parse them again) we build pyais's bit vector from
the payload and fill bits and call the message class's ``from_vector`` directly: the same
decoder, without the second parse. If that path raises, ``pyais.decode`` on the raw sentences is
tried once before giving up.

The result is a dict of plain Python values (enums as ints, rate of turn as a float, the raw
8-bit ship type code instead of pyais's enum, which folds unknown codes together). Spare fields
are left out.

Position reports of types 1, 2, 3 and 18 (most of the traffic) with the standard 168 bits are
the case pyais itself decodes with a flat shift-and-mask "fast path" into its message object,
which we then turn into a dict. ``_position_fields`` does the same shifts straight into the dict
(no message object, no enum round trip), with pyais's own converters, precomputed per possible
value: the same values, a third of the time. tests/test_decoder.py checks it against pyais over
random payloads.

Before decoding, ``invalid_reason`` checks what ITU-R M.1371 fixes for every message, so that a
damaged or made-up payload never becomes a document (or a phantom vessel in ``ships-seen``):
the message type is one of 1-27, the length in bits lies within the type's range
(``BIT_LENGTHS``, with the tolerance real transmitters need, after gpsd's ``driver_ais.c``), the
type 24 part number is A or B, a type 25/26 is long enough for its addressed/structured flags,
and the MMSI has at most 9 digits (30 bits would allow 1,073,741,823).

Accounting (see ``ingest.assembler``): for every group either ``messages_decoded`` +1 and
``sentences_decoded`` + number of sentences, or each sentence counted under
``rejected.<reason>``: ``short_payload`` (too short to hold type and MMSI), ``unknown_type``
(no such message type), ``bad_length`` (a length the type cannot have), ``unknown_part``
(type 24 part C or D), ``bad_mmsi`` (more than 9 digits) or ``decode_error`` (pyais failed;
also ``decode_errors`` +1 per group). A dict returned here always carries ``msg_type`` and
``mmsi``, so the document builder never has to reject it.
"""
from __future__ import annotations

import logging
from binascii import a2b_base64
from typing import Any, Callable, cast

import attr
import pyais
from pyais.bit_vector import bit_vector
from pyais.constants import ManeuverIndicator, NavigationStatus
from pyais.messages import ENUM_FIELDS, MSG_CLASS, to_10th, to_lat_lon, to_speed, to_turn

from aiswatch.ingest.assembler import SentenceGroup
from aiswatch.ingest.counters import Counts
from aiswatch.ingest.nmea import RateLimitedLog

log = logging.getLogger(__name__)
_log_reject = RateLimitedLog(log)

MIN_BITS = 38   # message type (6) + repeat indicator (2) + MMSI (30)
MAX_MMSI = 999_999_999   # an MMSI has 9 digits (ITU-R M.585)

# Length in bits each message type may have, (least, most): ITU-R M.1371-5 Annex 8, widened
# where real transmitters differ, as gpsd's drivers/driver_ais.c has learnt from them. A
# fixed-length type may carry up to one spare byte more (gpsd accepts any excess with a warning;
# a type of one slot cannot hold more than 168 bits). Type 24 and 27 are checked further below.
BIT_LENGTHS: dict[int, tuple[int, int]] = {
    1: (163, 204), 2: (163, 204), 3: (163, 204),    # 168; 163 and 204 seen from real transmitters
    4: (168, 176),
    5: (420, 432),       # 424; many transmitters send 420 or 422
    6: (88, 1008),       # addressed binary, 1-5 slots
    7: (72, 168),        # 1-4 acknowledgements
    8: (56, 1008),       # broadcast binary, 1-5 slots
    9: (168, 176),
    10: (72, 80),
    11: (168, 176),
    12: (72, 1008),      # addressed safety text
    13: (72, 168),
    14: (40, 1008),      # broadcast safety text
    15: (88, 168),       # 1-3 interrogations
    16: (96, 168),       # one or two assignments
    17: (80, 816),       # DGNSS corrections
    18: (168, 176),
    19: (312, 320),
    20: (72, 186),       # 1-4 reservations
    21: (272, 368),      # 272, and up to 14 more name characters
    22: (168, 176),
    23: (160, 168),
    24: (160, 176),      # part A 160 (some pad it to 168), part B 168
    25: (40, 168),       # single-slot binary
    26: (60, 1064),      # multi-slot binary (gpsd takes up to 1004, libais and pyais 1064)
    27: (96, 168),       # 96; some send a whole slot, 168: nothing in between
}
_PART_A_MAX, _PART_B_MIN = 168, 168
# 6-bit value of each payload character ('0'..'W' -> 0..39, '`'..'w' -> 40..63)
_SIXBIT = {chr(c): (c - 48 if c < 88 else c - 56) for c in [*range(48, 88), *range(96, 120)]}

# Bit offset of the 8-bit ship type per message type (type 24: part B only).
_SHIP_TYPE_OFFSET = {5: 232, 19: 263, 24: 40}

_fields_of: dict[type, Callable[[Any], dict]] = {}


def _make_fields_function(cls: type) -> Callable[[Any], dict]:
    """Generate ``lambda msg: {"msg_type": msg.msg_type, ...}`` for one pyais message class:
    its non-spare slots, enums as int, pyais's TurnRate as float. A generated dict display is
    about twice as fast as ``asdict`` or a loop over the names, and this runs on every message;
    the names come from the class's attrs fields, which are Python identifiers."""
    spares = {f.name for f in attr.fields(cls) if f.metadata.get("is_spare")}
    items = []
    for name in getattr(cls, "__slots__"):   # as pyais's asdict: the fields plus derived slots (type 21 full_name)
        if name in spares:
            continue
        if name in ENUM_FIELDS or name == "maneuver":
            items.append(f"{name!r}: None if (v := m.{name}) is None else int(v)")
        elif name == "turn":
            items.append(f"{name!r}: None if (v := m.{name}) is None else float(v)")
        else:
            items.append(f"{name!r}: m.{name}")
    namespace: dict[str, Any] = {}
    exec(f"def fields_of(m):\n    return {{{', '.join(items)}}}\n", namespace)  # noqa: S102
    return namespace["fields_of"]


def message_fields(msg: Any) -> dict:
    """A pyais message as a dict of plain values (what ``asdict(enum_as_int=True)`` gives, faster)."""
    fields_of = _fields_of.get(type(msg))
    if fields_of is None:
        fields_of = _fields_of[type(msg)] = _make_fields_function(type(msg))
    return fields_of(msg)


# -- position reports (types 1, 2, 3, 18 of 168 bits) without the message object ------------------

# AIS 6-bit armour -> the standard base64 alphabet (as pyais's bit vector does), so that
# a2b_base64 turns a 28-character payload into its 21 bytes in C. nmea.parse_line has checked the
# payload alphabet already.
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_ARMOR_TO_B64 = bytes(_B64[(c - 56 if c > 87 else c - 48)] if 48 <= c <= 119 else 65 for c in range(256))
# pyais's converters for every possible raw value
_TURN = tuple(float(to_turn(((r ^ 0x80) - 0x80))) for r in range(256))          # 8 bits, signed
_SPEED = tuple(to_speed(v) for v in range(1024))                                   # 10 bits
_COURSE = tuple(to_10th(v) for v in range(4096))                                   # 12 bits
_STATUS = tuple(int(cast(int, NavigationStatus.from_value(v))) for v in range(16))  # 4 bits
_MANEUVER = tuple(int(cast(int, ManeuverIndicator.from_value(v))) for v in range(4))  # 2 bits


# The 168 bits come as three 56-bit ints (bits 167-112, 111-56, 55-0 of the payload): every field
# is then cut from an int that fits a machine word, where one 168-bit int made each shift and mask
# a new big int (and, compiled by mypyc, small ints are native: ingest/native.py).

def _class_a_position(a: int, b: int, c: int) -> dict:
    """Types 1, 2, 3 from the 168-bit payload: the fields (and order) of
    ``message_fields(MessageType1._fast_path(...))``."""
    lon = (b >> 23) & 0xFFFFFFF                     # bits 106-79
    if lon & 0x8000000:
        lon -= 0x10000000
    lat = ((b & 0x7FFFFF) << 4) | (c >> 52)         # bits 78-52
    if lat & 0x4000000:
        lat -= 0x8000000
    return {
        "msg_type": a >> 50,
        "repeat": (a >> 48) & 3,
        "mmsi": (a >> 18) & 0x3FFFFFFF,
        "status": _STATUS[(a >> 14) & 15],
        "turn": _TURN[(a >> 6) & 255],
        "speed": _SPEED[((a & 63) << 4) | (b >> 52)],  # bits 117-108
        "accuracy": bool((b >> 51) & 1),
        "lon": to_lat_lon(lon),
        "lat": to_lat_lon(lat),
        "course": _COURSE[(c >> 40) & 4095],
        "heading": (c >> 31) & 511,
        "second": (c >> 25) & 63,
        "maneuver": _MANEUVER[(c >> 23) & 3],
        "raim": bool((c >> 19) & 1),
        "radio": c & 0x7FFFF,
    }


def _class_b_position(a: int, b: int, c: int) -> dict:
    """Type 18 from the 168-bit payload: the fields (and order) of
    ``message_fields(MessageType18._fast_path(...))``."""
    lon = (b >> 27) & 0xFFFFFFF                     # bits 110-83
    if lon & 0x8000000:
        lon -= 0x10000000
    lat = b & 0x7FFFFFF                             # bits 82-56
    if lat & 0x4000000:
        lat -= 0x8000000
    return {
        "msg_type": a >> 50,
        "repeat": (a >> 48) & 3,
        "mmsi": (a >> 18) & 0x3FFFFFFF,
        "reserved_1": (a >> 10) & 0xFF,
        "speed": _SPEED[a & 1023],
        "accuracy": bool((b >> 55) & 1),
        "lon": to_lat_lon(lon),
        "lat": to_lat_lon(lat),
        "course": _COURSE[(c >> 44) & 4095],
        "heading": (c >> 35) & 511,
        "second": (c >> 29) & 63,
        "reserved_2": (c >> 27) & 3,
        "cs": bool((c >> 26) & 1),
        "display": bool((c >> 25) & 1),
        "dsc": bool((c >> 24) & 1),
        "band": bool((c >> 23) & 1),
        "msg22": bool((c >> 22) & 1),
        "assigned": bool((c >> 21) & 1),
        "raim": bool((c >> 20) & 1),
        "radio": c & 0xFFFFF,
    }


# first payload character -> decoder of a 168-bit position report of that type
_POSITION = {"1": _class_a_position, "2": _class_a_position, "3": _class_a_position, "B": _class_b_position}


def invalid_reason(payload: str, fill: int) -> str | None:
    """Why the message in this armoured payload cannot be what ITU-R M.1371 describes, as a
    rejection reason, or None if it can (see the module docstring). ``payload`` holds only
    characters of the 6-bit alphabet (``nmea.parse_line`` checked them)."""
    n_bits = 6 * len(payload) - fill
    if n_bits < MIN_BITS:
        return "short_payload"
    six = _SIXBIT
    msg_type = six[payload[0]]
    limits = BIT_LENGTHS.get(msg_type)
    if limits is None:
        return "unknown_type"
    flags = six[payload[6]]          # bits 36-41: the MMSI's last two, then bits 38 and 39
    if msg_type == 24 and n_bits >= 40 and (flags >> 2) & 3 > 1:
        return "unknown_part"        # its length depends on the part: no use checking it
    if not limits[0] <= n_bits <= limits[1]:
        return "bad_length"
    if msg_type >= 24:
        if msg_type == 24:
            if (n_bits > _PART_A_MAX) if (flags >> 2) & 3 == 0 else (n_bits < _PART_B_MIN):
                return "bad_length"
        elif msg_type == 27:
            if n_bits != 96 and n_bits != 168:
                return "bad_length"
        else:   # 25 and 26: addressed (bit 38) adds a destination MMSI, structured (bit 39) an application id
            least = 40 + 30 * ((flags >> 3) & 1) + 16 * ((flags >> 2) & 1) + (20 if msg_type == 26 else 0)
            if n_bits < least:
                return "bad_length"
    mmsi = ((six[payload[1]] & 15) << 26 | six[payload[2]] << 20 | six[payload[3]] << 14
            | six[payload[4]] << 8 | six[payload[5]] << 2 | flags >> 4)
    if mmsi > MAX_MMSI:
        return "bad_mmsi"
    return None


def _reject(counters: Counts, group: SentenceGroup, reason: str, detail: str) -> None:
    counters.reject(reason, len(group.sentences))
    _log_reject(reason, detail)


def fields_problem(fields: dict) -> str | None:
    """The rejection reason of fields that arrived decoded (aisstream's JSON): the rules above that
    need no bits, a known type and an MMSI of 9 digits at most; None if they hold."""
    msg_type = fields.get("msg_type")
    if type(msg_type) is not int or msg_type not in BIT_LENGTHS:
        return "unknown_type"
    mmsi = fields.get("mmsi")
    if type(mmsi) is not int or not 0 <= mmsi <= MAX_MMSI:
        return "bad_mmsi"
    return None


def decode(group: SentenceGroup, counters: Counts) -> dict | None:
    """The fields of the message in ``group``, or None after counting why it could not be decoded."""
    sentences = group.sentences
    n_sentences = len(sentences)
    if n_sentences == 1:
        payload = sentences[0].payload
        if len(payload) == 28 and sentences[0].fill == 0:
            position = _POSITION.get(payload[0])
            if position is not None:    # 168 bits: what pyais's fast path decodes, without its object
                data = a2b_base64(payload.encode("ascii").translate(_ARMOR_TO_B64))   # 21 bytes
                head = int.from_bytes(data[:7], "big")
                if (head >> 18) & 0x3FFFFFFF > MAX_MMSI:     # type and length are right: only the MMSI can fail
                    _reject(counters, group, "bad_mmsi", payload)
                    return None
                fields = position(head, int.from_bytes(data[7:14], "big"), int.from_bytes(data[14:], "big"))
                counters.add(("messages_decoded", 1), ("sentences_decoded", 1))
                return fields
    else:
        payload = "".join(s.payload for s in sentences)
    fill = sentences[-1].fill
    reason = invalid_reason(payload, fill)
    if reason is not None:
        _reject(counters, group, reason, payload)
        return None
    try:
        bits = bit_vector(payload.encode("ascii"), fill)
        cls = MSG_CLASS[_SIXBIT[payload[0]]]   # the type is the first character's 6 bits
        fields = message_fields(cls.from_vector(bits))
        msg_type = fields["msg_type"]
        # pyais's ShipType enum folds reserved codes together: keep the 8 bits as sent.
        if msg_type in _SHIP_TYPE_OFFSET and fields.get("ship_type") is not None:
            fields["ship_type"] = bits.get(_SHIP_TYPE_OFFSET[msg_type], 8)
    except Exception as exc:  # pyais raises many kinds; one bad message must not stop the stream
        try:
            fields = message_fields(pyais.decode(*[s.raw for s in sentences]))
        except Exception:
            counters.incr("decode_errors")
            _reject(counters, group, "decode_error", f"{exc!r} {payload}")
            return None
        if fields.get("mmsi") is None or fields.get("msg_type") is None:
            _reject(counters, group, "short_payload", payload)
            return None
    if fields["msg_type"] == 17:
        _dgnss_position(fields)

    counters.add(("messages_decoded", 1), ("sentences_decoded", n_sentences))
    return fields


def _dgnss_position(fields: dict) -> None:
    """Type 17's reference position in degrees. pyais reads its two fields (18 and 17 bits,
    signed, in 1/10 minute) as unsigned minutes; undo that."""
    for name, width in (("lon", 18), ("lat", 17)):
        value = fields.get(name)
        if value is None:
            continue
        raw = int(round(value * 10.0))
        if raw >= 1 << (width - 1):
            raw -= 1 << width
        fields[name] = round(raw / 600.0, 6)
