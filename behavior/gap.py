"""AIS gaps ("going dark"): a vessel that stops reporting for hours after it had been reporting.

Definition (defaults from Global Fishing Watch's "suspected AIS disabling" events):
- A gap is two consecutive positions of one vessel at least ``gap.min_hours`` (12 h) apart in time.
  12 h is about the revisit time of the AIS satellites, so a silence that long is not explained by
  reception alone. Gaps of ``gap.short_min_hours`` (1 h) up to 12 h are reported too, with
  severity "low" (subtype ``short``), because they matter near a suspicious encounter.
- Both ends must be more than ``gap.min_shore_nm`` (50 nm) from shore: more than 99 % of terrestrial
  reception happens within 50 nm, so a silence close to the coast is usually a reception hole or a
  ship in port, not a transponder switched off. Set 0 to report every gap.
- Each gap carries its start (last position before), end (first position after), the distance
  between the two positions and the implied speed across the gap (distance / time): a ship that
  "reappears" 400 nm away after 14 h (29 kn) is worth a look.
- Ships only (ITU-R M.585, ``identity.is_ship``; ``gap.ships_only``): a net buoy taken out of
  the water or a SART switched off is not a transponder going dark.
- A vessel that is silent *now* (its ``ships-seen`` ``position_time`` at least ``gap.min_hours`` before
  the end of the window) is reported as an ongoing gap (subtype ``dark``). Its id is the same as
  the gap it becomes when the vessel reappears (type + MMSI + start), so it is updated, not doubled.

In the cluster: the tracks come as 10-minute slot summaries (``behavior.tracks``) whose min/max
message times are exact, so gap ends are exact to the message; the position before a gap that
started before the read window is one ``top_hits size 1`` per vessel (``TrackReader.last_before``).
"""
from __future__ import annotations

from aiswatch.behavior.cluster import search
from aiswatch.behavior.events import Event, fmt, iso, stable_round
from aiswatch.behavior.geo import Geography
from aiswatch.behavior.identity import is_ship
from aiswatch.behavior.tracks import Slot, TrackReader
from aiswatch.common.geodesy import KM_PER_NM, haversine_km
from aiswatch.common.times import epoch_ms

HOUR_MS = 3_600_000


def _gap_event(mmsi: str, before: Slot, after: Slot, geo: Geography, cfg: dict) -> Event | None:
    dt_h = (after.first - before.last) / HOUR_MS
    if dt_h < cfg["short_min_hours"]:
        return None
    a_lat, a_lon, b_lat, b_lon = before.lat, before.lon, after.lat, after.lon
    shore_a, shore_b = geo.shore_nm(a_lat, a_lon), geo.shore_nm(b_lat, b_lon)
    if min(shore_a, shore_b) < cfg["min_shore_nm"]:
        return None
    dist_nm = float(haversine_km(a_lat, a_lon, b_lat, b_lon)) / KM_PER_NM
    long_gap = dt_h >= cfg["min_hours"]
    details = {"duration_h": stable_round(dt_h, 3), "distance_nm": stable_round(dist_nm, 2),
               "implied_speed_kn": stable_round(dist_nm / dt_h, 2) if dt_h > 0 else None,
               "start_lat": stable_round(a_lat, 5), "start_lon": stable_round(a_lon, 5), "end_lat": stable_round(b_lat, 5),
               "end_lon": stable_round(b_lon, 5), "start_shore_nm": stable_round(shore_a, 1), "end_shore_nm": stable_round(shore_b, 1),
               "region": geo.region(a_lat, a_lon)}
    return Event(type="gap", subtype="gap" if long_gap else "short", severity="high" if long_gap else "low",
                 mmsi=[mmsi], start_ms=before.last, end_ms=after.first, lat=a_lat, lon=a_lon, details=details,
                 summary=f"silent {fmt(dt_h, 1)} h, reappeared {fmt(dist_nm, 1)} nm away")


