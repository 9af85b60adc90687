"""The ``ships-seen`` side of a batch: read each vessel's stored document, merge, write, re-merge on 409.

``plan`` reads the stored documents of the batch's vessels (one ``mget``) and merges their
messages in (``ships_seen.merge_ship``); ``action`` is the versioned write of one merged document
(``version_type=external_gte``, the newest message time as version), so an older state never
replaces a newer one even when two writers race. The stored documents are read every batch
rather than cached: a restart keeps the static fields, and the fields the behaviour detectors
add with partial updates (``identity``, ``area``, ``risk``) are written back as they are now.
``rewrite_stale``: a 409 means someone wrote between our read and our write; the vessel is read,
merged and written again (``documents_stale``), so a newer static or position group is never lost.
"""
from __future__ import annotations

import logging

import orjson
from elasticsearch import ApiError

from aiswatch.ingest.batching import QueuedDocument
from aiswatch.ingest.bulk import NDJSON, ActionLines, BulkSender
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.dead_letters import DeadLetterFile
from aiswatch.ingest.ships_seen import merge_ship, needed_for_merge

log = logging.getLogger(__name__)

RETRIES = 3  # rounds of read, merge, write for vessels that keep conflicting

Plan = dict[str, tuple[dict, int]]  # mmsi -> (merged document, version)


class ShipsSeenUpdater:
    """Merges batches of raw documents into the ships-seen index ``index``."""

    def __init__(self, client, index: str, counters: Counters, sender: BulkSender, actions: ActionLines,
                 dead_letters: DeadLetterFile) -> None:
        self.client = client
        self.index = index
        self.counters = counters
        self.sender = sender
        self.actions = actions
        self.dead_letters = dead_letters

    def plan(self, by_mmsi: dict[str, list[QueuedDocument]]) -> Plan:
        """Read the stored documents of these vessels and merge the batch's messages in (vessels
        whose document would not change are left out)."""
        if not by_mmsi:
            return {}
        stored = self._read(list(by_mmsi))
        plan = {}
        for mmsi, docs in by_mmsi.items():
            doc, version = stored.get(mmsi, (None, None))
            needed = needed_for_merge([(d.ts, d.kinds) for d in docs])
            merged = merge_ship(doc, version, [(docs[i].ts, docs[i].doc) for i in needed])
            if merged is not None:
                plan[mmsi] = merged
        return plan

    def action(self, mmsi: str, doc: dict, version: int) -> tuple[bytes, bytes]:
        return self.actions.versioned(self.index, mmsi, version), orjson.dumps(doc, option=NDJSON)

    def _read(self, ids: list[str]) -> dict[str, tuple[dict, int]]:
        try:
            resp = self.client.mget(index=self.index, ids=ids)
        except ApiError as exc:
            if exc.status_code == 404:  # the index does not exist yet
                return {}
            raise
        out = {}
        for d in resp.get("docs", ()):
            if d.get("found"):
                out[d["_id"]] = (d.get("_source") or {}, int(d.get("_version") or 0))
        return out

    def rewrite_stale(self, mmsis: list[str], by_mmsi: dict[str, list[QueuedDocument]]) -> list[QueuedDocument]:
        """Someone wrote these vessels meanwhile: read, merge and write again; the raw documents of
        the vessels still not written (to be sent again later). Raises BulkFailed, TransportError
        or ApiError when the cluster fails meanwhile."""
        for _ in range(RETRIES):
            plan = self.plan({m: by_mmsi[m] for m in mmsis})
            if not plan:
                return []
            ids = list(plan)
            results = self.sender.send([self.action(m, *plan[m]) for m in ids])
            mmsis = []
            for mmsi, result in zip(ids, results):
                status, error = result if result is not None else (None, None)
                if status is not None and 200 <= status < 300:
                    self.counters.incr("ships_written")
                elif status == 409:
                    self.counters.incr("documents_stale")
                    mmsis.append(mmsi)
                elif status is None or status == 429 or status >= 500:
                    mmsis.append(mmsi)
                else:
                    self.dead_letters.write([(self.index, mmsi, plan[mmsi][0], status, error)])
            if not mmsis:
                return []
        log.warning("ships-seen: %d vessels still conflicting after %d attempts; spooling their messages",
                    len(mmsis), RETRIES)
        return [d for m in mmsis for d in by_mmsi[m]]
