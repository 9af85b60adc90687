"""The latest state of one vessel (the ``ships-seen`` document) merged from its messages.

One document per MMSI holds two field groups, each taken from the newest message that carried it:

- position (location, lat, lon, cell, sog, cog, heading, rot, nav_status, nav_status_text, class,
  accuracy), stamped ``position_time``. A newer position message replaces the whole group (a
  field it lacks, such as an unavailable heading, is removed rather than left over from before).
- static (name, callsign, imo, ship_type, ship_type_text, ship_category, destination, eta,
  draught, length, beam), stamped ``static_time``. Merged field by field, because class B vessels
  send their name and their type in two different type-24 parts: a newer message overwrites the
  fields it carries, an older one only fills fields still missing.

``@timestamp`` is the newest message time (``source``/``station`` come from that message),
``first_seen`` the oldest. Every other top-level field (``identity``, ``area``, ``risk`` written by
the behaviour detectors) is kept as stored. The merge is pure and deterministic, so replaying the
same messages in any order, any number of times, gives the same document.
"""
from __future__ import annotations

from typing import Iterable

from aiswatch.common.times import ms_from_iso as iso_to_ms
from aiswatch.ingest.documents import iso_millis as ms_to_iso

POSITION_FIELDS = ("location", "lat", "lon", "cell", "sog", "cog", "heading", "rot", "nav_status",
                   "nav_status_text", "class", "accuracy")
STATIC_FIELDS = ("name", "callsign", "imo", "ship_type", "ship_type_text", "ship_category", "destination",
                 "eta", "draught", "length", "beam")
_STATIC = frozenset(STATIC_FIELDS)


def _first(pair: tuple) -> int:
    return pair[0]


POSITION, STATIC = 1, 2   # document_kinds() bits


def document_kinds(doc: dict) -> int:
    """Which field groups an ais-* document carries: POSITION (a location), STATIC (any static field)."""
    return (POSITION if "location" in doc else 0) | (STATIC if not _STATIC.isdisjoint(doc) else 0)


def needed_for_merge(messages: list[tuple[int, int]]) -> list[int]:
    """Of a vessel's messages ``(time_ms, document_kinds)`` in order, the positions of those whose
    document ``merge_ship`` can use: every static one, and every one at the newest time, at the
    newest position time or at the oldest time (ties kept, order kept). ``merge_ship`` over just
    these gives what it gives over all of them, so the others need not even be parsed."""
    if not messages:
        return []
    newest = max(ts for ts, _ in messages)
    oldest = min(ts for ts, _ in messages)
    newest_position = max((ts for ts, kinds in messages if kinds & POSITION), default=None)
    return [i for i, (ts, kinds) in enumerate(messages)
            if kinds & STATIC or ts == newest or ts == oldest or (kinds & POSITION and ts == newest_position)]


def merge_ship(stored: dict | None, stored_version: int | None,
               messages: Iterable[tuple[int, dict]]) -> tuple[dict, int] | None:
    """Merge messages ``(time_ms, ais document)`` of one MMSI into its stored ships-seen document.

    Returns ``(document, version)`` to write with ``version_type=external_gte``, or None when the
    messages change nothing (a replay). The version is the newest message time, raised to the
    stored version if that is higher (a detector's partial update bumps the stored version by one).
    """
    doc = dict(stored) if stored else {}
    newest = iso_to_ms(doc.get("@timestamp")) or -1
    first = iso_to_ms(doc.get("first_seen"))
    pos_time = iso_to_ms(doc.get("position_time")) or -1
    static_time = iso_to_ms(doc.get("static_time")) or -1
    # one pass to find the newest message, the newest position and the static carriers;
    # then each group is applied once (this runs for every message, so it stays cheap)
    newest_msg = pos_msg = None
    statics = []
    for ts, msg in messages:
        if ts > newest:
            newest, newest_msg = ts, msg
        if first is None or ts < first:
            first = ts
        if ts > pos_time and "location" in msg:
            pos_time, pos_msg = ts, msg
        if not _STATIC.isdisjoint(msg):
            statics.append((ts, msg))
    if newest_msg is not None:
        if "mmsi" not in doc and newest_msg.get("mmsi") is not None:
            doc["mmsi"] = str(newest_msg["mmsi"])
        for key in ("source", "station"):
            if newest_msg.get(key) is not None:
                doc[key] = newest_msg[key]
            else:
                doc.pop(key, None)
    if pos_msg is not None:
        for key in POSITION_FIELDS:
            value = pos_msg.get(key)
            if value is not None:
                doc[key] = value
            else:
                doc.pop(key, None)
    # oldest first, so that the newest value of each field is the one left (ties: input order)
    statics.sort(key=_first)
    for ts, msg in statics:
        newer = ts >= static_time
        for key in STATIC_FIELDS:
            value = msg.get(key)
            if value is not None and (newer or key not in doc):
                doc[key] = value
        if newer:
            static_time = ts
    if newest < 0:
        return None
    doc["@timestamp"] = ms_to_iso(newest)
    doc["first_seen"] = ms_to_iso(first if first is not None else newest)
    if pos_time >= 0:
        doc["position_time"] = ms_to_iso(pos_time)
    if static_time >= 0:
        doc["static_time"] = ms_to_iso(static_time)
    if stored is not None and doc == stored:
        return None
    return doc, max(newest, stored_version or 0)
