"""One batch to Elasticsearch: the raw documents to their daily indices, the vessels to ships-seen.

``BatchDelivery.deliver(batch)`` groups the batch by vessel, has ``ShipsSeenUpdater`` merge each
vessel's messages into its stored document, sends the raw documents (``op_type=index`` with the
content-derived ``_id``: replaying a log overwrites instead of duplicating) and the ships-seen
writes as one bulk request, and sorts the answers: indexed; rejected for their content (4xx other
than 409/429) to the dead letters; 409 on ships-seen re-merged; the rest (no answer, 429, 5xx,
a failed request) raise ``DeliveryFailed`` with the documents to send again later, the vessel's
raw documents included when its ships-seen write is what failed.

``DeferredSetup`` is what is owed before the first delivery (the index templates, when
Elasticsearch was down at start): documents indexed without their templates would get guessed
mappings (a location as two floats, the MMSI as text) that no later fix changes.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from elastic_transport import TransportError
from elasticsearch import ApiError

from aiswatch.ingest.batching import QueuedDocument
from aiswatch.ingest.bulk import RETRY_REQUEST_STATUS, ActionLines, BulkFailed, BulkSender, reason
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.dead_letters import DeadLetterFile, Rejection, short_error
from aiswatch.ingest.ships_seen_updater import ShipsSeenUpdater

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Elasticsearch could not take (part of) a batch (down, slow, overloaded): ``undelivered``
    are to be sent again later."""

    def __init__(self, reason: str, undelivered: list[QueuedDocument]):
        super().__init__(reason)
        self.reason = reason
        self.undelivered = undelivered


class DeferredSetup:
    """A setup step (``install``) still owed before the first delivery. A connection failure, a
    5xx or a retryable status leaves it owed (``DeliveryFailed``); success, or a refusal for
    good (logged), settles it."""

    def __init__(self, install: Callable[[], None] | None) -> None:
        self._install = install
        self.ready = threading.Event()  # set once nothing is owed: helper indices may be written
        if install is None:
            self.ready.set()

    @property
    def owed(self) -> bool:
        return self._install is not None

    def settle(self, batch: list[QueuedDocument]) -> None:
        install = self._install
        if install is None:
            return
        try:
            install()
        except ApiError as exc:
            if exc.status_code in RETRY_REQUEST_STATUS or exc.status_code >= 500:
                raise DeliveryFailed(f"index templates: {reason(exc)}", batch) from exc
            log.error("index templates refused (%s); delivering without them", short_error(exc.body))
        except TransportError as exc:
            raise DeliveryFailed(f"index templates: {reason(exc)}", batch) from exc
        else:
            log.info("index templates installed")
        self._install = None
        self.ready.set()


class BatchDelivery:
    """Delivers batches of QueuedDocuments (see the module docstring)."""

    def __init__(self, counters: Counters, sender: BulkSender, actions: ActionLines, ships: ShipsSeenUpdater,
                 dead_letters: DeadLetterFile, setup: DeferredSetup) -> None:
        self.counters = counters
        self.sender = sender
        self.actions = actions
        self.ships = ships
        self.dead_letters = dead_letters
        self.setup = setup

    def deliver(self, batch: list[QueuedDocument]) -> None:
        """Index ``batch`` and its ships-seen updates; raise DeliveryFailed for what must wait."""
        self.setup.settle(batch)
        by_mmsi: dict[str, list[QueuedDocument]] = {}
        newest_by_source: dict[str, int] = {}
        for it in batch:
            mmsi = it.mmsi
            if mmsi is not None:
                group = by_mmsi.get(mmsi)
                if group is None:
                    by_mmsi[mmsi] = [it]
                else:
                    group.append(it)
            source = it.source
            if source is not None and it.ts > newest_by_source.get(source, -1):
                newest_by_source[source] = it.ts
        try:
            ships = self.ships.plan(by_mmsi)
        except (TransportError, ApiError) as exc:
            raise DeliveryFailed(f"mget {self.ships.index}: {reason(exc)}", batch) from exc

        line = self.actions.index
        actions = [(line(it.index, it.id), it.body) for it in batch]
        ship_ids = list(ships)
        actions.extend(self.ships.action(mmsi, *ships[mmsi]) for mmsi in ship_ids)
        failure: str | None = None
        try:
            results = self.sender.send(actions)
        except BulkFailed as exc:
            failure, results = exc.reason, exc.results

        undelivered: list[QueuedDocument] = []
        dead: list[Rejection] = []
        indexed = 0
        for it, result in zip(batch, results):
            status = result[0] if result is not None else None
            if status is not None and 200 <= status < 300:
                indexed += 1
            elif status is None or status == 429 or status >= 500:
                undelivered.append(it)
            else:
                dead.append((it.index, it.id, it.doc, status, _error(result)))
        stale: list[str] = []
        for mmsi, result in zip(ship_ids, results[len(batch):]):
            status = result[0] if result is not None else None
            if status is not None and 200 <= status < 300:
                self.counters.incr("ships_written")
            elif status == 409:
                stale.append(mmsi)
            elif status is None or status == 429 or status >= 500:
                undelivered.extend(by_mmsi[mmsi])  # sent again later so ships-seen gets its update
            else:
                dead.append((self.ships.index, mmsi, ships[mmsi][0], status, _error(result)))
        self.counters.incr("documents_indexed", indexed)
        if dead:
            self.dead_letters.write(dead)
        if stale and failure is None:
            self.counters.incr("documents_stale", len(stale))
            try:
                undelivered.extend(self.ships.rewrite_stale(stale, by_mmsi))
            except (BulkFailed, TransportError, ApiError) as exc:
                failure = failure or reason(exc)
                undelivered.extend(it for m in stale for it in by_mmsi[m])
        elif stale:
            undelivered.extend(it for m in stale for it in by_mmsi[m])
        for source, ts in newest_by_source.items():
            key = "last_message_time." + source
            if ts / 1000.0 > self.counters.get(key):
                self.counters.gauge(key, ts / 1000.0)
        if undelivered:
            raise DeliveryFailed(failure or "items rejected with 429/5xx", _unique(undelivered))


def _error(result: tuple[int, Any] | None) -> Any:
    return None if result is None else result[1]


def _unique(docs: list[QueuedDocument]) -> list[QueuedDocument]:
    seen = set()
    out = []
    for d in docs:
        if id(d) not in seen:
            seen.add(id(d))
            out.append(d)
    return out
