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
- ``shared_mmsi``: one MMSI heard in two places within the same slot, again and again: a slot's
  positions spread (the diagonal of their box) farther than the vessel could have moved in it -
  ``tolerance`` x the higher of its reported mean speed and the implied speed between its mean and
  its neighbours' (at most ``max_speed_kn``) x the time between its first and last report - plus
  ``shared_margin_nm`` (1 nm); at least ``shared_min_slots`` (2) such slots, each within
  ``shared_join_hours`` (1 h) of the previous one, make one event. Two boats alternating every
  minute between places 3-10 nm apart leave the slot means standing still (no ``jump``), but
  every slot's box spans both places. A single stray position spreads one slot only: not an
  event. The two places are the corners of the widest slot's box that its mean lies between.
  Slots that spread so are left out of ``stationary_moving`` and ``speed_mismatch`` (their mean
  moves with the mix of the two places, not with a vessel).

In the cluster: a jump moves the mean position of the slots after it by the full jump, so it shows
as an impossible implied speed between consecutive slot means. Consecutive jumping slot pairs are
one chain and one event (an MMSI shared by two ships far apart jumps at every slot); the first
jump of a chain is localised on 1-minute slots of the two slots around it (one aggregation of ~20
buckets, whatever the chain's length), so the event time is accurate to about a minute; a chain
whose minutes show no jump was an artefact of the slot means and is dropped. At most
``max_refines`` (20) such queries per run; past that, slot-level times and a warning. (A spoofed
position that lasts only a fraction of one slot and comes back moves that slot's mean only a
little and can be missed: the price of not downloading positions.)
"""
from __future__ import annotations

import logging

from aiswatch.behavior.events import Event, fmt, stable_round
from aiswatch.behavior.geo import Geography
from aiswatch.behavior.refine import fine_or_none, refine_edges
from aiswatch.behavior.tracks import Slot, TrackReader
from aiswatch.common.geodesy import KM_PER_NM, haversine_km

log = logging.getLogger(__name__)

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
    budget = {"left": int(cfg["max_refines"]), "skipped": 0}
    for mmsi, track in tracks.items():
        spread = _spread_slots(track, cfg, slot_ms)
        events.extend(_shared_events(mmsi, track, spread, cfg, geo, since_ms, until_ms, slot_ms))
        candidates: list[int] = []   # i: the means of slots i-1 and i imply an impossible speed
        for i in range(1, len(track)):
            prev, slot = track[i - 1], track[i]
            if slot.last < since_ms:
                continue
            dist, speed = _implied(prev, slot)
            if dist >= cfg["min_jump_nm"] and speed > limit and slot.first - prev.last < 2 * slot_ms:
                candidates.append(i)
        for chain in _consecutive(candidates):
            event = _jump_event(reader, mmsi, track, chain, limit, cfg, geo, slot_ms, budget)
            if event is not None:
                events.append(event)
        events.extend(_sustained(mmsi, track, cfg, geo, since_ms, until_ms, slot_ms, reader, set(spread)))
    if budget["skipped"]:
        log.warning("spoofing: %d jump candidates past the cap of %d refinement queries per run "
                    "(spoofing.max_refines): their times are accurate to the 10-minute slot",
                    budget["skipped"], cfg["max_refines"])
    return events


def _jump_event(reader, mmsi: str, track: list[Slot], chain: list[int], limit: float, cfg: dict, geo: Geography,
                slot_ms: int, budget: dict) -> Event | None:
    """One event for a run of consecutive jumping slot pairs (a shared MMSI jumps at every slot).

    The first jump of the chain is localised on 1-minute slots of the two slots around it (its
    previous slot and its own: ~20 buckets, whatever the chain's length); the chain ends at its
    last jumping slot. Past the per-run cap the slot-level times stand.
    """
    best = None
    localised_to = None
    looked = 0        # 1-minute answers that came back
    for i in chain[:2]:   # the second pair only if the first one's minutes show no jump
        if reader is None or budget["left"] <= 0:
            if reader is not None:
                budget["skipped"] += 1
            break
        budget["left"] -= 1
        prev, slot = track[i - 1], track[i]
        localised_to = slot.key + slot_ms
        fine = fine_or_none(reader, "jump", [mmsi], prev.key, localised_to)
        if fine is None:
            continue
        looked += 1
        best = _largest_jump(fine.get(mmsi, []), limit, cfg)
        if best is not None:
            break
    refined = best is not None
    if best is None and looked == min(len(chain), 2):
        return None   # every minute was looked at and none jumps: the slot means made it up
    if best is None:
        a, b = track[chain[0] - 1], track[chain[0]]
        best = (*_implied(a, b), a, b, a.last, b.first)
    dist, speed, a, b, start, end = best
    # a chain that goes on past the localised jump (a shared MMSI) ends at its last jumping slot;
    # the slot after a jump's own slot also "jumps" (its mean is all new positions): not a new one
    last = track[chain[-1]]
    if localised_to is None or track[chain[-1] - 1].key >= localised_to:
        end = max(end, last.first)
    return Event(type="spoofing", subtype="jump", severity="high", mmsi=[mmsi], start_ms=start, end_ms=end,
                 lat=b.lat, lon=b.lon,
                 details={"distance_nm": stable_round(dist, 2), "implied_speed_kn": stable_round(speed, 1),
                          "from_lat": stable_round(a.lat, 5), "from_lon": stable_round(a.lon, 5),
                          "to_lat": stable_round(b.lat, 5), "to_lon": stable_round(b.lon, 5), "jumps": len(chain),
                          "refined": refined, "region": geo.region(b.lat, b.lon)},
                 summary=f"jumped {fmt(dist, 1)} nm at an implied {fmt(speed, 0)} kn"
                         + (f" ({len(chain)} jumps in a row)" if len(chain) > 1 else ""))


def _largest_jump(fine: list[Slot], limit: float, cfg: dict):
    """(distance, speed, from, to, start, end) of the largest jump between 1-minute slots, or None.

    A minute that holds reports from both sides of the jump averages to half-way and shows as two
    half jumps: then the jump goes from the minute before to the minute after, and it happened
    between that mixed minute's first and last report (within one reporting interval).
    """
    def jumps(a, b):
        dist, speed = _implied(a, b)
        return dist >= cfg["min_jump_nm"] and speed > limit, dist, speed

    best = None
    for i in range(len(fine) - 1):
        ok, dist, speed = jumps(fine[i], fine[i + 1])
        if not ok:
            continue
        found = (dist, speed, fine[i], fine[i + 1], fine[i].last, fine[i + 1].first)
        if i + 2 < len(fine):
            ok2, _, _ = jumps(fine[i + 1], fine[i + 2])
            whole, whole_speed = _implied(fine[i], fine[i + 2])
            if ok2 and whole > dist:
                mixed = fine[i + 1]
                found = (whole, whole_speed, fine[i], fine[i + 2], mixed.first, mixed.last)
        if best is None or found[0] > best[0]:
            best = found
    return best


def _spread_slots(track: list[Slot], cfg: dict, slot_ms: int) -> dict[int, float]:
    """{slot index: spread nm} of the slots whose positions spread farther than the vessel could move."""
    limit = cfg["max_speed_kn"] * cfg["tolerance"]
    out: dict[int, float] = {}
    for i, slot in enumerate(track):
        if not slot.has_box:
            continue
        spread = slot.spread_km() / KM_PER_NM
        if spread < cfg["shared_margin_nm"]:
            continue
        speed = slot.sog or 0.0
        for j in (i - 1, i + 1):
            if 0 <= j < len(track) and abs(track[j].mid - slot.mid) <= 2 * slot_ms:
                speed = max(speed, _implied(*sorted((slot, track[j]), key=lambda s: s.mid))[1])
        span_h = max(slot.last - slot.first, 1000) / HOUR_MS
        allowed = cfg["tolerance"] * min(speed, limit) * span_h + cfg["shared_margin_nm"]
        if spread > allowed:
            out[i] = spread
    return out


def _shared_events(mmsi: str, track: list[Slot], spread: dict[int, float], cfg: dict, geo: Geography,
                   since_ms: int, until_ms: int, slot_ms: int) -> list[Event]:
    """One ``shared_mmsi`` event per chain of spread slots (see the module docstring)."""
    join = int(cfg["shared_join_hours"] * HOUR_MS)
    chains: list[list[int]] = []
    for i in sorted(spread):
        if chains and track[i].first - track[chains[-1][-1]].last <= join:
            chains[-1].append(i)
        else:
            chains.append([i])
    events = []
    for chain in chains:
        first, last = track[chain[0]], track[chain[-1]]
        if len(chain) < cfg["shared_min_slots"] or last.last < since_ms - 2 * slot_ms:
            continue
        widest = track[max(chain, key=lambda i: spread[i])]
        (a_lat, a_lon), (b_lat, b_lon) = widest.box_ends()
        dist = _nm(a_lat, a_lon, b_lat, b_lon)
        events.append(Event(
            type="spoofing", subtype="shared_mmsi", severity="high", mmsi=[mmsi], start_ms=first.first,
            end_ms=last.last, lat=widest.lat, lon=widest.lon, ongoing=until_ms - last.last < 2 * slot_ms,
            details={"distance_nm": stable_round(dist, 2), "slots": len(chain),
                     "places": [[stable_round(a_lat, 5), stable_round(a_lon, 5)],
                                [stable_round(b_lat, 5), stable_round(b_lon, 5)]],
                     "max_spread_nm": stable_round(spread[track.index(widest)], 2),
                     "region": geo.region(widest.lat, widest.lon)},
            summary=f"heard in two places {fmt(dist, 1)} nm apart within the same 10 minutes, "
                    f"in {len(chain)} slots"))
    return events


def _sustained(mmsi: str, track: list[Slot], cfg: dict, geo: Geography, since_ms: int, until_ms: int,
               slot_ms: int, reader: TrackReader | None, skip: set[int] = frozenset()) -> list[Event]:
    """Stationary-but-moving and speed-mismatch runs over consecutive slot pairs (``skip``: slots
    whose mean stands for two places, not for a vessel)."""
    limit = cfg["max_speed_kn"] * cfg["tolerance"]
    flags: dict[str, list[int]] = {"stationary_moving": [], "speed_mismatch": []}
    for i in range(1, len(track)):
        a, b = track[i - 1], track[i]
        if b.first - a.last > 2 * slot_ms or a.sog is None or b.sog is None or i in skip or i - 1 in skip:
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
            if last.last < since_ms - 2 * slot_ms:   # see loitering
                continue
            start, end = first.first, last.last
            if subtype == "stationary_moving":
                start, end = refine_edges(reader, mmsi, start, end, slot_ms,
                                          lambda s: s.sog is not None and s.sog <= cfg["stationary_max_sog_kn"],
                                          refine_end=until_ms - last.last >= 2 * slot_ms)
            pairs = [_implied(track[i - 1], track[i])[1] for i in run]
            reported = [track[i].sog for i in run]
            events.append(Event(
                type="spoofing", subtype=subtype, severity="medium", mmsi=[mmsi], start_ms=start,
                end_ms=end, lat=last.lat, lon=last.lon,
                details={"slots": len(run), "implied_speed_kn": stable_round(sum(pairs) / len(pairs), 1),
                         "reported_speed_kn": stable_round(sum(reported) / len(reported), 1),
                         "region": geo.region(last.lat, last.lon)},
                summary=f"{subtype.replace('_', ' ')}: reported {fmt(sum(reported) / len(reported), 1)} kn, "
                        f"moving {fmt(sum(pairs) / len(pairs), 1)} kn"))
    return events


def _consecutive(idx: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in idx:
        if out and i == out[-1][-1] + 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out
