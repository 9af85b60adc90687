"""Encounters: two vessels side by side, slow, far from any port, for hours (possible transshipment).

Definition (defaults from Global Fishing Watch's encounter events):
- the two vessels' positions are within ``encounter.max_distance_m`` (500 m) of each other ...
- ... for at least ``encounter.min_hours`` (2 h) ...
- ... both slow: the median speed of each over the encounter below ``encounter.max_speed_kn`` (2 kn) ...
- ... at least ``encounter.min_port_km`` (10 km) from any port or anchorage area (the shipped
  ports, the user's ``geography`` entries and the anchorages learnt from the data, see
  ``behavior.anchorages``), so two ships moored side by side or swinging at the same anchorage
  are not an encounter, and at least ``encounter.min_shore_nm`` (1 nm) from shore: docks outside
  every port list are where boats raft.
- ... both ships by their MMSI (ITU-R M.585, ``identity.is_ship``): a net buoy beside its fishing
  vessel is not a second vessel.
- Tracks are compared on 10-minute slots (GFW resamples to 10 minutes) and an encounter does not
  bridge a silence longer than ``encounter.max_slot_gap_hours`` (1 h).
- A vessel may be in several encounters at once (a carrier with two fishing vessels alongside):
  every close pair is its own event, reported once per encounter with start, end, median
  distance, both MMSIs and both names.

Ships crossing paths at speed are close for a minute, not two hours, and they are not slow.

Gear (``gear``/``with_vessel``, severity info): a ship within ``gear.max_distance_m`` (1,000 m) of
a transponder that is not a ship (``identity.gear_kind``: net buoys, craft of a parent ship,
handhelds, numbers outside every class) for at least ``gear.min_hours`` (2 h), at any speed, with
the same port, anchorage and shore exclusions: gear in the water beside its fishing vessel is
what an analyst wants to see, as information, never as an encounter. One event per ship and
transponder.

In the cluster: the 10-minute slot summaries (``behavior.tracks``) give each vessel's mean position
per slot; the client bins the slow slots of each time slot on a ~1 km grid and compares only
neighbours, so the pair search is linear in slots. With ``encounter.refine`` the start and end are
then refined on 1-minute slots of just the two vessels (two small aggregations per encounter), so
they are accurate to about a minute instead of a slot.
"""
from __future__ import annotations

import math
from collections import defaultdict
from statistics import median, fmean

from aiswatch.behavior.events import Event, fmt, stable_round
from aiswatch.behavior.geo import Geography
from aiswatch.behavior.identity import gear_kind, is_ship
from aiswatch.behavior.loitering import slot_speed_kn
from aiswatch.behavior.refine import EDGE_MS, FINE_MS, fine_or_none
from aiswatch.behavior.tracks import Slot, TrackReader
from aiswatch.common.geodesy import haversine_km

HOUR_MS = 3_600_000
GRID_DEG = 0.01      # ~1.1 km in latitude: two points within 500 m are in the same or a neighbouring cell
PAIR_MS = 4 * 60_000  # refinement pairs reports of the two vessels at most this far apart in time


def away_from_ports_and_shore(geo: Geography, cfg: dict):
    """A memoised test (per ~1 km cell) that a position is >= min_port_km from every port or
    anchorage and >= min_shore_nm from shore."""
    memo: dict[tuple[float, float], bool] = {}

    def ok(lat: float, lon: float) -> bool:
        cell = (round(lat, 2), round(lon, 2))
        if cell not in memo:
            memo[cell] = (geo.km_from_port(lat, lon) >= cfg["min_port_km"]
                          and geo.shore_nm(lat, lon) >= cfg.get("min_shore_nm", 0.0))
        return memo[cell]
    return ok


def _close_pairs(tracks: dict[str, list[Slot]], geo: Geography, cfg: dict, slow_only: bool = True,
                 pair_ok=lambda a, b: True):
    """{(mmsi_a, mmsi_b): {slot_key: (distance_m, slot_a, slot_b)}} for slots within the distance,
    far from ports and shore; ``slow_only``: only slots slower than ``max_speed_kn``; ``pair_ok``:
    which MMSI pairs count."""
    per_time: dict[int, list[Slot]] = defaultdict(list)
    for mmsi, track in tracks.items():
        for i, slot in enumerate(track):
            if slow_only:
                speed = slot_speed_kn(track, i)
                if speed is None or speed >= cfg["max_speed_kn"]:
                    continue
            per_time[slot.key].append(slot)
    place_ok = away_from_ports_and_shore(geo, cfg)
    pairs: dict[tuple[str, str], dict[int, tuple]] = defaultdict(dict)
    max_km = cfg["max_distance_m"] / 1000.0
    grid_deg = max(GRID_DEG, max_km / 111.0 * 1.01)
    for key, slots in per_time.items():
        if len(slots) < 2:
            continue
        grid: dict[tuple[int, int], list[Slot]] = defaultdict(list)
        lon_step = grid_deg
        for s in slots:
            lon_step = grid_deg / max(math.cos(math.radians(s.lat)), 0.05)
            grid[(int(math.floor(s.lat / grid_deg)), int(math.floor(s.lon / lon_step)))].append(s)
        for (gy, gx), members in grid.items():
            neighbours = [o for dy in (-1, 0, 1) for dx in (-1, 0, 1) for o in grid.get((gy + dy, gx + dx), [])]
            for a in members:
                for b in neighbours:
                    if a.mmsi >= b.mmsi or not pair_ok(a.mmsi, b.mmsi):
                        continue
                    d_km = float(haversine_km(a.lat, a.lon, b.lat, b.lon))
                    if d_km > max_km:
                        continue
                    if place_ok(a.lat, a.lon):
                        pairs[(a.mmsi, b.mmsi)][key] = (d_km * 1000.0, a, b)
    return pairs


