"""aisstream.io JSON messages -> ``Report`` items for the document builder (``documents.build_report``).

aisstream's messages arrive decoded, so they are mapped straight to the decoder's field names (the
fields a decoded AIVDM message has) and become the same documents as radio messages, with no NMEA
round trip.

aisstream sends ``{"MessageType": "PositionReport", "MetaData": {"MMSI", "ShipName", "latitude",
"longitude", "time_utc": "2022-12-29 18:22:32.318353 +0000 UTC"}, "Message": {"PositionReport":
{...}}}`` with fields named as in its published schema (github.com/aisstream/ais-message-models,
type-definition.yaml). The message time is aisstream's ``time_utc``; the document's ``raw`` is the
JSON as received; its ``_id`` hashes the message body and that time, so a repeated delivery
overwrites itself.

Values as aisstream sends them: positions in degrees, Sog/Cog in knots/degrees, draught in
metres; RateOfTurn is the raw ROT indicator (-128..127, the 8-bit field of ITU-R M.1371), which
the decoder gives as degrees per minute, hence ``pyais.messages.to_turn``. Text is put into the
6-bit AIS character set (upper case; other characters become ``?``), as a radio receiver would
have received it.

Message types without a mapping here (binary messages, interrogations, channel management, ...)
raise ``UnmappedMessage``; the source counts them and logs each type once.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Callable

from pyais.messages import SIX_BIT_ENCODING, to_turn

from aiswatch.ingest.documents import Report

STATION = "aisstream"


class UnmappedMessage(ValueError):
    """An aisstream message type that has no mapping here."""

    def __init__(self, message_type: str) -> None:
        super().__init__(f"aisstream message type {message_type!r} is not mapped")
        self.message_type = message_type


class BadMessage(ValueError):
    """An aisstream message without the fields every AIS message needs (type, MMSI)."""


# --- values -----------------------------------------------------------------------------------

def _text(value: Any) -> str:
    """A string in the 6-bit AIS alphabet, without aisstream's trailing padding."""
    text = str(value or "").upper().rstrip(" @")
    return "".join(c if c in SIX_BIT_ENCODING else "?" for c in text)


def _tenths(value: Any) -> float:
    # Round first: encode does int(v * 10), and a JSON value like 12.299999 would become 122.
    return round(float(value), 1)


def _degrees(value: Any) -> float:
    # as the decoder gives positions: 6 decimals (AIS carries 1/10000 minute, ~0.17 m)
    return round(float(value), 6)


def _turn(value: Any) -> float:
    return to_turn(int(value))


def _same(value: Any) -> Any:
    return value


# aisstream field -> (pyais field, converter). Shared by every type that has the field.
COMMON = {
    "MessageID": ("msg_type", int),
    "RepeatIndicator": ("repeat", int),
    "UserID": ("mmsi", int),
    "Latitude": ("lat", _degrees),
    "Longitude": ("lon", _degrees),
    "PositionAccuracy": ("accuracy", bool),
    "Raim": ("raim", bool),
    "Timestamp": ("second", int),
    "CommunicationState": ("radio", int),
    "Sog": ("speed", _tenths),
    "Cog": ("course", _tenths),
    "TrueHeading": ("heading", int),
    "AssignedMode": ("assigned", bool),
    "Dte": ("dte", bool),
    "FixType": ("epfd", int),
    "Name": ("shipname", _text),
    "Type": ("ship_type", int),
}

DIMENSION = {"A": "to_bow", "B": "to_stern", "C": "to_port", "D": "to_starboard"}

# aisstream MessageType -> (AIS message number when MessageID is missing, type-specific fields)
TYPES: dict[str, tuple[int, dict[str, tuple[str, Callable[[Any], Any]]]]] = {
    "PositionReport": (1, {
        "NavigationalStatus": ("status", int),
        "RateOfTurn": ("turn", _turn),
        "SpecialManoeuvreIndicator": ("maneuver", int),
    }),
    "BaseStationReport": (4, {
        "UtcYear": ("year", int), "UtcMonth": ("month", int), "UtcDay": ("day", int),
        "UtcHour": ("hour", int), "UtcMinute": ("minute", int), "UtcSecond": ("second", int),
    }),
    "ShipStaticData": (5, {
        "AisVersion": ("ais_version", int),
        "ImoNumber": ("imo", int),
        "CallSign": ("callsign", _text),
        "Destination": ("destination", _text),
        "MaximumStaticDraught": ("draught", _tenths),
    }),
    "StandardSearchAndRescueAircraftReport": (9, {"Altitude": ("alt", int)}),
    "StandardClassBPositionReport": (18, {
        "ClassBUnit": ("cs", bool), "ClassBDisplay": ("display", bool), "ClassBDsc": ("dsc", bool),
        "ClassBBand": ("band", bool), "ClassBMsg22": ("msg22", bool),
    }),
    "ExtendedClassBPositionReport": (19, {}),
    "AidsToNavigationReport": (21, {
        "Type": ("aid_type", int),
        "Name": ("name", _text),
        "NameExtension": ("name_ext", _text),
        "Fixtype": ("epfd", int),
        "OffPosition": ("off_position", bool),
        "VirtualAtoN": ("virtual_aid", bool),
        "AtoN": ("reserved_1", int),
    }),
    "StaticDataReport": (24, {}),   # parts A and B, see _static_data_report
    "LongRangeAisBroadcastMessage": (27, {
        "NavigationalStatus": ("status", int),
        "PositionLatency": ("gnss", bool),
        "Sog": ("speed", lambda v: int(round(float(v)))),
        "Cog": ("course", lambda v: int(round(float(v)))),
    }),
}

