"""Impossible movement and position spoofing.

Definitions (thresholds in ``spoofing.*``):
- ``jump``: the implied speed between consecutive positions exceeds ``max_speed_kn`` (50 kn, faster
  than any merchant ship) times ``tolerance`` (1.2), over at least ``min_jump_nm`` (2 nm) so GPS
  noise over a few seconds does not count. Typical of spoofed or shared MMSIs and bad GNSS.
- ``stationary_moving``: the reports say speed ~0 (mean below ``stationary_max_sog_kn``) while the
  mean positions move at ``stationary_min_implied_kn`` (3 kn) or more, over ``min_slots`` consecutive
  slots: a replayed or fabricated position feed.
- ``speed_mismatch``: reported and implied speed differ by more than ``mismatch_kn`` (10 kn) and by more
  than ``mismatch_ratio`` of the larger, over ``min_slots`` consecutive slots.

In the cluster: a jump moves the mean position of the slots after it by the full jump, so it shows
as an impossible implied speed between consecutive slot means; candidates are then localised with
1-minute slots of that one vessel (one small aggregation each), so the event time is accurate to
about a minute. (A spoofed position that lasts only a fraction of one slot and comes back moves
that slot's mean only a little and can be missed: the price of not downloading positions.)
"""
from __future__ import annotations

from behavior.events import Event
from behavior.geo import Geography, haversine_km, KM_PER_NM
from behavior.refine import refine_edges
from behavior.tracks import Slot, TrackReader

HOUR_MS = 3_600_000


def _nm(a_lat, a_lon, b_lat, b_lon) -> float:
    return float(haversine_km(a_lat, a_lon, b_lat, b_lon)) / KM_PER_NM


def _implied(a: Slot, b: Slot) -> tuple[float, float]:
    """(distance nm, implied speed kn) between two slots' mean positions."""
    dist = _nm(a.lat, a.lon, b.lat, b.lon)
    dt_h = max(b.mid - a.mid, 1000.0) / HOUR_MS
    return dist, dist / dt_h


def detect_spoofing(tracks: dict[str, list[Slot]], reader: TrackReader | None, geo: Geography, cfg: dict,
                    since_ms: int, until_ms: int, slot_ms: int) -> list[Event]:
    limit = cfg["max_speed_kn"] * cfg["tolerance"]
    events: list[Event] = []
    for mmsi, track in tracks.items():
        candidates: list[tuple[int, int]] = []   # (from ms, to ms) spans to localise
        for i, slot in enumerate(track):
            if slot.last < since_ms:
                continue
            if i > 0:
                prev = track[i - 1]
                dist, speed = _implied(prev, slot)
                if dist >= cfg["min_jump_nm"] and speed > limit and slot.first - prev.last < 2 * slot_ms:
                    candidates.append((prev.first, slot.last))
        for span in _merge_spans(candidates):
            ev = _localise_jump(reader, mmsi, span, limit, cfg, geo)
            if ev:
                events.append(ev)
        events.extend(_sustained(mmsi, track, cfg, geo, since_ms, slot_ms, reader))
    return events


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _localise_jump(reader, mmsi, span, limit, cfg, geo) -> Event | None:
    fine: list[Slot] = []
    if reader is not None:
        fine = reader.slots(span[0], span[1] + 1, mmsis=[mmsi], slot_ms=60_000).get(mmsi, [])
    best = None
    for a, b in zip(fine, fine[1:]):
        dist, speed = _implied(a, b)
        if dist >= cfg["min_jump_nm"] and speed > limit and (best is None or dist > best[0]):
            best = (dist, speed, a, b)
    if best is None:
        return None
    dist, speed, a, b = best
    start, end = a.last, b.first
    return Event(type="spoofing", subtype="jump", severity="high", mmsi=[mmsi], start_ms=start, end_ms=end,
                 lat=b.lat, lon=b.lon,
                 details={"distance_nm": round(dist, 2), "implied_speed_kn": round(speed, 1),
                          "from_lat": round(a.lat, 5), "from_lon": round(a.lon, 5),
                          "to_lat": round(b.lat, 5), "to_lon": round(b.lon, 5), "region": geo.region(b.lat, b.lon)},
                 summary=f"jumped {dist:.1f} nm at an implied {speed:.0f} kn")


def _sustained(mmsi: str, track: list[Slot], cfg: dict, geo: Geography, since_ms: int, slot_ms: int,
               reader: TrackReader | None) -> list[Event]:
    """Stationary-but-moving and speed-mismatch runs over consecutive slot pairs."""
    limit = cfg["max_speed_kn"] * cfg["tolerance"]
    flags: dict[str, list[int]] = {"stationary_moving": [], "speed_mismatch": []}
    for i in range(1, len(track)):
        a, b = track[i - 1], track[i]
        if b.first - a.last > 2 * slot_ms or a.sog is None or b.sog is None:
            continue
        dist, implied = _implied(a, b)
        if implied > limit:
            continue  # a jump, reported above
        if max(a.sog, b.sog) <= cfg["stationary_max_sog_kn"] and implied >= cfg["stationary_min_implied_kn"]:
            flags["stationary_moving"].append(i)
        reported = (a.sog + b.sog) / 2
        diff = abs(reported - implied)
        if diff > cfg["mismatch_kn"] and diff > cfg["mismatch_ratio"] * max(reported, implied):
            flags["speed_mismatch"].append(i)
    events = []
    for subtype, idx in flags.items():
        for run in _consecutive(idx):
            if len(run) < cfg["min_slots"]:
                continue
            first, last = track[run[0] - 1], track[run[-1]]
            if last.last < since_ms:
                continue
            start, end = first.first, last.last
            if subtype == "stationary_moving":
                start, end = refine_edges(reader, mmsi, start, end, slot_ms,
                                          lambda s: s.sog is not None and s.sog <= cfg["stationary_max_sog_kn"])
            pairs = [_implied(track[i - 1], track[i])[1] for i in run]
            reported = [track[i].sog for i in run]
            events.append(Event(
                type="spoofing", subtype=subtype, severity="medium", mmsi=[mmsi], start_ms=start,
                end_ms=end, lat=last.lat, lon=last.lon,
                details={"slots": len(run), "implied_speed_kn": round(sum(pairs) / len(pairs), 1),
                         "reported_speed_kn": round(sum(reported) / len(reported), 1),
                         "region": geo.region(last.lat, last.lon)},
                summary=f"{subtype.replace('_', ' ')}: reported {sum(reported) / len(reported):.1f} kn, "
                        f"moving {sum(pairs) / len(pairs):.1f} kn"))
    return events


def _consecutive(idx: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in idx:
        if out and i == out[-1][-1] + 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out