def _long_episodes(pairs: dict, max_gap: int, slot_ms: int, since_ms: int, min_hours: float):
    """(pair, by_slot, slot keys, start, end) of every episode of every pair that lasts ``min_hours``
    and ends after the window's start (less two slots: see loitering)."""
    for pair, by_slot in pairs.items():
        for ep in _episodes(by_slot, max_gap, slot_ms):
            first, last = by_slot[ep[0]], by_slot[ep[-1]]
            start = max(first[1].first, first[2].first)
            end = min(last[1].last, last[2].last)
            if end >= since_ms - 2 * slot_ms and (end - start) / HOUR_MS >= min_hours:
                yield pair, by_slot, ep, start, end


def _where(by_slot: dict[int, tuple], ep: list[int]) -> tuple[float, float, float]:
    """Mean position of the pair and median distance (m) over an episode."""
    lat = fmean((by_slot[k][1].lat + by_slot[k][2].lat) / 2 for k in ep)
    lon = fmean((by_slot[k][1].lon + by_slot[k][2].lon) / 2 for k in ep)
    return lat, lon, median(by_slot[k][0] for k in ep)


def _episodes(by_slot: dict[int, tuple], max_gap: int, slot_ms: int) -> list[list[int]]:
    """Slot keys of one pair split where the pair is apart (or silent) longer than ``max_gap``."""
    keys = sorted(by_slot)
    episodes: list[list[int]] = [[keys[0]]]
    for key in keys[1:]:
        if key - episodes[-1][-1] > max(max_gap, slot_ms):
            episodes.append([key])
        else:
            episodes[-1].append(key)
    return episodes


def detect_encounters(tracks: dict[str, list[Slot]], reader: TrackReader | None, geo: Geography, cfg: dict,
                      since_ms: int, until_ms: int, slot_ms: int) -> list[Event]:
    events = []
    max_gap = int(cfg["max_slot_gap_hours"] * HOUR_MS)
    ships = {m: t for m, t in tracks.items() if is_ship(m) or not cfg.get("ships_only", True)}
    for (ma, mb), by_slot, ep, start, end in _long_episodes(_close_pairs(ships, geo, cfg), max_gap, slot_ms,
                                                             since_ms, cfg["min_hours"]):
        speeds_a = [s for s in (by_slot[k][1].sog for k in ep) if s is not None]
        speeds_b = [s for s in (by_slot[k][2].sog for k in ep) if s is not None]
        med_a = median(speeds_a) if speeds_a else 0.0
        med_b = median(speeds_b) if speeds_b else 0.0
        if med_a >= cfg["max_speed_kn"] or med_b >= cfg["max_speed_kn"]:
            continue
        refined = False
        ongoing = until_ms - end < 2 * slot_ms
        if cfg.get("refine") and reader is not None:
            start, end, refined = _refine(reader, ma, mb, start, end, slot_ms, cfg, refine_end=not ongoing)
        lat, lon, dist = _where(by_slot, ep)
        duration_h = (end - start) / HOUR_MS
        events.append(Event(
            type="encounter", subtype="encounter", severity="high", mmsi=[ma, mb], start_ms=start, end_ms=end,
            lat=lat, lon=lon, ongoing=ongoing,
            details={"duration_h": stable_round(duration_h, 3), "median_distance_m": stable_round(dist, 1),
                     "median_speed_kn": {ma: stable_round(med_a, 2), mb: stable_round(med_b, 2)},
                     "port_km": stable_round(geo.km_from_port(lat, lon), 1), "shore_nm": stable_round(geo.shore_nm(lat, lon), 1),
                     "refined": refined, "region": geo.region(lat, lon)},
            summary=f"{ma} and {mb} within {fmt(dist, 0)} m for {fmt(duration_h, 1)} h"))
    return events