# Values that mean "not available", used when aisstream leaves a field out: encoding 0 instead
# would put a ship at 0°N 0°E, stopped, heading north.
NOT_AVAILABLE = {"lat": 91.0, "lon": 181.0, "speed": 102.3, "course": 360.0, "heading": 511, "turn": -128.0}


def _static_data_report(body: dict) -> dict:
    # PartNumber false = part A (name), true = part B (type, vendor, call sign, dimensions)
    if not body.get("PartNumber"):
        return {"partno": 0, "shipname": _text((body.get("ReportA") or {}).get("Name"))}
    b = body.get("ReportB") or {}
    fields = {"partno": 1, "ship_type": int(b.get("ShipType") or 0), "vendorid": _text(b.get("VendorIDName"))[:3],
              "model": int(b.get("VenderIDModel") or 0), "serial": int(b.get("VenderIDSerial") or 0),
              "callsign": _text(b.get("CallSign"))}
    fields.update(_dimensions(b.get("Dimension")))
    return fields


def _dimensions(dimension: Any) -> dict:
    if not isinstance(dimension, dict):
        return {}
    return {name: int(dimension[key]) for key, name in DIMENSION.items() if dimension.get(key) is not None}


def message_fields(message: dict) -> dict:
    """The decoder's fields of one aisstream message (raises UnmappedMessage/BadMessage)."""
    message_type = message.get("MessageType")
    if not isinstance(message_type, str):
        raise BadMessage("aisstream message without MessageType")
    if message_type not in TYPES:
        raise UnmappedMessage(message_type)
    body = (message.get("Message") or {}).get(message_type)
    if not isinstance(body, dict):
        raise BadMessage(f"aisstream {message_type} without its Message.{message_type} body")
    default_type, specific = TYPES[message_type]
    fields: dict[str, Any] = {}
    try:
        for key, value in body.items():
            if value is None:
                continue
            mapping = specific.get(key) or COMMON.get(key)
            if mapping is not None:
                name, convert = mapping
                fields[name] = convert(value)
        fields.update(_dimensions(body.get("Dimension")))
        if message_type == "StaticDataReport":
            fields.update(_static_data_report(body))
        eta = body.get("Eta")
        if isinstance(eta, dict):
            fields.update({k.lower(): int(eta[k]) for k in ("Month", "Day", "Hour", "Minute") if eta.get(k) is not None})
    except (TypeError, ValueError) as exc:
        raise BadMessage(f"aisstream {message_type}: bad field value ({exc})") from None
    if "mmsi" not in fields:
        mmsi = (message.get("MetaData") or {}).get("MMSI")
        if mmsi is None:
            raise BadMessage(f"aisstream {message_type} without UserID/MMSI")
        fields["mmsi"] = int(mmsi)
    fields.setdefault("msg_type", default_type)
    for name in ("lat", "lon", "speed", "course", "heading", "turn"):
        if name not in fields and _has_field(fields["msg_type"], name):
            fields[name] = NOT_AVAILABLE[name]
    return fields


def _has_field(msg_type: int, name: str) -> bool:
    if name in ("lat", "lon"):
        return msg_type in (1, 2, 3, 4, 9, 18, 19, 21, 27)
    if name in ("speed", "course"):
        return msg_type in (1, 2, 3, 9, 18, 19)   # 27's 6/9-bit fields have other sentinels
    if name == "heading":
        return msg_type in (1, 2, 3, 18, 19)
    return name == "turn" and msg_type in (1, 2, 3)


# --- time ----------------------------------------------------------------------

_GO_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?")


def message_time(metadata: dict | None) -> float | None:
    """Unix seconds of ``MetaData.time_utc`` (Go's ``2022-12-29 18:22:32.318353 +0000 UTC`` or ISO)."""
    text = (metadata or {}).get("time_utc")
    if not isinstance(text, str):
        return None
    match = _GO_TIME.match(text.strip())
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    fraction = (fraction or "0")[:6]
    offset = "+00:00" if offset in (None, "Z") else offset
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{fraction.ljust(6, '0')}{offset}")
    except ValueError:
        return None
    return moment.astimezone(timezone.utc).timestamp()


def report_of(message: dict, received_at: float, raw: str, station: str = STATION) -> Report:
    """The Report of one aisstream message (raises UnmappedMessage/BadMessage)."""
    fields = message_fields(message)
    body = message["Message"][message["MessageType"]]
    key = message["MessageType"] + json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return Report(fields, message_time(message.get("MetaData")), received_at, station, station, raw, key)
