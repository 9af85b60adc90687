"""One detection run over a time window, and the scheduler that runs them with a stored watermark.

A run over [since, until):
1. reads the vessel tracks of [since - context, until) as 10-minute slot summaries (aggregations,
   ``behavior.tracks``); the context lets an episode that began before ``since`` be seen whole,
2. runs the selected detectors on them (each may ask small follow-up aggregations),
3. writes the events (deterministic ids; continuing episodes extended, unchanged ones skipped),
4. updates identity, area (in port / region) and risk on the ships-seen documents it saw.

The scheduler keeps its watermark (the ``until`` of the last completed run) in the state index
(``aiswatch-state``, id ``detect``) and writes it only after the run's events are stored, so a
process killed mid-run repeats that window on restart (idempotent: same ids, nothing new) and
never skips one. After downtime it catches up in steps of ``schedule.max_window_hours``.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from elasticsearch import ApiError, TransportError

from behavior import encounter, gap, identity, loitering, spoofing
from behavior.events import Event, EventStore, WriteResult, iso, now_ms
from behavior.geo import Geography
from behavior.settings import context_ms, detect_settings
from behavior.tracks import TrackReader
from es_templates import IndexNames

log = logging.getLogger(__name__)

ALL_DETECTORS = ("gap", "loitering", "encounter", "spoofing", "identity")
STATE_ID = "detect"


@dataclass
class RunResult:
    since_ms: int
    until_ms: int
    events: list[Event] = field(default_factory=list)
    written: WriteResult = field(default_factory=WriteResult)
    vessels: int = 0
    slots: int = 0
    seconds: float = 0.0
    ships_updated: int = 0
    ships_missing: int = 0


class Detector:
    """Runs the behaviour detectors against one cluster and namespace."""

    def __init__(self, client, names: IndexNames, config: dict | None = None, geography: Geography | None = None):
        self.client = client
        self.names = names
        self.settings = detect_settings(config)
        self.geo = geography or Geography((config or {}).get("geography") or {})
        self.reader = TrackReader(client, names.messages_pattern, slot_minutes=self.settings["slot_minutes"])

    @property
    def slot_ms(self) -> int:
        return self.reader.slot_ms

    def run(self, since_ms: int, until_ms: int, only: list[str] | None = None, write: bool = True) -> RunResult:
        started = time.monotonic()
        s = self.settings
        selected = [d for d in (only or s["detectors"]) if d in ALL_DETECTORS]
        unknown = set(only or []) - set(ALL_DETECTORS)
        if unknown:
            raise ValueError(f"unknown detector(s): {', '.join(sorted(unknown))} (have: {', '.join(ALL_DETECTORS)})")
        read_from = since_ms - context_ms(s)
        tracks = self.reader.slots(read_from, until_ms)
        result = RunResult(since_ms, until_ms, vessels=len(tracks), slots=sum(len(t) for t in tracks.values()))
        events: list[Event] = []
        if "gap" in selected:
            events += gap.detect_gaps(tracks, self.reader, self.geo, s["gap"], since_ms, until_ms)
            events += gap.detect_dark_now(self.client, self.names.ships, self.geo, s["gap"], until_ms)
        if "loitering" in selected:
            events += loitering.detect_loitering(tracks, self.geo, s["loitering"], since_ms, until_ms, self.slot_ms,
                                                 self.reader)
        if "encounter" in selected:
            events += encounter.detect_encounters(tracks, self.reader, self.geo, s["encounter"], since_ms, until_ms,
                                                  self.slot_ms)
        if "spoofing" in selected:
            events += spoofing.detect_spoofing(tracks, self.reader, self.geo, s["spoofing"], since_ms, until_ms,
                                               self.slot_ms)
        identities = {m: identity.classify(m, s["identity"].get("flags_of_convenience")) for m in tracks}
        if "identity" in selected:
            events += self._identity_events(tracks, identities, since_ms)
        self._add_names(events)
        result.events = sorted(events, key=lambda e: (e.start_ms, e.type, e.mmsi))
        if write:
            store = EventStore(self.client, self.names.events)
            result.written, result.events = store.write(
                result.events, since_ms=read_from, until_ms=until_ms, join_ms=2 * self.slot_ms,
                run_id=uuid.uuid4().hex[:12])
            if "identity" in selected:
                result.ships_updated, result.ships_missing = self._update_ships(tracks, identities, until_ms)
        result.seconds = time.monotonic() - started
        return result

    def _identity_events(self, tracks, identities, since_ms) -> list[Event]:
        out = []
        for mmsi, ident in identities.items():
            track = [sl for sl in tracks[mmsi] if sl.last >= since_ms]
            if ident.valid or not track or ident.station_type not in ("vessel", "unknown"):
                continue
            out.append(Event(type="identity", subtype=ident.problems[0], severity="medium", mmsi=[mmsi],
                             start_ms=track[0].first, end_ms=track[-1].last, lat=track[-1].lat, lon=track[-1].lon,
                             details={"problems": ident.problems, "station_type": ident.station_type,
                                      "mid": ident.mid, "flag": ident.flag},
                             summary=f"MMSI {mmsi}: {', '.join(ident.problems)}", keyed_by_start=False))
        return out

    def _add_names(self, events: list[Event]) -> None:
        mmsis = sorted({m for e in events for m in e.mmsi})
        if not mmsis or not self.client.indices.exists(index=self.names.ships):
            return
        names: dict[str, str] = {}
        resp = self.client.mget(index=self.names.ships, ids=mmsis, source_includes=["name"])
        for doc in resp["docs"]:
            if doc.get("found") and (doc.get("_source") or {}).get("name"):
                names[doc["_id"]] = doc["_source"]["name"]
        for e in events:
            e.names = [names.get(m, "") for m in sorted(e.mmsi)]

    def _update_ships(self, tracks, identities, until_ms) -> tuple[int, int]:
        mmsis = sorted(tracks)
        risk = identity.risk_scores(self.client, self.names.events, mmsis, identities, self.settings["risk"], until_ms)
        updates = {}
        for m in mmsis:
            last = tracks[m][-1]
            port = self.geo.port_at(last.lat, last.lon)
            updates[m] = {"identity": identities[m].document(),
                          "area": {"in_port": port is not None, "port": port.name if port else None,
                                   "region": self.geo.region(last.lat, last.lon)},
                          "risk": risk[m] | {"updated": iso(now_ms())}}
        return identity.update_ships_seen(self.client, self.names.ships, updates)


# -- watermark and schedule -------------------------------------------------------------------------

def read_watermark(client, names: IndexNames) -> int | None:
    if not client.indices.exists(index=names.state):
        return None
    resp = client.options(ignore_status=404).get(index=names.state, id=STATE_ID)
    if not resp.body or not resp.body.get("found"):
        return None
    from behavior.events import parse_time_ms

    return parse_time_ms(resp["_source"]["watermark"])


def write_watermark(client, names: IndexNames, until_ms: int, detectors: list[str]) -> None:
    client.index(index=names.state, id=STATE_ID, refresh=True,
                 document={"kind": "detect", "watermark": iso(until_ms), "updated": iso(now_ms()),
                           "detectors": detectors})


def run_scheduled(detector: Detector, *, every_s: float, only: list[str] | None = None,
                  clock: Callable[[], int] = now_ms, start_ms: int | None = None,
                  max_runs: int | None = None, stop: Callable[[], bool] = lambda: False,
                  on_result: Callable[[RunResult], None] = lambda r: None,
                  sleep: Callable[[float], None] = time.sleep) -> int:
    """Run forever (or ``max_runs``): each run covers [watermark, now - lag) in steps of at most
    ``max_window_hours``; the watermark is stored after each run. Returns the number of runs."""
    sched = detector.settings["schedule"]
    lag_ms = int(sched["lag_minutes"] * 60_000)
    step_ms = int(sched["max_window_hours"] * 3_600_000)
    detectors = list(only or detector.settings["detectors"])
    runs = 0
    failures = 0
    while not stop() and (max_runs is None or runs < max_runs):
        try:
            watermark = read_watermark(detector.client, detector.names)
            target = clock() - lag_ms
            if watermark is None:
                watermark = (start_ms if start_ms is not None
                             else target - int(sched["initial_lookback_hours"] * 3_600_000))
            if target - watermark < 1000:
                sleep(every_s)
                continue
            until = min(target, watermark + step_ms)
            result = detector.run(watermark, until, only=only)
            write_watermark(detector.client, detector.names, until, detectors)
        except (ApiError, TransportError) as exc:
            # the cluster is down or overloaded: the watermark did not move, so the same window
            # is tried again after a pause (at most 5 minutes between tries)
            failures += 1
            pause = min(every_s * failures, 300.0)
            log.error("detection run failed (%s); retrying in %.0f s", exc, pause)
            sleep(pause)
            continue
        failures = 0
        runs += 1
        log.info("detect %s .. %s: %d events (%d new, %d updated, %d unchanged) in %.1f s",
                 iso(watermark), iso(until), len(result.events), result.written.created, result.written.updated,
                 result.written.unchanged, result.seconds)
        on_result(result)
        if until >= target:  # caught up: wait for the next period
            sleep(every_s)
    return runs
