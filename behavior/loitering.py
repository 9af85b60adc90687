"""Loitering: a vessel that stays slow, far out at sea, for hours.

Definition (defaults from Global Fishing Watch's loitering events):
- average speed below ``loitering.max_speed_kn`` (2 kn) ...
- ... for at least ``loitering.min_hours`` (4 h; GFW's reports use 4 h, older work 8 h) ...
- ... at least ``loitering.min_shore_nm`` (20 nm) from shore, and not inside a port or anchorage
  area (``data/ports.yaml``): ships waiting at an anchorage are doing what anchorages are for.
- A silence longer than ``loitering.max_slot_gap_hours`` (1 h) ends the episode (no interpolation).
- Ships only (ITU-R M.585, ``identity.is_ship``): a net buoy drifting for hours is not loitering.
  Port and anchorage areas include the anchorages learnt from the data (``behavior.anchorages``).

Carriers (reefers, tankers) that loiter offshore are the classic sign of a transshipment whose
partner does not broadcast AIS, hence the event even without a visible encounter.

In the cluster: the 10-minute slot summaries (``behavior.tracks``) give each slot's mean position
and mean reported speed; a slot counts when its mean speed is below the threshold (slots without
reported speed use the implied speed between slot means) and its mean position is far enough from
shore and outside every port. Consecutive qualifying slots form the episode; its start and end are
then refined on 1-minute slots of that vessel (``behavior.refine``), to about one report.
"""
from __future__ import annotations

from statistics import fmean

from aiswatch.behavior.events import Event, fmt, stable_round
from aiswatch.behavior.geo import Geography
from aiswatch.behavior.identity import is_ship
from aiswatch.behavior.refine import refine_edges
from aiswatch.behavior.tracks import Slot, TrackReader
from aiswatch.common.geodesy import KM_PER_NM, haversine_km

HOUR_MS = 3_600_000


def slot_speed_kn(track: list[Slot], i: int) -> float | None:
    """Reported mean speed of slot i, else the implied speed from its neighbours' mean positions."""
    slot = track[i]
    if slot.sog is not None:
        return slot.sog
    j = i - 1 if i > 0 else i + 1
    if not 0 <= j < len(track):
        return None
    other = track[j]
    dt_h = abs(slot.mid - other.mid) / HOUR_MS
    if dt_h <= 0:
        return None
    return float(haversine_km(slot.lat, slot.lon, other.lat, other.lon)) / KM_PER_NM / dt_h


def runs(track: list[Slot], ok: list[bool], max_gap_ms: int) -> list[list[int]]:
    """Indices of consecutive qualifying slots, split where the track is silent longer than max_gap."""
    out: list[list[int]] = []
    current: list[int] = []
    for i, good in enumerate(ok):
        if good and current and track[i].first - track[current[-1]].last > max_gap_ms:
            out.append(current)
            current = []
        if good:
            current.append(i)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def detect_loitering(tracks: dict[str, list[Slot]], geo: Geography, cfg: dict, since_ms: int,
                     until_ms: int, slot_ms: int, reader: TrackReader | None = None) -> list[Event]:
    events = []
    for mmsi, track in tracks.items():
        if cfg.get("ships_only", True) and not is_ship(mmsi):
            continue
        speeds = [slot_speed_kn(track, i) for i in range(len(track))]
        ok = []
        for slot, speed in zip(track, speeds):
            ok.append(speed is not None and speed < cfg["max_speed_kn"]
                      and geo.port_at(slot.lat, slot.lon) is None
                      and geo.shore_nm(slot.lat, slot.lon) >= cfg["min_shore_nm"])
        for run in runs(track, ok, int(cfg["max_slot_gap_hours"] * HOUR_MS)):
            first, last = track[run[0]], track[run[-1]]
            duration_h = (last.last - first.first) / HOUR_MS
            # an episode still going on at the end of the previous window is emitted once more, closed
            # and with its end refined
            if duration_h < cfg["min_hours"] or last.last < since_ms - 2 * slot_ms:
                continue
            avg_speed = fmean(speeds[i] for i in run)   # over time: the mean of the slot means
            if avg_speed >= cfg["max_speed_kn"]:
                continue
            ongoing = until_ms - last.last < 2 * slot_ms
            start, end = refine_edges(reader, mmsi, first.first, last.last, slot_ms,
                                      lambda s: s.sog is not None and s.sog < cfg["max_speed_kn"],
                                      refine_end=not ongoing)
            duration_h = (end - start) / HOUR_MS
            lat = fmean(track[i].lat for i in run)
            lon = fmean(track[i].lon for i in run)
            shore = geo.shore_nm(lat, lon)
            events.append(Event(
                type="loitering", subtype="loitering", severity="medium", mmsi=[mmsi], start_ms=start,
                end_ms=end, lat=lat, lon=lon, ongoing=ongoing,
                details={"duration_h": stable_round(duration_h, 3), "avg_speed_kn": stable_round(avg_speed, 2),
                         "shore_nm": stable_round(shore, 1), "slots": len(run), "region": geo.region(lat, lon)},
                summary=f"{fmt(duration_h, 1)} h at {fmt(avg_speed, 1)} kn, {fmt(shore, 0)} nm from shore"))
    return events
