"""Vessel tracks read from Elasticsearch as aggregations: one bucket per vessel per time slot.

The detectors never download raw positions. Elasticsearch resamples each vessel's positions into
fixed time slots (10 minutes by default, as Global Fishing Watch resamples tracks) and returns, per
(vessel, slot): the first and last message time, the mean position, the box around the positions
(min/max of latitude and longitude: one MMSI heard in two places within a slot) and the mean
reported speed (no message count, no slot key: the key is the first time rounded down). A bucket is ~190 bytes
however many positions fell into the slot, so what the detector receives grows with vessels x
slots, not with the message rate.

One request holds up to ``MAX_BUCKETS`` buckets (vessels x slots). Up to that, one ``composite``
aggregation on ``mmsi`` with a ``date_histogram`` inside each vessel bucket. More vessels than that
(a ``_count`` of ships-seen, one document per vessel, says so): the vessels are listed from
ships-seen (sorted MMSIs, ~15 bytes each) and each page asks for its own vessels by name, so each
request matches only their positions and the cluster's work stays linear in positions (a
composite or partition page would match every position of the window); a last request excludes
the listed ones, for any vessel ships-seen does not know. Where the server has no ``composite``
(noida-db) the reader falls back to a ``terms`` aggregation split with
``include.partition/num_partitions``, the partitions counted from ships-seen too, doubled should a
partition still leave vessels out; a server that ignores partitions is read in one request.
Exact times are kept: min/max of ``@timestamp`` per slot give the real first/last message, so a
gap's ends are exact to the message, not to the slot.

``SlotCache`` keeps the slot summaries between scheduled runs, so a run of ``detect schedule``
reads only the slots after the previous run (a process that starts reads its context once), and
``TrackReader.remember_fine`` keeps the answers of the 1-minute refinement queries for the same
reason. ``ByteMeter`` counts the HTTP response bytes the detector receives (``bench/detect.py``
and the tests use it to prove the 5 % budget).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterator

from aiswatch.behavior.cluster import ServerRefused, search
from aiswatch.common.times import epoch_ms

log = logging.getLogger(__name__)

MAX_BUCKETS = 60_000        # stay under search.max_buckets (65,535) per response


def slot_filter_path(vessels: str, keys: bool) -> list[str]:
    """What to keep of a track-slot response. A slot's start is its first message time rounded down
    to the slot, so the histogram keys (~20 bytes a slot) are dropped unless the server does not
    return that time (noida-db: there the keys stay)."""
    fields = ["h.buckets.*.value", "h.buckets.*.avg", "h.buckets.*.min", "h.buckets.*.max"] + \
        (["h.buckets.key"] if keys else [])
    extra = ["aggregations.v.after_key"] if vessels == "composite" else ["aggregations.v.sum_other_doc_count"]
    return ["took", "aggregations.v.buckets.key"] + extra + ["aggregations.v.buckets." + f for f in fields]


@dataclass
class Slot:
    """One vessel's positions within one time slot, as Elasticsearch summarised them."""

    mmsi: str
    key: int            # slot start, epoch ms
    first: int          # first message time in the slot, epoch ms
    last: int           # last message time in the slot, epoch ms
    lat: float          # mean position
    lon: float
    sog: float | None   # mean reported speed (kn), None when no speed was reported
    lat_min: float | None = None   # the box around the slot's positions (None: not asked for)
    lat_max: float | None = None
    lon_min: float | None = None
    lon_max: float | None = None

    @property
    def mid(self) -> float:
        """The time the mean position stands for (middle of the slot's messages)."""
        return (self.first + self.last) / 2.0

    @property
    def has_box(self) -> bool:
        return None not in (self.lat_min, self.lat_max, self.lon_min, self.lon_max)

    def spread_km(self) -> float:
        """Diagonal of the box around the slot's positions (km): how far apart its reports were."""
        if not self.has_box:
            return 0.0
        p1, p2 = math.radians(self.lat_min), math.radians(self.lat_max)
        dl = math.radians(self.lon_max - self.lon_min)
        a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a)))

    def box_ends(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The two places at opposite corners of the box that the mean lies between: a mean a
        fraction r of the way north is also r of the way east (or west) when the reports came
        from two places."""
        fy = (self.lat - self.lat_min) / (self.lat_max - self.lat_min) if self.lat_max > self.lat_min else 0.5
        fx = (self.lon - self.lon_min) / (self.lon_max - self.lon_min) if self.lon_max > self.lon_min else 0.5
        if abs(fy - fx) <= abs(fy - (1 - fx)):
            return (self.lat_min, self.lon_min), (self.lat_max, self.lon_max)
        return (self.lat_min, self.lon_max), (self.lat_max, self.lon_min)


def _value(bucket: dict, name: str, key: str = "value") -> float | None:
    agg = bucket.get(name)
    return None if not agg else agg.get(key)


def position_filter(since_ms: int, until_ms: int, mmsis: list[str] | None = None,
                    exclude: list[str] | None = None) -> dict:
    filters: list[dict] = [{"term": {"msg_kind": "position"}},
                           {"range": {"@timestamp": {"gte": since_ms, "lt": until_ms, "format": "epoch_millis"}}},
                           {"exists": {"field": "lat"}}]
    if mmsis:
        filters.append({"terms": {"mmsi": mmsis}})
    query: dict = {"bool": {"filter": filters}}
    if exclude:
        query["bool"]["must_not"] = [{"terms": {"mmsi": exclude[i:i + 65_000]}} for i in range(0, len(exclude), 65_000)]
    return query


# nine numbers per slot: first/last time, mean speed, and for latitude and longitude the mean and the
# box (min/max, ~25 bytes each: they show one MMSI heard in two places within a slot); the
# histogram's doc_count and key are filtered out (36 bytes a slot), and ``stats`` keeps the three
# numbers of a coordinate under one name (its count and sum are filtered out)
SLOT_METRICS = {
    "t0": {"min": {"field": "@timestamp"}}, "t1": {"max": {"field": "@timestamp"}},
    "la": {"stats": {"field": "lat"}}, "lo": {"stats": {"field": "lon"}},
    "sg": {"avg": {"field": "sog"}},
}


def align_down(ms: int, slot_ms: int) -> int:
    return ms // slot_ms * slot_ms


class TrackReader:
    """Reads per-vessel slot summaries of the raw ``ais-*`` indices for a time window.

    ``paging``: ``"auto"`` (vessels listed from ships-seen when they need several requests, else
    composite where the server has it, else partitions), ``"composite"`` or ``"partitions"``. ``page_vessels`` caps the vessels per request (default: as many as fit under
    ``MAX_BUCKETS``); tests set it small to exercise the paging. ``ships_index``: where to count
    the vessels for the partition fallback.
    """

    def __init__(self, client, index_pattern: str, *, slot_minutes: float = 10.0, request_timeout: float = 120.0,
                 ships_index: str | None = None, paging: str = "auto", page_vessels: int | None = None):
        if paging not in ("auto", "composite", "partitions"):
            raise ValueError(f"paging must be auto, composite or partitions, not {paging!r}")
        self.client = client
        self.index = index_pattern
        self.ships_index = ships_index
        self.slot_ms = int(slot_minutes * 60_000)
        self.request_timeout = request_timeout
        self.paging = paging
        self.page_vessels = page_vessels
        self.horizon_ms: int | None = None       # no data is asked for after this (the run's until)
        self.fine_queries = 0                    # 1-minute refinement queries sent (not answered from memory)
        self._fine_memo: dict[tuple, dict[str, list[Slot]]] | None = None
        self._composite_ok: bool | None = None if paging == "auto" else paging == "composite"
        self._warned_slot_times = False
        self._dates_ok: bool | None = None       # does the server give min/max over @timestamp?
        self._partitions_ignored = False

    def _search(self, feature: str, body: dict, filter_path: list[str] | None = None) -> dict:
        return search(self.client, feature, request_timeout=self.request_timeout, index=self.index, body=body,
                      filter_path=filter_path, ignore_unavailable=True, allow_no_indices=True)

    # -- the slot summaries ------------------------------------------------------------------------

    def slots(self, since_ms: int, until_ms: int, mmsis: list[str] | None = None,
              slot_ms: int | None = None) -> dict[str, list[Slot]]:
        """Every vessel's non-empty slots in [since, until), ordered by time."""
        slot_ms = slot_ms or self.slot_ms
        out: dict[str, list[Slot]] = {}
        for slot in self.iter_slots(since_ms, until_ms, mmsis, slot_ms):
            out.setdefault(slot.mmsi, []).append(slot)
        for track in out.values():
            track.sort(key=lambda s: s.key)
        return out

    def _per_page(self, since_ms: int, until_ms: int, slot_ms: int) -> int:
        slots_per_vessel = max(1, math.ceil((until_ms - since_ms) / slot_ms) + 1)
        per_page = max(1, MAX_BUCKETS // slots_per_vessel)
        return min(per_page, self.page_vessels) if self.page_vessels else per_page

    def iter_slots(self, since_ms: int, until_ms: int, mmsis: list[str] | None, slot_ms: int) -> Iterator[Slot]:
        per_page = self._per_page(since_ms, until_ms, slot_ms)
        if mmsis and len(mmsis) <= per_page:
            # a few named vessels (refinements): one terms request, no paging needed
            yield from self._terms_page(since_ms, until_ms, mmsis, slot_ms, len(mmsis), None)
            return
        exclude = None
        if self.paging == "auto" and not mmsis:
            listed = self.listed_vessels(since_ms, per_page)
            if listed is not None:
                # more vessels than one request holds: each page asks for its own vessels by name,
                # so each request matches only their positions (a composite or partition page would
                # match every position of the window, and the cluster's work would grow with pages)
                for i in range(0, len(listed), per_page):
                    chunk = listed[i:i + per_page]
                    yield from self._terms_page(since_ms, until_ms, chunk, slot_ms, len(chunk), None)
                exclude = listed   # then any vessel ships-seen does not know (normally none)
        yield from self._all_vessels(since_ms, until_ms, mmsis, slot_ms, per_page, exclude)

    def _all_vessels(self, since_ms, until_ms, mmsis, slot_ms, per_page, exclude) -> Iterator[Slot]:
        if self._composite_ok is not False:
            try:
                yield from self._composite(since_ms, until_ms, mmsis, slot_ms, per_page, exclude)
                self._composite_ok = True
                return
            except ServerRefused as exc:
                if self._composite_ok or "composite" not in exc.reason.lower():
                    raise
                log.info("%s has no composite aggregation: paging vessels with terms partitions", exc.server)
                self._composite_ok = False
        yield from self._partitions(since_ms, until_ms, mmsis, slot_ms, per_page, exclude)

    def listed_vessels(self, since_ms: int, per_page: int) -> list[str] | None:
        """The MMSIs ships-seen has seen since ``since`` (sorted), when they are more than one page;
        None when they fit one request or there is no ships-seen to ask."""
        if not self.ships_index:
            return None
        recent = {"range": {"position_time": {"gte": since_ms, "format": "epoch_millis"}}}
        resp = self.client.options(ignore_status=404).count(index=self.ships_index, query=recent, filter_path=["count"])
        if int((resp.body or {}).get("count") or 0) <= per_page:
            return None
        out: list[str] = []
        body: dict = {"size": 10_000, "_source": False, "sort": [{"mmsi": "asc"}], "query": recent}
        while True:
            page = search(self.client, "search_after paging of ships-seen (vessel list)", index=self.ships_index,
                          body=body, filter_path=["hits.hits.sort"])
            hits = (page.get("hits") or {}).get("hits") or []
            out += [str(h["sort"][0]) for h in hits]
            if len(hits) < body["size"]:
                return out
            body["search_after"] = hits[-1]["sort"]

    def _slot_body(self, since_ms, until_ms, mmsis, slot_ms, vessels_agg: dict, exclude=None) -> dict:
        vessels_agg["aggs"] = {"h": {
            "date_histogram": {"field": "@timestamp", "fixed_interval": f"{slot_ms // 1000}s", "min_doc_count": 1},
            "aggs": SLOT_METRICS}}
        return {"size": 0, "query": position_filter(since_ms, until_ms, mmsis, exclude), "aggs": {"v": vessels_agg}}

    def _slot_request(self, feature: str, body: dict, vessels: str) -> dict:
        """The ``v`` aggregation of a track-slot request. Slot keys are left off the wire unless the
        server is known not to return first/last times; a server found so (no ``t0``, hence no
        way to place the slot) is asked again with the keys, once per reader."""
        keys = self._dates_ok is False
        agg = (self._search(feature, body, slot_filter_path(vessels, keys)).get("aggregations") or {}).get("v") or {}
        if not keys and any(_value(b, "t0") is None and "key" not in b
                            for vb in agg.get("buckets", []) for b in (vb.get("h") or {}).get("buckets", [])):
            self._dates_ok = False
            agg = (self._search(feature, body, slot_filter_path(vessels, True)).get("aggregations") or {}).get("v") or {}
        return agg

    def _composite(self, since_ms, until_ms, mmsis, slot_ms, per_page, exclude=None) -> Iterator[Slot]:
        after = None
        while True:
            composite: dict = {"size": per_page, "sources": [{"m": {"terms": {"field": "mmsi"}}}]}
            if after is not None:
                composite["after"] = after
            body = self._slot_body(since_ms, until_ms, mmsis, slot_ms, {"composite": composite}, exclude)
            agg = self._slot_request("composite aggregation on mmsi (track slots)", body, "composite")
            buckets = agg.get("buckets", [])
            # every slot of a page is parsed before the first is handed out, so a refusal of the
            # first page leaves nothing half-yielded for the fallback to repeat
            page = [slot for vb in buckets for slot in self._vessel_slots(str(vb["key"]["m"]), vb, slot_ms)]
            yield from page
            after = agg.get("after_key")
            if len(buckets) < per_page or not after:
                return

    def _terms_page(self, since_ms, until_ms, mmsis, slot_ms, size, partition, exclude=None) -> Iterator[Slot]:
        terms: dict = {"field": "mmsi", "size": max(size, 1)}
        if partition is not None:
            terms["include"] = {"partition": partition[0], "num_partitions": partition[1]}
        body = self._slot_body(since_ms, until_ms, mmsis, slot_ms, {"terms": terms}, exclude)
        agg = self._slot_request("terms aggregation on mmsi with a date_histogram (track slots)", body, "terms")
        self._left_out = int(agg.get("sum_other_doc_count") or 0)
        for vb in agg.get("buckets", []):
            yield from self._vessel_slots(str(vb["key"]), vb, slot_ms)

    def vessel_estimate(self, since_ms: int, until_ms: int, exclude: list[str] | None = None) -> int:
        """How many vessels have positions in the window, at most: ships-seen documents (one per
        vessel) whose latest position is after ``since``; a ``cardinality`` when there is no ships-seen
        (or for the vessels ships-seen did not list)."""
        if self.ships_index and exclude is None:
            resp = self.client.options(ignore_status=404).count(
                index=self.ships_index, query={"range": {"position_time": {"gte": since_ms, "format": "epoch_millis"}}})
            n = int((resp.body or {}).get("count") or 0)
            if n:
                return n
        body = {"size": 0, "query": position_filter(since_ms, until_ms, exclude=exclude),
                "aggs": {"n": {"cardinality": {"field": "mmsi"}}}}
        agg = (self._search("cardinality aggregation on mmsi", body, ["aggregations.n.value"])
               .get("aggregations") or {}).get("n") or {}
        return int(agg.get("value") or 0)

    def _partitions(self, since_ms, until_ms, mmsis, slot_ms, per_page, exclude=None) -> Iterator[Slot]:
        vessels = len(mmsis) if mmsis else self.vessel_estimate(since_ms, until_ms, exclude)
        if vessels == 0:
            return
        partitions = max(1, math.ceil(vessels * 1.3 / per_page))  # hash partitions are uneven: 30 % slack
        if self._partitions_ignored:
            partitions = 1
        while True:
            out: list[Slot] = []
            seen: set[str] = set()
            overflow = False
            for partition in range(partitions):
                size = per_page * 2 if partitions > 1 else max(per_page, vessels) * 2
                page = list(self._terms_page(since_ms, until_ms, mmsis, slot_ms, size,
                                             (partition, partitions) if partitions > 1 else None, exclude))
                page_vessels = {s.mmsi for s in page}
                if partition > 0 and page_vessels & seen:
                    # the server ignores include.partition (noida-db): every page is the top of all
                    # vessels, so the only way is one terms request as large as the fleet
                    log.info("this server ignores terms partitions: reading %d vessels in one request", vessels)
                    self._partitions_ignored = overflow = True
                    break
                out.extend(page)
                seen |= page_vessels
                if overflow:        # partition 0 overflowed; partition 1 told whether partitions work
                    break
                overflow = bool(self._left_out)
                if overflow and partitions == 1:
                    break
            if not overflow:
                yield from out
                return
            if self._partitions_ignored and partitions == 1:
                if self._left_out:
                    log.warning("track slots: %d positions of vessels beyond the first %d left out (this "
                                "server neither pages nor partitions terms)", self._left_out, len(seen))
                yield from out
                return
            if partitions >= 65_536:
                log.warning("track slots: %d positions left out with %d partitions", self._left_out, partitions)
                yield from out
                return
            partitions = 1 if self._partitions_ignored else partitions * 2
            log.info("a terms partition left vessels out: reading again with %d partitions", partitions)

    def _vessel_slots(self, mmsi: str, vb: dict, slot_ms: int) -> list[Slot]:
        out = []
        for b in (vb.get("h") or {}).get("buckets", []):
            lat, lon = _value(b, "la", "avg"), _value(b, "lo", "avg")
            if lat is None or lon is None:
                continue
            first, last = _value(b, "t0"), _value(b, "t1")
            if first is not None and last is not None:
                self._dates_ok = True
                key = int(b["key"]) if "key" in b else align_down(int(first), slot_ms)
            elif "key" in b:
                # noida-db cannot take min/max of a date kept as an ISO string: fall back to the
                # slot's bounds, so times are accurate to the slot instead of to the message
                self._dates_ok = False
                key = int(b["key"])
                if not self._warned_slot_times:
                    log.warning("this server returns no min/max over @timestamp: event times are "
                                "accurate to the %d-minute slot", slot_ms // 60_000)
                    self._warned_slot_times = True
                first, last = key, key + slot_ms - 1
            else:  # no times and no key (keys were dropped): ask with keys from now on
                self._dates_ok = False
                log.warning("a track slot came without times or key: skipped")
                continue
            out.append(Slot(mmsi=mmsi, key=key, first=int(first), last=int(last), lat=lat, lon=lon, sog=_value(b, "sg"),
                            lat_min=_value(b, "la", "min"), lat_max=_value(b, "la", "max"),
                            lon_min=_value(b, "lo", "min"), lon_max=_value(b, "lo", "max")))
        return out

    # -- refinements -------------------------------------------------------------------------------

    def remember_fine(self, enabled: bool = True) -> None:
        """Keep the answers of ``fine_slots`` (scheduled runs ask the same edge again every run)."""
        self._fine_memo = {} if enabled else None

    def forget_fine_before(self, ms: int) -> None:
        if self._fine_memo:
            for key in [k for k in self._fine_memo if k[2] < ms]:
                del self._fine_memo[key]

    def fine_slots(self, mmsis: list[str], since_ms: int, until_ms: int, slot_ms: int = 60_000) -> dict[str, list[Slot]]:
        """1-minute slots of a few vessels for a refinement, never past ``horizon_ms``."""
        if self.horizon_ms is not None:
            until_ms = min(until_ms, self.horizon_ms)
        if until_ms <= since_ms:
            return {}
        key = (tuple(sorted(mmsis)), since_ms, until_ms, slot_ms)
        if self._fine_memo is not None and key in self._fine_memo:
            return self._fine_memo[key]
        self.fine_queries += 1
        result = self.slots(since_ms, until_ms, mmsis=list(mmsis), slot_ms=slot_ms)
        if self._fine_memo is not None:
            self._fine_memo[key] = result
        return result

    def last_before(self, before_ms: int, lookback_ms: int, mmsis: list[str]) -> dict[str, Slot]:
        """Each listed vessel's last position before ``before_ms`` (within the lookback), as a 1-message slot."""
        out: dict[str, Slot] = {}
        for start in range(0, len(mmsis), 1000):
            chunk = mmsis[start:start + 1000]
            body = {"size": 0, "query": position_filter(before_ms - lookback_ms, before_ms, chunk),
                    "aggs": {"v": {"terms": {"field": "mmsi", "size": len(chunk)}, "aggs": {"last": {"top_hits": {
                        "size": 1, "sort": [{"@timestamp": {"order": "desc"}}],
                        "_source": ["@timestamp", "lat", "lon", "sog"]}}}}}}
            resp = self._search("top_hits aggregation (last position before the window)", body,
                                ["took", "aggregations.v.buckets.key", "aggregations.v.buckets.last.hits.hits._source"])
            for vb in ((resp.get("aggregations") or {}).get("v") or {}).get("buckets", []):
                hits = vb["last"]["hits"]["hits"]
                if not hits:
                    continue
                src = hits[0]["_source"]
                t = epoch_ms(src["@timestamp"])
                out[str(vb["key"])] = Slot(str(vb["key"]), t, t, t, src["lat"], src["lon"], src.get("sog"))
        return out
