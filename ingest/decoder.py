"""Decode a complete AIS message (a ``SentenceGroup``) into its fields with pyais.

The NMEA text was already parsed and checked by ``ingest.nmea``, so instead of handing the lines
to ``pyais.decode`` (which would split and parse them again) we build pyais's bit vector from
the payload and fill bits and call the message class's ``from_vector`` directly: the same
decoder, without the second parse. If that path raises, ``pyais.decode`` on the raw sentences is
tried once before giving up.

The result is a dict of plain Python values (enums as ints, rate of turn as a float, the raw
8-bit ship type code instead of pyais's enum, which folds unknown codes together). Spare fields
are left out.

Accounting (see ``ingest.assembler``): for every group either ``messages_decoded`` +1 and
``sentences_decoded`` + number of sentences, or each sentence counted under
``rejected.<reason>``: ``short_payload`` (too short to hold type and MMSI), ``unknown_type``
(no such message type) or ``decode_error`` (pyais failed; also ``decode_errors`` +1 per group).
A dict returned here always carries ``msg_type`` and ``mmsi``, so the document builder never
has to reject it.
"""
from __future__ import annotations

import logging
import operator
from typing import Any, Callable

import attr
import pyais
from pyais.bit_vector import bit_vector
from pyais.messages import ENUM_FIELDS, MSG_CLASS

from ingest.assembler import SentenceGroup
from ingest.counters import Counters
from ingest.nmea import RateLimitedLog

log = logging.getLogger(__name__)
_log_reject = RateLimitedLog(log)

MIN_BITS = 38   # message type (6) + repeat indicator (2) + MMSI (30)

# Bit offset of the 8-bit ship type per message type (type 24: part B only).
_SHIP_TYPE_OFFSET = {5: 232, 19: 263, 24: 40}

_Extractor = tuple[tuple[str, ...], Callable[[Any], tuple], tuple[str, ...]]
_extractors: dict[type, _Extractor] = {}


def _extractor(cls: type) -> _Extractor:
    """Names of a message class's non-spare fields, a getter for all of them at once, and the
    names whose values are enums (converted to int)."""
    found = _extractors.get(cls)
    if found is None:
        names = tuple(f.name for f in attr.fields(cls) if not f.metadata.get("is_spare"))
        getter = operator.attrgetter(*names)
        if len(names) == 1:
            single = getter
            getter = lambda msg: (single(msg),)  # noqa: E731  # attrgetter of one name returns a bare value
        enums = tuple(n for n in names if n in ENUM_FIELDS or n == "maneuver")
        found = _extractors[cls] = (names, getter, enums)
    return found


def message_fields(msg: Any) -> dict:
    """A pyais message as a dict of plain values (what ``asdict(enum_as_int=True)`` gives, faster)."""
    names, getter, enums = _extractor(type(msg))
    fields = dict(zip(names, getter(msg)))
    for name in enums:
        value = fields[name]
        if value is not None:
            fields[name] = int(value)
    turn = fields.get("turn")
    if turn is not None and type(turn) is not float:
        fields["turn"] = float(turn)   # pyais's TurnRate enum (-128, +-127) to a plain float
    return fields


def _reject(counters: Counters, group: SentenceGroup, reason: str, detail: str) -> None:
    counters.reject(reason, len(group.sentences))
    _log_reject(reason, detail)


def decode(group: SentenceGroup, counters: Counters) -> dict | None:
    """The fields of the message in ``group``, or None after counting why it could not be decoded."""
    sentences = group.sentences
    if len(sentences) == 1:
        payload = sentences[0].payload
    else:
        payload = "".join(s.payload for s in sentences)
    fill = sentences[-1].fill
    try:
        bits = bit_vector(payload.encode("ascii"), fill)
        if len(bits) < MIN_BITS:
            _reject(counters, group, "short_payload", payload)
            return None
        msg_type = bits.get(0, 6)
        cls = MSG_CLASS.get(msg_type)
        if cls is None:
            _reject(counters, group, "unknown_type", payload)
            return None
        fields = message_fields(cls.from_vector(bits))
    except Exception as exc:  # pyais raises many kinds; one bad message must not stop the stream
        try:
            fields = message_fields(pyais.decode(*[s.raw for s in sentences]))
        except Exception:
            counters.incr("decode_errors")
            _reject(counters, group, "decode_error", f"{exc!r} {payload}")
            return None
        bits = None
    if fields.get("mmsi") is None or fields.get("msg_type") is None:
        _reject(counters, group, "short_payload", payload)
        return None

    offset = _SHIP_TYPE_OFFSET.get(fields["msg_type"])
    if offset is not None and fields.get("ship_type") is not None and bits is not None:
        fields["ship_type"] = bits.get(offset, 8)

    counters.incr("messages_decoded")
    counters.incr("sentences_decoded", len(sentences))
    return fields
