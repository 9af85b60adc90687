"""Turn a decoded AIS message into the ``ais-*`` document (schema: ``es_templates/ais.json``).

This is the one place where AIS conventions become data decisions:

- time: ``@timestamp`` is the message time (tag block ``c:`` or the line's time prefix), else the
  receive time; ISO-8601 UTC with milliseconds and ``Z``. ``received_at`` likewise.
- "not available" sentinels become missing fields: latitude 91 / longitude 181 (no location at
  all), speed 102.3 kn (types 1-3, 18, 19; 63 kn for type 27, 1023 for type 9), course 360
  (511 for type 27), heading 511 (and anything >= 360), rate of turn -128 ("no turn
  information"; +-127, "turning fast, no turn indicator", carries no rate either), draught 0,
  IMO 0, dimensions 0, empty text fields.
- codes keep their number and gain text: ``nav_status`` + ``nav_status_text``, ``ship_type`` +
  ``ship_type_text`` + ``ship_category`` (ITU-R M.1371 tables).
- ``mmsi`` is a 9-digit zero-padded keyword; ``imo`` a keyword; text fields lose ``@`` padding.
- ``msg_kind``: position (1, 2, 3, 18, 19, 27), static (5, 24), base_station (4, 11), aton (21),
  other; ``class``: A (1, 2, 3, 5, 27), B (18, 19, 24).
- ``station`` from the tag block ``s:``; ``signal.level_db`` / ``signal.freq_offset_hz`` from our
  own demodulator: given as numbers in-process (``Line.tags``), or as the ``L:`` / ``F:`` tag
  fields of its NMEA output (demod/nmea_out.py).

Besides the mapped fields every document carries two meta keys the sink pops before indexing:
``_ts`` (epoch milliseconds of ``@timestamp``, picks the daily index) and ``_id``, a hash of the
payload and of when/where the message was seen: the message time to the second if the line carried
one (the resolution of NMEA 4.10's ``c:``; the same payload heard on both channels, or by two
receivers, within that second is one document), else (source, line offset) for replayable sources,
else the receive time. Replaying the same log gives the same ids (no duplicates); the same payload
sent again later is a new document.
"""
from __future__ import annotations

import math
import time
from hashlib import blake2b
from typing import NamedTuple

from aiswatch.ingest import geohash
from aiswatch.ingest.itu_codes import NAV_STATUS_TEXT, ship_type_info
from aiswatch.ingest.assembler import SentenceGroup

CELL_PRECISION = 6   # geohash cell of ~1.2 km x 0.6 km

MSG_KIND = {1: "position", 2: "position", 3: "position", 18: "position", 19: "position",
            27: "position", 5: "static", 24: "static", 4: "base_station", 11: "base_station",
            21: "aton"}
VESSEL_CLASS = {1: "A", 2: "A", 3: "A", 5: "A", 27: "A", 18: "B", 19: "B", 24: "B"}
# Some receivers number the channels 1/2 instead of A/B; one spelling keeps aggregations whole.
_CHANNEL_NAME = {"1": "A", "2": "B"}

# -- time formatting: cached per second, since consecutive messages share their second ------

_second_cache: dict[int, str] = {}
_MILLIS_SUFFIX = tuple(f".{ms:03d}Z" for ms in range(1000))