def detect_gaps(tracks: dict[str, list[Slot]], reader: TrackReader, geo: Geography, cfg: dict,
                since_ms: int, until_ms: int, read_from: int | None = None) -> list[Event]:
    """Gaps that ended inside [since, until): the reappearance is in the window.

    ``read_from``: where the tracks begin (the start of the context); the position before a
    vessel's first slot is looked up before it.
    """
    events: list[Event] = []
    if cfg.get("ships_only", True):
        tracks = {m: t for m, t in tracks.items() if is_ship(m)}
    # vessels whose first position in the tracks is inside the window need the position before it
    need_before = [m for m, t in tracks.items() if t and t[0].first >= since_ms]
    look_from = read_from if read_from is not None else tracks_start(tracks, since_ms)
    before = reader.last_before(look_from, int(cfg["lookback_days"] * 24 * HOUR_MS),
                                need_before) if need_before else {}
    for mmsi, track in tracks.items():
        previous = before.get(mmsi)
        for slot in track:
            if previous is not None and since_ms <= slot.first < until_ms:
                # the first message of this slot vs the last one of the previous non-empty slot:
                # times are exact; positions are the slot means (a ship moves < 10 min x speed
                # within a slot, small against the 50 nm shore filter and a gap's distance)
                event = _gap_event(mmsi, previous, slot, geo, cfg)
                if event:
                    events.append(event)
            previous = slot
    return events


def tracks_start(tracks: dict[str, list[Slot]], since_ms: int) -> int:
    """The earliest slot start read (the previous position must come from before it)."""
    starts = [t[0].key for t in tracks.values() if t]
    return min(starts + [since_ms])


def detect_dark_now(client, ships_index: str, geo: Geography, cfg: dict, until_ms: int,
                    page_size: int = 1000) -> list[Event]:
    """Vessels whose latest position (ships-seen) is >= min_hours before ``until`` and recent enough.

    Paged with search_after on (position_time, mmsi): mmsi is the ships-seen id, so the sort is unique.
    """
    if not cfg.get("dark_now", True) or not client.indices.exists(index=ships_index):
        return []
    oldest = until_ms - int(cfg["lookback_days"] * 24 * HOUR_MS)
    newest = until_ms - int(cfg["min_hours"] * HOUR_MS)
    body: dict = {"size": page_size, "_source": ["mmsi", "position_time", "lat", "lon"],
                  "sort": [{"position_time": "asc"}, {"mmsi": "asc"}],
                  "query": {"range": {"position_time": {"gte": oldest, "lte": newest, "format": "epoch_millis"}}}}
    events = []
    while True:
        resp = search(client, "search_after paging of ships-seen (dark vessels)", index=ships_index, body=body,
                      filter_path=["took", "hits.hits._id", "hits.hits._source", "hits.hits.sort"])
        hits = (resp.get("hits") or {}).get("hits") or []
        for hit in hits:
            event = _dark_event(hit, geo, cfg, until_ms)
            if event:
                events.append(event)
        if len(hits) < page_size:
            return events
        body["search_after"] = hits[-1]["sort"]


def _dark_event(hit: dict, geo: Geography, cfg: dict, until_ms: int) -> Event | None:
    src = hit["_source"]
    if src.get("lat") is None or src.get("lon") is None:
        return None
    if cfg.get("ships_only", True) and not is_ship(str(src.get("mmsi") or hit["_id"])):
        return None
    t = epoch_ms(src["position_time"])
    shore = geo.shore_nm(src["lat"], src["lon"])
    if shore < cfg["min_shore_nm"]:
        return None
    dt_h = (until_ms - t) / HOUR_MS
    return Event(
        type="gap", subtype="dark", severity="high", mmsi=[str(src.get("mmsi") or hit["_id"])], start_ms=t,
        end_ms=until_ms, lat=src["lat"], lon=src["lon"], ongoing=True,
        details={"duration_h": stable_round(dt_h, 3), "start_lat": stable_round(src["lat"], 5), "start_lon": stable_round(src["lon"], 5),
                 "start_shore_nm": stable_round(shore, 1), "last_seen": iso(t), "region": geo.region(src["lat"], src["lon"])},
        summary=f"dark for {fmt(dt_h, 1)} h so far")
