"""Vessel tracks read from Elasticsearch as aggregations: one bucket per vessel per time slot.

The detectors never download raw positions. Elasticsearch resamples each vessel's positions into
fixed time slots (10 minutes by default, as Global Fishing Watch resamples tracks) and returns, per
(vessel, slot): the message count, the first and last message time, the mean position and the
mean reported speed. A bucket is ~300 bytes however many
positions fell into the slot, so what the detector receives grows with vessels x slots, not with
the message rate.

Paging uses a ``terms`` aggregation on ``mmsi`` split with ``include.partition/num_partitions``
(plus a ``date_histogram`` per vessel), which works on Elasticsearch 8, on osmem-server and on
noida-db alike; ``composite`` would be the other choice, but noida-db lacks it. Exact times are
kept: min/max of ``@timestamp`` per slot give the real first/last message, so a gap's ends are
exact to the message, not to the slot.

``ByteMeter`` counts the HTTP response bytes the detector receives (``bench/detect.py`` and the
tests use it to prove the 5 % budget).
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Iterator

from ingest.esclient import PlainJsonNode

log = logging.getLogger(__name__)

MAX_BUCKETS = 60_000        # stay under search.max_buckets (65,535) per response
FILTER_PATH = ["aggregations.v.buckets.key", "aggregations.v.buckets.h.buckets.key",
               "aggregations.v.buckets.h.buckets.doc_count", "aggregations.v.buckets.h.buckets.*.value",
               "aggregations.v.sum_other_doc_count"]


class ByteMeter:
    """Counts response bytes and requests received from Elasticsearch (thread-safe)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.requests = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self.requests += 1

    def node_class(self) -> type:
        """A PlainJsonNode subclass that reports every response body to this meter."""
        meter = self

        class CountingNode(PlainJsonNode):
            def perform_request(self, *args, **kwargs):  # type: ignore[override]
                response = super().perform_request(*args, **kwargs)
                meter.add(len(response.body or b""))
                return response

        return CountingNode


@dataclass
class Slot:
    """One vessel's positions within one time slot, as Elasticsearch summarised them."""

    mmsi: str
    key: int            # slot start, epoch ms
    count: int
    first: int          # first message time in the slot, epoch ms
    last: int           # last message time in the slot, epoch ms
    lat: float          # mean position
    lon: float
    sog: float | None   # mean reported speed (kn), None when no speed was reported

    @property
    def mid(self) -> float:
        """The time the mean position stands for (middle of the slot's messages)."""
        return (self.first + self.last) / 2.0


def _value(bucket: dict, name: str) -> float | None:
    agg = bucket.get(name)
    return None if not agg else agg.get("value")


def position_filter(since_ms: int, until_ms: int, mmsis: list[str] | None = None) -> dict:
    filters: list[dict] = [{"term": {"msg_kind": "position"}},
                           {"range": {"@timestamp": {"gte": since_ms, "lt": until_ms, "format": "epoch_millis"}}},
                           {"exists": {"field": "lat"}}]
    if mmsis:
        filters.append({"terms": {"mmsi": mmsis}})
    return {"bool": {"filter": filters}}


# five numbers per slot: every extra metric costs ~25 bytes per vessel per slot on the wire
SLOT_METRICS = {
    "t0": {"min": {"field": "@timestamp"}}, "t1": {"max": {"field": "@timestamp"}},
    "la": {"avg": {"field": "lat"}}, "lo": {"avg": {"field": "lon"}},
    "sg": {"avg": {"field": "sog"}},
}