def _second_prefix(seconds: int) -> str:
    if len(_second_cache) > 4096:
        _second_cache.clear()
    prefix = _second_cache[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return prefix


def iso_millis(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds: ``2026-11-22T05:00:00.250Z``."""
    seconds, millis = divmod(ms, 1000)
    return (_second_cache.get(seconds) or _second_prefix(seconds)) + _MILLIS_SUFFIX[millis]


# The same few thousand ships report again and again: keep their 9-digit MMSI keywords.
_mmsi_cache: dict[int, str] = {}


def mmsi_text(mmsi: int) -> str:
    text = _mmsi_cache.get(mmsi)
    if text is None:
        if len(_mmsi_cache) > 100_000:
            _mmsi_cache.clear()
        text = _mmsi_cache[mmsi] = f"{mmsi:09d}"
    return text


def _finite(text: object) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _signal(tags) -> dict:
    """Radio measurements of our demodulator: ``L`` level (dB full scale) and ``F`` carrier offset
    (Hz), as numbers from the in-process radio or as ``L:``/``F:`` tag-block text from its NMEA
    output (demod/nmea_out.py). Unparsable values are left out."""
    signal = {}
    level = _finite(tags.get("L"))
    if level is not None:
        signal["level_db"] = level
    offset = _finite(tags.get("F"))
    if offset is not None:
        signal["freq_offset_hz"] = offset
    return signal


def _text(value) -> str | None:
    """AIS 6-bit text without '@' padding and blanks; None if nothing is left."""
    if not value:
        return None
    value = value.replace("@", " ").strip()
    return value or None


def _position(fields: dict, doc: dict) -> None:
    lat = fields.get("lat")
    lon = fields.get("lon")
    # 91 / 181 mean "not available"; anything else outside the globe is garbage, also dropped.
    if lat is not None and lon is not None and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
        doc["location"] = {"lat": lat, "lon": lon}
        doc["lat"] = lat
        doc["lon"] = lon
        doc["cell"] = geohash.encode(lat, lon, CELL_PRECISION)
    accuracy = fields.get("accuracy")
    if accuracy is not None:
        doc["accuracy"] = bool(accuracy)


def _motion(fields: dict, doc: dict, speed_na: float) -> None:
    """Speed and course (and heading where the type has one), sentinels dropped."""
    speed = fields.get("speed")
    if speed is not None and speed < speed_na:
        doc["sog"] = float(speed)
    course = fields.get("course")
    if course is not None and course < 360:
        doc["cog"] = float(course)
    heading = fields.get("heading")
    if heading is not None and heading < 360:
        doc["heading"] = heading


def _nav_status(doc: dict, status) -> None:
    if status is not None:
        doc["nav_status"] = status
        doc["nav_status_text"] = NAV_STATUS_TEXT.get(status)


def _ship_type(doc: dict, code) -> None:
    if code is not None:
        doc["ship_type"] = code
        doc["ship_type_text"], doc["ship_category"] = ship_type_info(code)


def _dimensions(fields: dict, doc: dict) -> None:
    bow, stern = fields.get("to_bow"), fields.get("to_stern")
    port, starboard = fields.get("to_port"), fields.get("to_starboard")
    if bow is None:
        return
    doc["to_bow"], doc["to_stern"], doc["to_port"], doc["to_starboard"] = bow, stern, port, starboard
    if stern is not None and bow + stern > 0:
        doc["length"] = bow + stern
    if port is not None and starboard is not None and port + starboard > 0:
        doc["beam"] = port + starboard


def _class_b_extended(fields: dict, doc: dict) -> None:   # type 19
    _position(fields, doc)
    _motion(fields, doc, 102.25)
    doc["name"] = _text(fields.get("shipname"))
    _ship_type(doc, fields.get("ship_type"))
    _dimensions(fields, doc)


def _long_range(fields: dict, doc: dict) -> None:         # type 27: knots and degrees, coarse
    _position(fields, doc)
    _motion(fields, doc, 63)      # course 511 "not available" is dropped as >= 360
    _nav_status(doc, fields.get("status"))


def _sar_aircraft(fields: dict, doc: dict) -> None:       # type 9: speed in whole knots, 1023 n/a
    _position(fields, doc)
    _motion(fields, doc, 1023)


def _static_voyage(fields: dict, doc: dict) -> None:      # type 5
    doc["name"] = _text(fields.get("shipname"))
    doc["callsign"] = _text(fields.get("callsign"))
    imo = fields.get("imo")
    if imo:
        doc["imo"] = str(imo)
    _ship_type(doc, fields.get("ship_type"))
    _dimensions(fields, doc)
    doc["destination"] = _text(fields.get("destination"))
    draught = fields.get("draught")
    if draught:
        doc["draught"] = float(draught)
    month, day = fields.get("month"), fields.get("day")
    hour, minute = fields.get("hour"), fields.get("minute")
    # 0 month/day, hour 24, minute 60 are "not available"; an ETA needs all four.
    if (month is not None and day is not None and hour is not None and minute is not None
            and 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        doc["eta"] = f"{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"


def _static_class_b(fields: dict, doc: dict) -> None:     # type 24, part A or B
    if fields.get("partno") == 0:
        doc["name"] = _text(fields.get("shipname"))
        return
    _ship_type(doc, fields.get("ship_type"))
    doc["callsign"] = _text(fields.get("callsign"))
    _dimensions(fields, doc)


def _aid_to_navigation(fields: dict, doc: dict) -> None:  # type 21
    _position(fields, doc)
    name = (fields.get("name") or "") + (fields.get("name_ext") or "")
    doc["name"] = _text(name)
    doc["aton_type"] = fields.get("aid_type")
    _dimensions(fields, doc)


# Rate of turn -128: no information; +-127: turning faster than 5 deg/30 s, no turn indicator.
_TURN_NOT_AVAILABLE = frozenset((-128.0, 127.0, -127.0))

# Types 1, 2, 3 and 18 are handled inline in build_document.
_BY_TYPE = {19: _class_b_extended, 27: _long_range, 9: _sar_aircraft,
            4: _position, 11: _position, 17: _position, 5: _static_voyage, 24: _static_class_b,
            21: _aid_to_navigation}


def _message_fields(doc: dict, msg_type: int, fields: dict) -> dict:
    """The fields of one message type added to ``doc`` (position reports inline: most of the traffic)."""
    if msg_type <= 3 or msg_type == 18:   # class A and B position reports, inline
        lat = fields.get("lat")
        lon = fields.get("lon")
        # 91 / 181 mean "not available"; anything else outside the globe is garbage, dropped too.
        if lat is not None and lon is not None and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
            doc["location"] = {"lat": lat, "lon": lon}
            doc["lat"] = lat
            doc["lon"] = lon
            doc["cell"] = geohash.encode(lat, lon, CELL_PRECISION)
        value = fields.get("accuracy")
        if value is not None:
            doc["accuracy"] = value
        value = fields.get("speed")
        if value is not None and value < 102.25:
            doc["sog"] = value
        value = fields.get("course")
        if value is not None and value < 360.0:
            doc["cog"] = value
        value = fields.get("heading")
        if value is not None and value < 360:
            doc["heading"] = value
        if msg_type != 18:
            value = fields.get("turn")
            if value is not None and value not in _TURN_NOT_AVAILABLE:
                doc["rot"] = value
            value = fields.get("status")
            if value is not None:
                doc["nav_status"] = value
                doc["nav_status_text"] = NAV_STATUS_TEXT.get(value)
        if doc["repeat"] is None:    # only a truncated payload lacks it
            del doc["repeat"]
    else:
        extract = _BY_TYPE.get(msg_type)
        if extract is not None:
            extract(fields, doc)
        # Missing is absent, not null: drop the Nones the helpers leave behind.
        if None in doc.values():
            doc = {k: v for k, v in doc.items() if v is not None}
    return doc


def build_document(group: SentenceGroup, fields: dict) -> dict | None:
    """The ``ais-*`` document (plus ``_id`` and ``_ts``) for a decoded message; None only if
    ``fields`` lacks a message type or MMSI (``ingest.decoder.decode`` never returns such).

    Runs once per message: the position reports (most of the traffic) are handled inline here,
    the rarer types by the helpers above.
    """
    msg_type = fields.get("msg_type")
    mmsi = fields.get("mmsi")
    if msg_type is None or mmsi is None:
        return None
    sentences = group.sentences
    first = sentences[0]
    msg_time = first.msg_time
    if len(sentences) == 1:
        payload = first.payload
        raw = [first.raw]
    else:
        payload = ",".join([s.payload for s in sentences])
        raw = [s.raw for s in sentences]
        if msg_time is None:
            msg_time = group.msg_time
    received_ms = int(first.received_at * 1000.0 + 0.5)
    seconds, millis = divmod(received_ms, 1000)     # iso_millis, inline: this runs per message
    received = (_second_cache.get(seconds) or _second_prefix(seconds)) + _MILLIS_SUFFIX[millis]
    if msg_time is None:
        ts_ms = received_ms
        timestamp = received
        seen = f"r{ts_ms}" if first.offset is None else f"o{first.source}\x00{first.offset}"
    else:
        ts_ms = int(msg_time * 1000.0 + 0.5)
        seconds, millis = divmod(ts_ms, 1000)
        timestamp = (_second_cache.get(seconds) or _second_prefix(seconds)) + _MILLIS_SUFFIX[millis]
        seen = f"t{ts_ms - ts_ms % 1000}"   # to the second: the same payload heard twice in it is one
    channel = first.channel

    doc = {
        "@timestamp": timestamp,
        "received_at": received,
        "mmsi": _mmsi_cache.get(mmsi) or mmsi_text(mmsi),
        "msg_type": msg_type,
        "msg_kind": MSG_KIND.get(msg_type, "other"),
        "repeat": fields.get("repeat"),
        "source": first.source,
        "raw": raw,
    }
    if channel:
        doc["channel"] = _CHANNEL_NAME.get(channel, channel)
    vessel_class = VESSEL_CLASS.get(msg_type)
    if vessel_class is not None:
        doc["class"] = vessel_class
    if first.station is not None:
        doc["station"] = first.station
    tags = first.tags
    if tags and ("L" in tags or "F" in tags):
        signal = _signal(tags)
        if signal:
            doc["signal"] = signal

    doc = _message_fields(doc, msg_type, fields)
    doc["_ts"] = ts_ms
    key = f"{payload}\x00{sentences[-1].fill}\x00{seen}"
    doc["_id"] = blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return doc


class Report(NamedTuple):
    """A message that arrives already decoded (aisstream.io's JSON), for ``build_report``: no
    NMEA to parse, reassemble or decode.

    fields: the message's fields under the decoder's names (``msg_type``, ``mmsi``, ``lat``,
        ``speed``, ``shipname``, ...), "not available" as the AIS sentinels.
    msg_time: unix seconds the feed says the message was received (None: unknown).
    received_at: unix seconds this process received it.
    source / station: as for lines (``aisstream`` / the feed's station name).
    raw: the message as received (the JSON text), kept in ``raw``.
    key: what makes it this message and no other (the JSON of its body), hashed into the ``_id``
        with the message time, so a replayed or repeated delivery overwrites itself.
    """

    fields: dict
    msg_time: float | None
    received_at: float
    source: str
    station: str | None
    raw: str
    key: str


def build_report(report: Report) -> dict | None:
    """The ``ais-*`` document (plus ``_id`` and ``_ts``) of a Report; None without type or MMSI."""
    fields = report.fields
    msg_type = fields.get("msg_type")
    mmsi = fields.get("mmsi")
    if msg_type is None or mmsi is None:
        return None
    received_ms = int(report.received_at * 1000.0 + 0.5)
    ts_ms = received_ms if report.msg_time is None else int(report.msg_time * 1000.0 + 0.5)
    doc = {
        "@timestamp": iso_millis(ts_ms),
        "received_at": iso_millis(received_ms),
        "mmsi": _mmsi_cache.get(mmsi) or mmsi_text(mmsi),
        "msg_type": msg_type,
        "msg_kind": MSG_KIND.get(msg_type, "other"),
        "repeat": fields.get("repeat"),
        "source": report.source,
        "raw": [report.raw],
    }
    vessel_class = VESSEL_CLASS.get(msg_type)
    if vessel_class is not None:
        doc["class"] = vessel_class
    if report.station is not None:
        doc["station"] = report.station
    doc = _message_fields(doc, msg_type, fields)
    doc["_ts"] = ts_ms
    seen = f"r{ts_ms}" if report.msg_time is None else f"t{ts_ms - ts_ms % 1000}"
    doc["_id"] = blake2b(f"{report.key}\x00{seen}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return doc
