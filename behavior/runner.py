"""One detection run over a time window, and the scheduler that runs them with a stored watermark.

A run over [since, until):
1. reads the vessel tracks of [since - context, until) as 10-minute slot summaries (aggregations,
   ``behavior.tracks``); the context lets an episode that began before ``since`` be seen whole,
2. learns anchorages from them (``behavior.anchorages``: cells where ships stop, stored in
   ``aiswatch-anchorages``; a dry run learns in memory only) and adds them to the ports,
   then runs the selected detectors (each may ask small follow-up aggregations),
3. writes the events (deterministic ids; continuing episodes extended, unchanged ones skipped),
4. updates identity, area (in port / region) and risk on the ships-seen documents of the vessels
   seen in the window (whichever detectors ran: see ``Detector.run``).

The scheduler keeps its watermark (the ``until`` of the last completed run) in the state index
(``aiswatch-state``, id ``detect``) and writes it only after the run's events are stored, so a
process killed mid-run repeats that window on restart (idempotent: same ids, nothing new) and
never skips one. After downtime it catches up in steps of ``schedule.max_window_hours``. Between
runs it keeps the slot summaries it has read (``tracks.SlotCache``), so a 10-minute run reads 10
minutes of slots, not its 5 h context again.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from elasticsearch import ApiError, TransportError

from aiswatch.behavior import encounter, gap, identity, loitering, spoofing
from aiswatch.behavior.anchorages import AnchorageStore, find_stays
from aiswatch.behavior.cluster import ServerRefused, is_refusal, refused
from aiswatch.behavior.events import Event, EventStore, WriteResult, iso, now_ms
from aiswatch.behavior.geo import Geography
from aiswatch.behavior.settings import context_ms, detect_settings
from aiswatch.behavior.slotcache import SlotCache
from aiswatch.behavior.tracks import TrackReader, align_down
from aiswatch.es_templates import IndexNames

log = logging.getLogger(__name__)

ALL_DETECTORS = ("gap", "loitering", "encounter", "gear", "spoofing", "identity")
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


HOUR_MS = 3_600_000
RISK_REFRESH_MS = 3_600_000   # a scheduled process rescores a vessel without new events at most hourly


class Detector:
    """Runs the behaviour detectors against one cluster and namespace.

    ``paging`` and ``page_vessels`` go to the ``TrackReader`` (tests force partitions and small
    pages); ``page_size`` is the page of the events / ships-seen searches.
    """

    def __init__(self, client, names: IndexNames, config: dict | None = None, geography: Geography | None = None,
                 *, paging: str = "auto", page_vessels: int | None = None, page_size: int = 1000):
        self.client = client
        self.names = names
        self.settings = detect_settings(config)
        self.geo = geography or Geography((config or {}).get("geography") or {})
        self.reader = TrackReader(client, names.messages_pattern, slot_minutes=self.settings["slot_minutes"],
                                  ships_index=names.ships, paging=paging, page_vessels=page_vessels)
        self.page_size = page_size
        self.anchorages = AnchorageStore(client, names.anchorages, self.settings["anchorages"], page_size=page_size)
        self.cache: SlotCache | None = None
        self._names: dict[str, str] = {}                      # vessel names already looked up
        self._ships: dict[str, tuple[dict, int]] = {}         # ships-seen update last written, when scored

    @property
    def slot_ms(self) -> int:
        return self.reader.slot_ms

    def keep_context(self) -> None:
        """Keep slot summaries and refinements between runs (``detect schedule``): each run then reads
        only its new slots instead of its whole context again."""
        self.cache = SlotCache()
        self.reader.remember_fine()

    def read_from(self, since_ms: int) -> int:
        """Start of what a run over [since, ...) reads: the context before it, on a slot boundary."""
        return align_down(since_ms - context_ms(self.settings), self.slot_ms)

    def run(self, since_ms: int, until_ms: int, only: list[str] | None = None, write: bool = True,
            full_events: bool = False) -> RunResult:
        """Detect over [since, until) and (with ``write``) store the events. ``full_events``: the
        events returned are the stored documents whole, unchanged ones too (one more ``mget``:
        ``detect run`` prints them); otherwise unchanged ones carry only their light fields."""
        started = time.monotonic()
        s = self.settings
        selected = [d for d in (only or s["detectors"]) if d in ALL_DETECTORS]
        unknown = set(only or []) - set(ALL_DETECTORS)
        if unknown:
            raise ValueError(f"unknown detector(s): {', '.join(sorted(unknown))} (have: {', '.join(ALL_DETECTORS)})")
        read_from = self.read_from(since_ms)
        self.reader.horizon_ms = until_ms
        self.reader.forget_fine_before(read_from)
        tracks = (self.cache.read(self.reader, read_from, until_ms) if self.cache is not None
                  else self.reader.slots(read_from, until_ms))
        result = RunResult(since_ms, until_ms, vessels=len(tracks), slots=sum(len(t) for t in tracks.values()))
        if s["anchorages"]["learn"]:   # off: no learnt anchorage is learnt or used
            self.anchorages.learn(find_stays(tracks, s["anchorages"], self.geo.shore_nm), write=write)
        self.geo.set_anchorages(self.anchorages.anchorages() if s["anchorages"]["learn"] else [],
                                s["anchorages"]["radius_km"])
        events: list[Event] = []
        if "gap" in selected:
            events += gap.detect_gaps(tracks, self.reader, self.geo, s["gap"], since_ms, until_ms, read_from)
            events += gap.detect_dark_now(self.client, self.names.ships, self.geo, s["gap"], until_ms,
                                          page_size=self.page_size)
        if "loitering" in selected:
            events += loitering.detect_loitering(tracks, self.geo, s["loitering"], since_ms, until_ms, self.slot_ms,
                                                 self.reader)
        if "encounter" in selected:
            events += encounter.detect_encounters(tracks, self.reader, self.geo, s["encounter"], since_ms, until_ms,
                                                  self.slot_ms)
        if "gear" in selected:
            events += encounter.detect_gear(tracks, self.geo, s["gear"], s["encounter"], since_ms, until_ms, self.slot_ms)
        if "spoofing" in selected:
            events += spoofing.detect_spoofing(tracks, self.reader, self.geo, s["spoofing"], since_ms, until_ms,
                                               self.slot_ms)
        seen = {m: t for m, t in tracks.items() if t and t[-1].last >= since_ms}   # reported inside the window
        identities = {m: identity.classify(m, s["identity"].get("flags_of_convenience")) for m in seen}
        if "identity" in selected:
            events += self._identity_events(seen, identities, since_ms, until_ms)
        self._add_names(events)
        result.events = sorted(events, key=lambda e: (e.start_ms, e.type, e.mmsi))
        if write:
            store = EventStore(self.client, self.names.events, page_size=self.page_size)
            result.written, result.events = store.write(
                result.events, since_ms=read_from, until_ms=until_ms, join_ms=2 * self.slot_ms,
                run_id=uuid.uuid4().hex[:12], whole=full_events)
            # identity and area need no detector (the MMSI, the latest position) and the risk score
            # counts every stored event, so ships-seen is refreshed by every run that writes,
            # whichever detectors it ran
            rescore = result.written.new_for   # an extended event does not change a count
            result.ships_updated, result.ships_missing = self._update_ships(seen, identities, until_ms, rescore)
        result.seconds = time.monotonic() - started
        return result

    def _identity_events(self, tracks, identities, since_ms, until_ms) -> list[Event]:
        """One event per vessel with an invalid MMSI, spanning when it was seen.

        A vessel already seen before the window (in the context) has its event extended only by
        windows that cross a full hour: a 10-minute schedule would otherwise rewrite every such
        event every run. The rule depends on the window alone, so a restarted schedule writes the
        same documents as one that ran through.
        """
        crosses_hour = align_down(until_ms - 1, HOUR_MS) >= since_ms
        out = []
        for mmsi, ident in identities.items():
            track = [sl for sl in tracks[mmsi] if sl.last >= since_ms]
            if ident.valid or not track or ident.station_type not in ("vessel", "unknown"):
                continue
            if not crosses_hour and tracks[mmsi][0].first < since_ms:
                continue
            out.append(Event(type="identity", subtype=ident.problems[0], severity="medium", mmsi=[mmsi],
                             start_ms=track[0].first, end_ms=track[-1].last, lat=track[-1].lat, lon=track[-1].lon,
                             details={"problems": ident.problems, "station_type": ident.station_type,
                                      "mid": ident.mid, "flag": ident.flag},
                             summary=f"MMSI {mmsi}: {', '.join(ident.problems)}", keyed_by_start=False))
        return out

    def _add_names(self, events: list[Event]) -> None:
        wanted = sorted({m for e in events for m in e.mmsi} - set(self._names))
        if wanted and self.client.indices.exists(index=self.names.ships):
            resp = self.client.mget(index=self.names.ships, ids=wanted, source_includes=["name"],
                                    filter_path=["docs._id", "docs._source.name"])
            for doc in (resp.body or {}).get("docs") or []:
                if (doc.get("_source") or {}).get("name"):
                    self._names[doc["_id"]] = doc["_source"]["name"]   # a ship without a name yet is asked again
        for e in events:
            e.names = [self._names.get(m, "") for m in sorted(e.mmsi)]

    def _update_ships(self, tracks, identities, until_ms, rescore: set[str]) -> tuple[int, int]:
        """identity, area and risk on the ships-seen documents of the vessels seen in the window.

        Only what changed since this process last wrote it is sent; the risk score is recomputed for
        vessels with an event created by this run, vessels this process has not scored yet, and every hour.
        """
        now = now_ms()
        score = sorted(m for m in tracks if m in rescore or m not in self._ships
                       or now - self._ships[m][1] >= RISK_REFRESH_MS)
        risk = identity.risk_scores(self.client, self.names.events, score, identities, self.settings["risk"],
                                    until_ms) if score else {}
        updates, memo = {}, {}
        for m in sorted(tracks):
            last = tracks[m][-1]
            port = self.geo.port_at(last.lat, last.lon)
            previous, scored_at = self._ships.get(m, ({}, now))
            doc = {"identity": identities[m].document(),
                   "area": {"in_port": port is not None, "port": port.name if port else None,
                            "region": self.geo.region(last.lat, last.lon)},
                   "risk": risk[m] if m in risk else previous.get("risk")}
            if m in risk:
                scored_at = now
            memo[m] = (doc, scored_at)
            if doc != previous:
                updates[m] = doc | {"risk": doc["risk"] | {"updated": iso(now)}}
        updated, missing = identity.update_ships_seen(self.client, self.names.ships, updates)
        if not missing:   # a document the ingest has not created yet: send everything again next run
            self._ships.update(memo)
        return updated, missing


# -- watermark and schedule -------------------------------------------------------------------------

def read_watermark(client, names: IndexNames) -> int | None:
    if not client.indices.exists(index=names.state):
        return None
    resp = client.options(ignore_status=404).get(index=names.state, id=STATE_ID, source_includes=["watermark"],
                                                 filter_path=["found", "_source.watermark"])
    if not resp.body or not resp.body.get("found"):
        return None
    from aiswatch.common.times import epoch_ms

    return epoch_ms(resp["_source"]["watermark"])


def write_watermark(client, names: IndexNames, until_ms: int, detectors: list[str]) -> None:
    client.index(index=names.state, id=STATE_ID, refresh=True, filter_path=["result"],
                 document={"kind": "detect", "watermark": iso(until_ms), "updated": iso(now_ms()),
                           "detectors": detectors})


def run_scheduled(detector: Detector, *, every_s: float, only: list[str] | None = None,
                  clock: Callable[[], int] = now_ms, start_ms: int | None = None,
                  max_runs: int | None = None, stop: Callable[[], bool] = lambda: False,
                  on_result: Callable[[RunResult], None] = lambda r: None,
                  sleep: Callable[[float], None] = time.sleep) -> int:
    """Run forever (or ``max_runs``): each run covers [watermark, now - lag) in steps of at most
    ``max_window_hours``, ending on a slot boundary; the watermark is stored after each run.
    Returns the number of runs.

    The detector keeps its slot summaries between runs (``Detector.keep_context``), so a run reads
    only the slots after the previous one; the first run of a process reads its context once.
    Cluster outages (5xx, 429, no connection) are retried with back-off; a refusal (4xx) is not
    something a retry fixes and raises ``ServerRefused``.
    """
    sched = detector.settings["schedule"]
    lag_ms = int(sched["lag_minutes"] * 60_000)
    step_ms = int(sched["max_window_hours"] * 3_600_000)
    detectors = list(only or detector.settings["detectors"])
    if detector.cache is None:
        detector.keep_context()
    runs = 0
    failures = 0
    known: int | None = None   # the watermark this process wrote last: read from the cluster only at
    while not stop() and (max_runs is None or runs < max_runs):   # the start and after a failure
        try:
            watermark = known if known is not None else read_watermark(detector.client, detector.names)
            target = clock() - lag_ms
            if watermark is None:
                watermark = (start_ms if start_ms is not None
                             else target - int(sched["initial_lookback_hours"] * 3_600_000))
            # windows end on slot boundaries, so no slot is read twice
            until = align_down(min(target, watermark + step_ms), detector.slot_ms)
            if until <= watermark:
                sleep(every_s)
                continue
            result = detector.run(watermark, until, only=only)
            write_watermark(detector.client, detector.names, until, detectors)
            known = until
        except ServerRefused:
            raise
        except (ApiError, TransportError) as exc:
            if is_refusal(exc):
                raise refused(detector.client, "request of the scheduled run", exc) from None
            # the cluster is down or overloaded: the watermark did not move, so the same window
            # is tried again after a pause (at most 5 minutes between tries)
            failures += 1
            known = None
            pause = min(every_s * failures, 300.0)
            log.error("detection run failed (%s); retrying in %.0f s", exc, pause)
            sleep(pause)
            continue
        failures = 0
        runs += 1
        log.debug("detect %s .. %s: %d events (%d new, %d updated, %d unchanged) in %.1f s",
                 iso(watermark), iso(until), len(result.events), result.written.created, result.written.updated,
                 result.written.unchanged, result.seconds)
        on_result(result)
        if until >= align_down(target, detector.slot_ms):  # caught up: wait for the next period
            sleep(every_s)
    return runs