class TrackReader:
    """Reads per-vessel slot summaries of the raw ``ais-*`` indices for a time window."""

    def __init__(self, client, index_pattern: str, *, slot_minutes: float = 10.0, request_timeout: float = 120.0):
        self.client = client
        self.index = index_pattern
        self.slot_ms = int(slot_minutes * 60_000)
        self.request_timeout = request_timeout
        self._warned_slot_times = False
        self._last_partition_mmsis: set[str] = set()

    def _search(self, body: dict, filter_path: list[str] | None = None) -> dict:
        resp = self.client.options(request_timeout=self.request_timeout).search(
            index=self.index, body=body, filter_path=filter_path, ignore_unavailable=True, allow_no_indices=True)
        return resp.body

    def vessel_count(self, since_ms: int, until_ms: int) -> int:
        body = {"size": 0, "query": position_filter(since_ms, until_ms),
                "aggs": {"n": {"cardinality": {"field": "mmsi"}}}}
        return int(((self._search(body).get("aggregations") or {}).get("n") or {}).get("value") or 0)

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

    def iter_slots(self, since_ms: int, until_ms: int, mmsis: list[str] | None, slot_ms: int) -> Iterator[Slot]:
        vessels = len(mmsis) if mmsis else self.vessel_count(since_ms, until_ms)
        if vessels == 0:
            return
        slots_per_vessel = max(1, math.ceil((until_ms - since_ms) / slot_ms))
        per_page = max(1, MAX_BUCKETS // (slots_per_vessel + 1))
        partitions = max(1, math.ceil(vessels * 1.3 / per_page))  # hash partitions are uneven: 30 % slack
        seen: set[str] = set()  # a server that ignores include.partition returns every vessel each time
        for partition in range(partitions):
            for slot in self._partition(since_ms, until_ms, mmsis, slot_ms, partition, partitions, per_page):
                if slot.mmsi in seen:
                    continue
                yield slot
            seen.update(self._last_partition_mmsis)

    def _partition(self, since_ms, until_ms, mmsis, slot_ms, partition, partitions, per_page) -> Iterator[Slot]:
        terms: dict = {"field": "mmsi", "size": max(per_page * 2, 10)}
        if partitions > 1:
            terms["include"] = {"partition": partition, "num_partitions": partitions}
        body = {"size": 0, "query": position_filter(since_ms, until_ms, mmsis),
                "aggs": {"v": {"terms": terms, "aggs": {"h": {
                    "date_histogram": {"field": "@timestamp", "fixed_interval": f"{slot_ms // 1000}s",
                                       "min_doc_count": 1},
                    "aggs": SLOT_METRICS}}}}}
        agg = (self._search(body, FILTER_PATH).get("aggregations") or {}).get("v") or {}
        self._last_partition_mmsis = {str(vb["key"]) for vb in agg.get("buckets", [])}
        if agg.get("sum_other_doc_count"):
            # should not happen with the slack above; say so rather than silently dropping vessels
            log.warning("track partition %d/%d left %s positions out: raise partitions", partition, partitions,
                        agg["sum_other_doc_count"])
        for vb in agg.get("buckets", []):
            mmsi = str(vb["key"])
            for b in (vb.get("h") or {}).get("buckets", []):
                lat, lon = _value(b, "la"), _value(b, "lo")
                if lat is None or lon is None:
                    continue
                first, last = _value(b, "t0"), _value(b, "t1")
                if first is None or last is None:
                    # noida-db cannot take min/max of a date kept as an ISO string: fall back to the
                    # slot's bounds, so times are accurate to the slot instead of to the message
                    if not self._warned_slot_times:
                        log.warning("this server returns no min/max over @timestamp: event times are "
                                    "accurate to the %d-minute slot", slot_ms // 60_000)
                        self._warned_slot_times = True
                    first, last = int(b["key"]), int(b["key"]) + slot_ms - 1
                yield Slot(mmsi=mmsi, key=int(b["key"]), count=int(b.get("doc_count", 0)),
                           first=int(first), last=int(last), lat=lat, lon=lon,
                           sog=_value(b, "sg"))

    def last_before(self, before_ms: int, lookback_ms: int, mmsis: list[str]) -> dict[str, Slot]:
        """Each listed vessel's last position before ``before_ms`` (within the lookback), as a 1-message slot."""
        out: dict[str, Slot] = {}
        for start in range(0, len(mmsis), 1000):
            chunk = mmsis[start:start + 1000]
            body = {"size": 0, "query": position_filter(before_ms - lookback_ms, before_ms, chunk),
                    "aggs": {"v": {"terms": {"field": "mmsi", "size": len(chunk)}, "aggs": {"last": {"top_hits": {
                        "size": 1, "sort": [{"@timestamp": {"order": "desc"}}],
                        "_source": ["@timestamp", "lat", "lon", "sog"]}}}}}}
            resp = self._search(body, ["aggregations.v.buckets.key", "aggregations.v.buckets.last.hits.hits._source"])
            for vb in ((resp.get("aggregations") or {}).get("v") or {}).get("buckets", []):
                hits = vb["last"]["hits"]["hits"]
                if not hits:
                    continue
                src = hits[0]["_source"]
                t = to_epoch_ms(src["@timestamp"])
                out[str(vb["key"])] = Slot(str(vb["key"]), t, 1, t, t, src["lat"], src["lon"], src.get("sog"))
        return out


def to_epoch_ms(value) -> int:
    """Epoch milliseconds from what a _source ``@timestamp`` holds (ISO string or number)."""
    if isinstance(value, (int, float)):
        return int(value)
    from datetime import datetime

    text = str(value).replace("Z", "+00:00")
    return int(datetime.fromisoformat(text).timestamp() * 1000)
