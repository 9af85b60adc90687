"""Behaviour events and their index: deterministic ids, extension instead of duplication.

An event's id is a hash of (type, sorted MMSIs, start): rerunning a detector over the same window
produces the same ids with the same content, and ``EventStore.write`` skips documents that did not
change, so a rerun creates and updates nothing. An episode that continues across scheduled runs
(a loitering that started in the previous window) is *extended*: before writing, the store looks
up existing events of the same type and vessels whose time span overlaps or touches the new one
(within ``join_ms``) and merges into that document, keeping its id and earliest start.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Iterable

from aiswatch.behavior.cluster import search
from aiswatch.common.times import epoch_ms, iso_from_ms
from aiswatch.behavior.settings import DETECTOR_VERSION

log = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3}


def iso(ms: float | int | None) -> str | None:
    return None if ms is None else iso_from_ms(ms)


@dataclass
class Event:
    """One finding. ``start_ms``/``end_ms`` are epoch ms; ``mmsi`` lists every vessel involved."""

    type: str
    subtype: str
    severity: str
    mmsi: list[str]
    start_ms: int
    end_ms: int
    lat: float | None
    lon: float | None
    details: dict = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    ongoing: bool = False
    summary: str = ""
    keyed_by_start: bool = True   # identity events: one per vessel, whatever the time
    stored_id: str | None = None  # the id of the document it is stored as (read back, or written)

    @property
    def key(self) -> tuple:
        return (self.type, tuple(sorted(self.mmsi)))

    @property
    def id(self) -> str:
        parts = [self.type, ",".join(sorted(self.mmsi))]
        if self.keyed_by_start:
            parts.append(str(int(self.start_ms)))
        else:
            parts.append(self.subtype)
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:24]

    def document(self, run_id: str = "") -> dict:
        doc = {
            "@timestamp": iso(self.start_ms), "type": self.type, "subtype": self.subtype,
            "severity": self.severity, "severity_rank": SEVERITY_RANK.get(self.severity, 0),
            "mmsi": sorted(self.mmsi), "names": self.names, "start": iso(self.start_ms), "end": iso(self.end_ms),
            "duration_h": stable_round((self.end_ms - self.start_ms) / 3_600_000, 3), "ongoing": self.ongoing,
            "details": self.details, "summary": self.summary, "detector": self.type,
            "detector_version": DETECTOR_VERSION, "run_id": run_id,
        }
        if self.details.get("region"):
            doc["region"] = self.details["region"]  # a top-level keyword Kibana can filter on
        if self.lat is not None and self.lon is not None:
            doc.update(lat=stable_round(self.lat, 6), lon=stable_round(self.lon, 6),
                       location={"lat": stable_round(self.lat, 6), "lon": stable_round(self.lon, 6)})
        doc["content_sha"] = content_sha(doc)
        return doc

    def as_json(self) -> dict:
        """The --json line: type, mmsi list, start, end, lat, lon (as stored), details, id (as stored)."""
        return {"type": self.type, "subtype": self.subtype, "severity": self.severity, "mmsi": sorted(self.mmsi),
                "names": self.names, "start": iso(self.start_ms), "end": iso(self.end_ms),
                "lat": None if self.lat is None else stable_round(self.lat, 6),
                "lon": None if self.lon is None else stable_round(self.lon, 6),
                "ongoing": self.ongoing, "details": self.details, "id": self.stored_id or self.id}

    @classmethod
    def from_document(cls, doc: dict, doc_id: str | None = None) -> "Event":
        """The event a stored document holds; ``doc_id`` (or the document's ``_id``) is its id from then on."""
        return cls(type=doc["type"], subtype=doc.get("subtype", ""), severity=doc.get("severity", "info"),
                   mmsi=list(doc.get("mmsi") or []), start_ms=epoch_ms(doc["start"]),
                   end_ms=epoch_ms(doc["end"]), lat=doc.get("lat"), lon=doc.get("lon"),
                   details=doc.get("details") or {}, names=list(doc.get("names") or []),
                   ongoing=bool(doc.get("ongoing")), summary=doc.get("summary", ""),
                   keyed_by_start=doc["type"] != "identity", stored_id=doc_id or doc.get("_id"))


def stable_round(x: float, digits: int) -> float:
    """``round(x, digits)`` that a last-bit difference cannot flip. AIS positions sit on a grid of
    1/600,000 degree and times on whole milliseconds, so their means and quotients often land
    exactly on a rounding boundary, where the server's summation order (noida-db's averages differ
    in the last bit between requests) decided the digit: a rerun then "changed" an event. Nudged
    by a thousandth of the last digit first, an exact boundary always goes the same way."""
    return round(x + 0.001 * 10.0 ** -digits, digits)


def fmt(x: float, digits: int) -> str:
    """``x`` with ``digits`` decimals for a summary, stable as ``stable_round``."""
    return f"{stable_round(x, digits):.{digits}f}"


# fields compared to decide whether a rewrite is a change (run_id and the like are not)
_CONTENT = ("type", "subtype", "severity", "mmsi", "names", "start", "end", "ongoing", "lat", "lon", "details", "summary")
# what the store reads back of a stored event: enough to merge into it and to see whether the merge
# changes it (the hash of the content); the rest is fetched only when the stored one is the later
_LIGHT = ["type", "subtype", "severity", "mmsi", "names", "start", "end", "ongoing", "content_sha"]


def content_sha(doc: dict) -> str:
    """Hash of a document's content fields (floats rounded as stored), to compare without reading it."""
    content = {k: doc.get(k) for k in _CONTENT}
    return hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class WriteResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    new_for: set[str] = field(default_factory=set)   # vessels with a newly created event


# search_after needs a sort that no two events share: events have one or two vessels and the id is
# (type, vessels, start) - or (type, vessel, subtype) for identity - so this is unique per event
# (sorting on _id is refused by Elasticsearch 8 and noida-db)
EVENT_SORT = [{"start": "asc"}, {"type": "asc"}, {"subtype": "asc"},
              {"mmsi": {"order": "asc", "mode": "min"}}, {"mmsi": {"order": "asc", "mode": "max"}}]
BULK_FILTER_PATH = "took,errors,items.*.error"


class EventStore:
    """Reads and writes the events index. ``page_size``: events per search page (tests make it small)."""

    def __init__(self, client, index: str, page_size: int = 1000):
        self.client = client
        self.index = index
        self.page_size = page_size

    def existing(self, types: Iterable[str], since_ms: int, until_ms: int,
                 mmsis: Iterable[str] | None = None, light: bool = False) -> dict[str, dict]:
        """Events of these types (and involving one of ``mmsis``) whose span touches [since, until], by id.

        Paged with search_after on a unique sort, so nothing is cut off however many there are.
        ``light``: only the fields of ``_LIGHT`` (what ``write`` needs in the usual case).
        """
        out: dict[str, dict] = {}
        if not self.client.indices.exists(index=self.index):
            return out
        vessels = sorted(set(mmsis)) if mmsis is not None else [None]
        for i in range(0, len(vessels), 5000):
            filters: list[dict] = [{"terms": {"type": list(types)}},
                                   {"range": {"end": {"gte": since_ms, "format": "epoch_millis"}}},
                                   {"range": {"start": {"lte": until_ms, "format": "epoch_millis"}}}]
            if vessels[0] is not None:
                filters.append({"terms": {"mmsi": vessels[i:i + 5000]}})
            body: dict = {"size": self.page_size, "sort": EVENT_SORT, "query": {"bool": {"filter": filters}}}
            if light:
                body["_source"] = _LIGHT
            while True:
                resp = search(self.client, "search_after paging of the events index", index=self.index, body=body,
                              filter_path=["took", "hits.hits._id", "hits.hits._source", "hits.hits.sort"])
                hits = (resp.get("hits") or {}).get("hits") or []
                for hit in hits:
                    out[hit["_id"]] = hit["_source"]
                if len(hits) < self.page_size:
                    break
                body["search_after"] = hits[-1]["sort"]
        return out

    def write(self, events: list[Event], *, since_ms: int, until_ms: int, join_ms: int,
              run_id: str = "", refresh: bool = True, whole: bool = False) -> tuple[WriteResult, list[Event]]:
        """Create, extend or skip each event; returns the counts and the events as stored, one per
        document (episodes merged into one document are one event), each with its ``stored_id``.

        An unchanged event is known from the light fields only; ``whole`` reads those documents
        whole (one ``mget``), so what is returned is the stored event with its position and details
        (``detect run`` prints them); without it their position, details and summary are left out.
        """
        result = WriteResult()
        if not events:
            return result, []
        types = sorted({e.type for e in events})
        earliest = min(e.start_ms for e in events)
        current = self.existing(types, min(since_ms, earliest) - join_ms, until_ms + join_ms,
                                mmsis={m for e in events for m in e.mmsi}, light=True)
        full: dict[str, Event] = {}

        def stored_event(doc_id: str) -> Event:
            """The stored event whole (details, position, summary): read only when a merge needs them."""
            if doc_id not in full:
                doc = self.client.get(index=self.index, id=doc_id)["_source"]
                full[doc_id] = Event.from_document(doc, doc_id)
            return full[doc_id]

        by_key: dict[tuple, list[tuple[str, Event]]] = {}
        for doc_id, doc in current.items():
            ev = Event.from_document(doc, doc_id)
            by_key.setdefault(ev.key, []).append((doc_id, ev))
        actions: list[tuple[str, dict]] = []
        stored: dict[str, Event] = {}   # by document id: two episodes merged into one document are one event
        light: set[str] = set()         # ids whose event came from the light fields only
        for ev in sorted(events, key=lambda e: e.start_ms):
            doc_id, other = ev.id, None
            if doc_id in current:
                other = Event.from_document(current[doc_id], doc_id)
            else:
                for other_id, candidate in by_key.get(ev.key, []):
                    if not ev.keyed_by_start and candidate.subtype != ev.subtype:
                        continue
                    if candidate.start_ms - join_ms <= ev.end_ms and ev.start_ms <= candidate.end_ms + join_ms:
                        doc_id, other = other_id, candidate
                        break
            merged = ev
            light.discard(doc_id)
            if other is not None:
                if doc_id in full or not (ev.end_ms > other.end_ms):
                    # the stored one is the later (or as late): its details, position and summary stay
                    if covers(other, ev) and doc_id not in full:
                        result.unchanged += 1
                        stored[doc_id] = other
                        light.add(doc_id)
                        continue
                    other = stored_event(doc_id) if doc_id not in full else full[doc_id]
                merged = merge_events(other, ev)
            merged.stored_id = doc_id
            doc = merged.document(run_id)
            old = current.get(doc_id)
            if old is not None and old.get("content_sha") == doc["content_sha"]:
                result.unchanged += 1
                stored[doc_id] = merged
                continue
            if old is None:
                result.created += 1
                result.new_for.update(merged.mmsi)
            else:
                result.updated += 1
            current[doc_id] = doc
            full[doc_id] = merged
            by_key.setdefault(merged.key, []).append((doc_id, merged))
            actions.append((doc_id, doc))
            stored[doc_id] = merged
        for i in range(0, len(actions), 500):
            chunk = actions[i:i + 500]
            ops: list[dict] = []
            for doc_id, doc in chunk:
                ops += [{"index": {"_index": self.index, "_id": doc_id}}, doc]
            # only errors come back: an acknowledged index action costs ~150 bytes of response otherwise
            resp = self.client.bulk(operations=ops, refresh=refresh if i + 500 >= len(actions) else False,
                                    filter_path=BULK_FILTER_PATH)
            for item in (resp.body or {}).get("items") or []:
                err = (item.get("index") or {}).get("error")
                if err:
                    log.error("event write failed: %s", err)
                    result.errors += 1
        if whole and light:
            resp = self.client.mget(index=self.index, ids=sorted(light), filter_path=["docs._id", "docs._source"])
            for doc in (resp.body or {}).get("docs") or []:
                if doc.get("_source"):
                    stored[doc["_id"]] = Event.from_document(doc["_source"], doc["_id"])
        return result, list(stored.values())

    def recent(self, limit: int = 50, types: list[str] | None = None, since_ms: int | None = None) -> list[dict]:
        if not self.client.indices.exists(index=self.index):
            return []
        filters: list[dict] = []
        if types:
            filters.append({"terms": {"type": types}})
        if since_ms is not None:
            filters.append({"range": {"end": {"gte": since_ms, "format": "epoch_millis"}}})
        body = {"size": limit, "sort": [{"end": "desc"}], "query": {"bool": {"filter": filters}}}
        return [h["_source"] | {"_id": h["_id"]} for h in self.client.search(index=self.index, body=body)["hits"]["hits"]]


def covers(old: Event, new: Event) -> bool:
    """Merging ``new`` into ``old`` changes nothing: old starts no later, ends no earlier, is as severe."""
    return (old.start_ms <= new.start_ms and old.end_ms >= new.end_ms
            and SEVERITY_RANK.get(old.severity, 0) >= SEVERITY_RANK.get(new.severity, 0))


def merge_events(old: Event, new: Event) -> Event:
    """One event spanning both: earliest start, latest end; the later one's details and severity."""
    # the stored one wins ties, so a rerun over the same window rewrites nothing
    later = new if new.end_ms > old.end_ms else old
    merged = Event(type=new.type, subtype=later.subtype, severity=max(old.severity, new.severity, key=lambda s: SEVERITY_RANK.get(s, 0)),
                   mmsi=new.mmsi, start_ms=min(old.start_ms, new.start_ms), end_ms=max(old.end_ms, new.end_ms),
                   lat=later.lat, lon=later.lon, details=dict(later.details), names=later.names or old.names,
                   ongoing=later.ongoing, summary=later.summary, keyed_by_start=new.keyed_by_start)
    if "duration_h" in merged.details:
        merged.details["duration_h"] = stable_round((merged.end_ms - merged.start_ms) / 3_600_000, 3)
    return merged


def now_ms() -> int:
    return int(time.time() * 1000)
