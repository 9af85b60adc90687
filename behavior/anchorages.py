"""Anchorages learnt from the data: the places where ships stop, as Global Fishing Watch learns them.

Definition (thresholds in ``anchorages.*``):
- a ship (ITU-R M.585) is *stationary* while its 10-minute slot means stay slow (slot speed below
  ``max_speed_kn``, 1 kn) within ``max_drift_m`` (500 m) of the stay's mean, with no silence over
  ``max_slot_gap_hours`` (1 h), for at least ``min_hours`` (4 h: a scheduled run reads 5 h of
  context, so it sees such a stay whole; GFW asks 12 h of years of data);
- only stays within ``max_shore_nm`` (20 nm, loitering's distance) of shore count: farther out,
  ships stopping for hours together (fishing grounds, transshipments) are what encounters and
  loitering are about, not a place to exclude;
- a stay belongs to the cell of a ``cell_deg`` grid (0.005 degree, ~0.55 km north-south, GFW uses
  ~0.5 km cells) that holds its mean position;
- a cell is an *anchorage* when at least ``min_vessels`` (3) distinct ships stayed in it or its
  eight neighbours, and not all at the same time: three ships stopped together at sea are a
  rendezvous, not a place ships use.

Each run learns from the slot summaries it has already read (no extra aggregation, so it works on
every server the detectors run on) and adds what it saw to ``aiswatch-anchorages``
(``es_templates/anchorages.json``): one document per cell with a stay (``cell``, its centre as
``location``, ``vessels``, each ship's stay span in ``stays``, ``anchorage`` true when the rule
holds). The anchorage cells join the shipped ports and the user's ``geography`` entries as circles
of ``radius_km`` (1 km): encounters and gear keep ``encounter.min_port_km`` from them, loitering
stays outside them. A process keeps the cells it has read or written and asks the cluster only for
cells it has not seen; a stay already known is written again only when it grew by
``write_every_hours`` (1 h), so a 10-minute schedule writes a moored ship's cell hourly.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import fmean

from aiswatch.behavior.events import iso, now_ms
from aiswatch.behavior.identity import is_ship
from aiswatch.behavior.loitering import slot_speed_kn
from aiswatch.behavior.tracks import Slot
from aiswatch.common.geodesy import haversine_km

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
MAX_STAYS_PER_CELL = 200    # ships kept per cell document (the latest stays)


@dataclass
class Stay:
    mmsi: str
    lat: float
    lon: float
    first: int
    last: int


def find_stays(tracks: dict[str, list[Slot]], cfg: dict, shore_nm=None) -> list[Stay]:
    """Every ship's stationary stays in the tracks within ``max_shore_nm`` of shore (``shore_nm(lat,
    lon)``; None: every stay) (see the module docstring)."""
    max_gap = int(cfg["max_slot_gap_hours"] * HOUR_MS)
    drift_km = cfg["max_drift_m"] / 1000.0
    min_ms = cfg["min_hours"] * HOUR_MS
    out: list[Stay] = []
    for mmsi, track in tracks.items():
        if not is_ship(mmsi):
            continue
        run: list[Slot] = []

        def close() -> None:
            if run and run[-1].last - run[0].first >= min_ms:
                lat, lon = fmean(s.lat for s in run), fmean(s.lon for s in run)
                if shore_nm is None or shore_nm(lat, lon) <= cfg["max_shore_nm"]:
                    out.append(Stay(mmsi, lat, lon, run[0].first, run[-1].last))

        for i, slot in enumerate(track):
            speed = slot_speed_kn(track, i)
            slow = speed is not None and speed < cfg["max_speed_kn"]
            if slow and run and slot.first - run[-1].last <= max_gap and float(haversine_km(
                    fmean(s.lat for s in run), fmean(s.lon for s in run), slot.lat, slot.lon)) <= drift_km:
                run.append(slot)
                continue
            close()
            run = [slot] if slow else []
        close()
    return out


def cell_of(lat: float, lon: float, cell_deg: float) -> tuple[int, int]:
    return int(math.floor((lat + 90.0) / cell_deg)), int(math.floor((lon + 180.0) / cell_deg))


def cell_id(cell: tuple[int, int], cell_deg: float) -> str:
    return f"{cell_deg:g}/{cell[0]}/{cell[1]}"


def cell_centre(cell: tuple[int, int], cell_deg: float) -> tuple[float, float]:
    return -90.0 + (cell[0] + 0.5) * cell_deg, -180.0 + (cell[1] + 0.5) * cell_deg


def is_anchorage(stays: dict[str, list[int]], min_vessels: int) -> bool:
    """At least ``min_vessels`` ships, and not all of them there at one time."""
    if len(stays) < min_vessels:
        return False
    return max(f for f, _ in stays.values()) > min(last for _, last in stays.values())


class AnchorageStore:
    """The learnt anchorages of one events namespace: reads, learns and writes ``aiswatch-anchorages``."""

    def __init__(self, client, index: str, cfg: dict, page_size: int = 1000):
        self.client = client
        self.index = index
        self.cfg = cfg
        self.page_size = page_size
        self.deg = float(cfg["cell_deg"])
        self.cells: dict[tuple[int, int], dict | None] = {}   # documents read or written (None: none there)
        self.flagged: dict[tuple[int, int], tuple[float, float]] | None = None
        self.loaded_at = 0

    def anchorages(self) -> list[tuple[float, float]]:
        """Centres of the anchorage cells: read from the cluster once an hour, with this process's own."""
        if self.flagged is None or now_ms() - self.loaded_at >= HOUR_MS:
            self.flagged = self._load_flagged()
            for cell, doc in self.cells.items():   # what this process learnt but did not write (dry runs)
                if doc is not None and doc.get("anchorage"):
                    self.flagged[cell] = cell_centre(cell, self.deg)
            self.loaded_at = now_ms()
        return sorted(self.flagged.values())

    def _load_flagged(self) -> dict[tuple[int, int], tuple[float, float]]:
        from aiswatch.behavior.cluster import search

        out: dict[tuple[int, int], tuple[float, float]] = {}
        if not self.client.indices.exists(index=self.index):
            return out
        body: dict = {"size": self.page_size, "_source": False, "sort": [{"cell": "asc"}],
                      "query": {"bool": {"filter": [{"term": {"anchorage": True}},
                                                    {"prefix": {"cell": f"{self.deg:g}/"}}]}}}
        while True:
            resp = search(self.client, "search_after paging of the anchorages", index=self.index, body=body,
                          filter_path=["hits.hits.sort"])
            hits = (resp.get("hits") or {}).get("hits") or []
            for hit in hits:
                _, row, col = str(hit["sort"][0]).split("/")
                cell = (int(row), int(col))
                out[cell] = cell_centre(cell, self.deg)
            if len(hits) < self.page_size:
                return out
            body["search_after"] = hits[-1]["sort"]

    def _read(self, cells: set[tuple[int, int]]) -> None:
        wanted = sorted(c for c in cells if c not in self.cells)
        if not wanted:
            return
        for c in wanted:
            self.cells[c] = None
        if not self.client.indices.exists(index=self.index):
            return
        for i in range(0, len(wanted), 1000):
            chunk = wanted[i:i + 1000]
            resp = self.client.mget(index=self.index, ids=[cell_id(c, self.deg) for c in chunk],
                                    source_includes=["stays", "anchorage"],
                                    filter_path=["docs._id", "docs._source"])
            for doc in (resp.body or {}).get("docs") or []:
                if doc.get("_source"):
                    _, row, col = doc["_id"].split("/")
                    self.cells[(int(row), int(col))] = doc["_source"]

    def learn(self, stays: list[Stay], write: bool = True) -> int:
        """Add the stays to their cells, re-evaluate those cells and their neighbours, write what
        changed (unless ``write`` is false: then only this process knows). Returns cells written."""
        by_cell: dict[tuple[int, int], list[Stay]] = {}
        for stay in stays:
            by_cell.setdefault(cell_of(stay.lat, stay.lon, self.deg), []).append(stay)
        grow_ms = int(self.cfg["write_every_hours"] * HOUR_MS)
        changed: set[tuple[int, int]] = set()
        fresh = set()
        for cell, cell_stays in by_cell.items():
            known = self.cells.get(cell)
            if known is not None and all(_covered(known["stays"].get(s.mmsi), s, grow_ms) for s in cell_stays):
                continue
            fresh.add(cell)
        if not fresh:
            return 0
        self._read({(r + dr, c + dc) for r, c in fresh for dr in (-1, 0, 1) for dc in (-1, 0, 1)})
        for cell in fresh:
            doc = self.cells.get(cell) or {"stays": {}}
            spans = dict(doc["stays"])
            for s in by_cell[cell]:
                old = spans.get(s.mmsi)
                spans[s.mmsi] = [min(old[0], s.first), max(old[1], s.last)] if old else [s.first, s.last]
            if len(spans) > MAX_STAYS_PER_CELL:
                spans = dict(sorted(spans.items(), key=lambda kv: kv[1][1])[-MAX_STAYS_PER_CELL:])
            self.cells[cell] = {"stays": spans, "anchorage": bool(doc.get("anchorage"))}
            changed.add(cell)
        # a cell's verdict depends on its neighbours: re-evaluate every known cell around a change
        for cell in {(r + dr, c + dc) for r, c in changed for dr in (-1, 0, 1) for dc in (-1, 0, 1)}:
            doc = self.cells.get(cell)
            if doc is None:
                continue
            block: dict[str, list[int]] = {}
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    other = self.cells.get((cell[0] + dr, cell[1] + dc))
                    for mmsi, (first, last) in ((other or {}).get("stays") or {}).items():
                        old = block.get(mmsi)
                        block[mmsi] = [min(old[0], first), max(old[1], last)] if old else [first, last]
            verdict = is_anchorage(block, int(self.cfg["min_vessels"]))
            if verdict != bool(doc.get("anchorage")):
                doc["anchorage"] = verdict
                changed.add(cell)
            if self.flagged is not None:
                if verdict:
                    self.flagged[cell] = cell_centre(cell, self.deg)
                else:
                    self.flagged.pop(cell, None)
        if write:
            self._write(changed)
        return len(changed) if write else 0

    def _write(self, cells: set[tuple[int, int]]) -> None:
        ops: list[dict] = []
        for cell in sorted(cells):
            doc = self.cells[cell]
            lat, lon = cell_centre(cell, self.deg)
            spans = doc["stays"]
            last = max(v[1] for v in spans.values())
            ops += [{"index": {"_index": self.index, "_id": cell_id(cell, self.deg)}},
                    {"@timestamp": iso(last), "cell": cell_id(cell, self.deg), "cell_deg": self.deg,
                     "location": {"lat": round(lat, 6), "lon": round(lon, 6)}, "lat": round(lat, 6),
                     "lon": round(lon, 6), "anchorage": bool(doc.get("anchorage")), "vessels": sorted(spans),
                     "vessel_count": len(spans), "first_seen": iso(min(v[0] for v in spans.values())),
                     "last_seen": iso(last), "stays": spans, "source": "learnt"}]
        for i in range(0, len(ops), 1000):
            resp = self.client.bulk(operations=ops[i:i + 1000], refresh=i + 1000 >= len(ops),
                                    filter_path="errors,items.*.error")
            for item in (resp.body or {}).get("items") or []:
                err = (item.get("index") or {}).get("error")
                if err:
                    log.error("anchorage write failed: %s", err)


def _covered(span: list[int] | None, stay: Stay, grow_ms: int) -> bool:
    """The stored span already holds this stay, give or take ``grow_ms`` of growth."""
    return span is not None and span[0] <= stay.first + grow_ms and span[1] >= stay.last - grow_ms