def detect_gear(tracks: dict[str, list[Slot]], geo: Geography, cfg: dict, encounter_cfg: dict,
                since_ms: int, until_ms: int, slot_ms: int) -> list[Event]:
    """``gear`` events: a ship with a non-ship transponder close by for hours (see the module docstring)."""
    kinds = {m: gear_kind(m) for m in tracks}
    wanted = {m: t for m, t in tracks.items() if is_ship(m) or kinds[m]}
    place = {"max_distance_m": cfg["max_distance_m"], "min_port_km": encounter_cfg["min_port_km"],
             "min_shore_nm": encounter_cfg.get("min_shore_nm", 0.0)}

    def ship_and_gear(a: str, b: str) -> bool:
        return (is_ship(a) and kinds[b] is not None) or (is_ship(b) and kinds[a] is not None)

    events = []
    max_gap = int(encounter_cfg["max_slot_gap_hours"] * HOUR_MS)
    pairs = _close_pairs(wanted, geo, place, slow_only=False, pair_ok=ship_and_gear)
    for (ma, mb), by_slot, ep, start, end in _long_episodes(pairs, max_gap, slot_ms, since_ms, cfg["min_hours"]):
        ship, gear = (ma, mb) if is_ship(ma) else (mb, ma)
        lat, lon, dist = _where(by_slot, ep)
        duration_h = (end - start) / HOUR_MS
        events.append(Event(
            type="gear", subtype="with_vessel", severity="info", mmsi=[ship, gear], start_ms=start, end_ms=end,
            lat=lat, lon=lon, ongoing=until_ms - end < 2 * slot_ms,
            details={"duration_h": stable_round(duration_h, 3), "ship": ship, "transponder": gear,
                     "transponder_kind": kinds[gear], "median_distance_m": stable_round(dist, 1),
                     "shore_nm": stable_round(geo.shore_nm(lat, lon), 1), "region": geo.region(lat, lon)},
            summary=f"{ship} with transponder {gear} ({kinds[gear]}) within {fmt(dist, 0)} m "
                    f"for {fmt(duration_h, 1)} h"))
    return events


def _refine(reader: TrackReader, ma: str, mb: str, start: int, end: int, slot_ms: int, cfg: dict,
            refine_end: bool = True):
    """Start/end from 1-minute slots of the pair around the slot-level start and end.

    The two vessels report at their own times (a slow class B ship every 3 min), so each 1-minute
    slot of one is paired with every 1-minute slot of the other within ``PAIR_MS``; a pair counts
    when both are slow and within the distance. The start is the first time both are known to be
    there, the end the last.
    """
    fine = FINE_MS
    head = fine_or_none(reader, "encounter start", [ma, mb], start - slot_ms - EDGE_MS, start + EDGE_MS)
    tail = (fine_or_none(reader, "encounter end", [ma, mb], end - EDGE_MS, end + slot_ms + EDGE_MS)
            if refine_end else None)
    if head is None and tail is None:
        return start, end, False
    head, tail = head or {}, tail or {}

    def close_pairs(tracks):
        a, b = tracks.get(ma, []), tracks.get(mb, [])
        out = []
        slow = lambda s: s.sog is not None and s.sog < cfg["max_speed_kn"]  # noqa: E731
        for sa in filter(slow, a):
            for sb in filter(slow, b):
                if abs(sb.key - sa.key) <= PAIR_MS and \
                        float(haversine_km(sa.lat, sa.lon, sb.lat, sb.lon)) * 1000.0 <= cfg["max_distance_m"]:
                    out.append((sa, sb))
        return out

    def slow(s):
        return s.sog is not None and s.sog < cfg["max_speed_kn"]

    def edge_start(track, s):
        # a 1-minute slot mixing the last fast and the first slow report averages to "fast" but
        # ends with the slow one: take its last message (as behavior.refine does)
        before = [p for p in track if p.key < s.key]
        if before and not slow(before[-1]) and s.first - before[-1].last <= 5 * fine:
            return before[-1].last
        return s.first

    def edge_end(track, s):
        after = [n for n in track if n.key > s.key]
        if after and not slow(after[0]) and after[0].first - s.last <= 5 * fine:
            return after[0].first
        return s.last

    head_close, tail_close = close_pairs(head), close_pairs(tail)
    new_start, new_end = start, end
    if head_close:
        a, b = min(head_close, key=lambda p: max(p[0].first, p[1].first))
        new_start = max(edge_start(head.get(ma, []), a), edge_start(head.get(mb, []), b))
    if tail_close:
        a, b = max(tail_close, key=lambda p: min(p[0].last, p[1].last))
        new_end = min(edge_end(tail.get(ma, []), a), edge_end(tail.get(mb, []), b))
    return new_start, new_end, bool(head_close or tail_close)
