"""Refine an episode's start and end from 10-minute slots to about one report.

Slot-level detection decides on whole 10-minute slots, so the slot in which a ship slowed down (half
fast, half slow) is left out and the episode starts up to a slot late. For candidates only, this
asks for 1-minute slots of the one vessel around each edge (two small aggregations, ~20 buckets
each) and moves the edge to the first/last 1-minute slot that satisfies the same condition, so
the start and end are accurate to about one reporting interval.

The end of an episode still going on at the end of the window is not refined (there is nothing
after it yet): the run that sees it end refines it. Should a refinement query fail, the
slot-level edge stands and a warning says so.
"""
from __future__ import annotations

import logging
from typing import Callable

from elasticsearch import ApiError, TransportError

from aiswatch.behavior.cluster import ServerRefused
from aiswatch.behavior.tracks import Slot, TrackReader

log = logging.getLogger(__name__)

FINE_MS = 60_000
EDGE_MS = 3 * FINE_MS   # how far past a slot-level edge the 1-minute slots are read


def fine_or_none(reader: TrackReader, what: str, mmsis: list[str], since_ms: int, until_ms: int):
    """``reader.fine_slots`` or None (with a warning) when the query fails."""
    try:
        return reader.fine_slots(mmsis, since_ms, until_ms, FINE_MS)
    except (ApiError, TransportError, ServerRefused) as exc:
        log.warning("refining the %s of %s failed, the 10-minute slot edge stands: %s", what, ",".join(mmsis), exc)
        return None


def refine_edges(reader: TrackReader | None, mmsi: str, start_ms: int, end_ms: int, slot_ms: int,
                 ok: Callable[[Slot], bool], refine_end: bool = True) -> tuple[int, int]:
    """(start, end) moved to the first/last 1-minute slot around each edge where ``ok`` holds."""
    if reader is None:
        return start_ms, end_ms
    # the change happened in the slot before the first qualifying one (after the last one), so the
    # 1-minute slots of that slot and a few minutes past the slot-level edge are enough
    head = fine_or_none(reader, "start", [mmsi], start_ms - slot_ms, start_ms + EDGE_MS)
    tail = fine_or_none(reader, "end", [mmsi], end_ms - EDGE_MS, end_ms + slot_ms) if refine_end else None
    head = (head or {}).get(mmsi, [])
    tail = (tail or {}).get(mmsi, [])
    # The change happened between the last report of the old behaviour and the first of the new
    # one. A 1-minute slot holding both (its mean fails the condition) ends with the new one and
    # starts with the old one, so at each edge the failing neighbour slot's last/first message is
    # within that interval either way: within one reporting interval of the true change.
    near = 5 * FINE_MS
    new_start = start_ms
    fails = [s for s in head if not ok(s) and s.key < start_ms]
    after = [s for s in head if ok(s) and (not fails or s.key > fails[-1].key)]
    if after:
        new_start = after[0].first
        if fails and after[0].first - fails[-1].last <= near:
            new_start = fails[-1].last
    new_end = end_ms
    fails = [s for s in tail if not ok(s) and s.last > end_ms]
    before = [s for s in tail if ok(s) and (not fails or s.key < fails[0].key)]
    if before:
        new_end = before[-1].last
        if fails and fails[0].first - before[-1].last <= near:
            new_end = fails[0].first
    return min(new_start, start_ms), max(new_end, end_ms)
