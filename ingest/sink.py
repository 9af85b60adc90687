"""The Elasticsearch writer: AIS documents in, bulk requests out, nothing lost on the way.

``submit(doc)`` puts a document on a bounded in-memory queue (``batching.DocumentQueue``); one
writer thread takes it off in batches by count, bytes and time and hands each batch to
``delivery.BatchDelivery``: raw documents to the daily index of their message time (UTC), each
vessel's merged state to ``ships-seen`` (``ships_seen_updater``), one bulk request with 429 retry
(``bulk``), content rejections to the dead-letter file (``dead_letters``).

When a delivery fails for connection reasons, a timeout, a 5xx or a persistent 429, the documents
go to the disk spool (``spool.DiskSpool``) and the cluster counts as down
(``availability.ClusterAvailability``). When the queue is full (Elasticsearch slower than the
input) ``submit`` waits up to ``block_seconds`` for room, then spools too. While the spool holds
anything, new documents queue up behind it so order is kept, and the writer replays it from the
head as soon as a probe finds Elasticsearch back. At-least-once delivery, exactly-once counts.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from aiswatch.es_templates import IndexNames
from aiswatch.ingest.availability import ClusterAvailability
from aiswatch.ingest.batching import DocumentQueue, FlushMarker, QueuedDocument
from aiswatch.ingest.bulk import ActionLines, BulkSender
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.dead_letters import DeadLetterFile
from aiswatch.ingest.delivery import BatchDelivery, DeferredSetup, DeliveryFailed
from aiswatch.ingest.ships_seen_updater import ShipsSeenUpdater
from aiswatch.ingest.spool import DiskSpool, SpoolError

log = logging.getLogger(__name__)

_DAY_MS = 86_400_000


class ElasticsearchSink:
    """Writes AIS documents to daily indices and ships-seen; spools to disk when ES cannot take them.

    client: an Elasticsearch client (``ingest.esclient.make_client``).
    names: the IndexNames to write to.
    counters: shared Counters (documents_indexed, documents_stale, bulk_requests, bulk_errors,
        bulk_retries, dead_letters, spool_depth, spooled_total, replayed_total, es_up,
        ships_written, last_message_time.<source>).
    spool_dir: directory of the disk spool (created; a non-empty spool is replayed first).
    dead_letter_path: NDJSON file for documents Elasticsearch rejected for their content.
    batch_size / batch_bytes / flush_seconds: a bulk request is sent when any limit is reached.
    queue_size: documents buffered in memory; when it is full ``submit`` waits up to
        ``block_seconds`` for room, then sends the document to the spool (None: wait as long as
        the writer runs, pure backpressure, for replays of files that can wait).
    probe_max_seconds: longest wait between two probes while Elasticsearch is down.
    setup: called before the first delivery (the index templates, when Elasticsearch was down at
        start): a connection failure or 5xx there counts as Elasticsearch down (the batch is
        spooled and it is tried again); once it succeeds, or is refused for good, it is not called again.
    """

    def __init__(self, client, names: IndexNames, counters: Counters, *, spool_dir: str | os.PathLike,
                 dead_letter_path: str | os.PathLike, batch_size: int = 2000, batch_bytes: int = 8_000_000,
                 flush_seconds: float = 1.0, queue_size: int = 20000, block_seconds: float | None = 0.5,
                 probe_max_seconds: float = 10.0, setup: Callable[[], None] | None = None,
                 segment_bytes: int = 64 * 1024 * 1024, start: bool = True):
        self.client = client
        self.names = names
        self.counters = counters
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.flush_seconds = flush_seconds
        self.block_seconds = block_seconds
        self.spool = DiskSpool(spool_dir, counters, segment_bytes=segment_bytes)
        self.dead_letters = DeadLetterFile(dead_letter_path, counters)
        self.cluster = ClusterAvailability(client, counters, probe_max_seconds)
        self.queue = DocumentQueue(queue_size)
        sender, actions = BulkSender(client, counters), ActionLines()
        ships = ShipsSeenUpdater(client, names.ships, counters, sender, actions, self.dead_letters)
        self.delivery = BatchDelivery(counters, sender, actions, ships, self.dead_letters, DeferredSetup(setup))
        self._spill_lock = threading.Lock()
        self._index_by_day: dict[int, str] = {}
        self._stop = threading.Event()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="es-writer", daemon=True)
        if start:
            self._writer.start()

    @property
    def dead_letter_path(self) -> Path:
        return self.dead_letters.path

    # -- the pipeline side ----------------------------------------------------------------------------
    def submit(self, doc: dict) -> None:
        """Queue one ``ais-*`` document carrying ``_id`` and ``_ts`` (epoch ms). Thread-safe, never blocks
        for long: when the queue stays full (Elasticsearch slow) the document goes to the disk spool."""
        try:
            doc_id = doc.pop("_id")
            ts = int(doc.pop("_ts"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"document without usable _id/_ts meta keys ({exc!r}); "
                             "build it with ingest.documents.build_document") from None
        # serialised by the writer: in this thread instead it measured slower (more memory held in the queue)
        self._enqueue(QueuedDocument(self._index_for(ts), doc_id, ts, doc, b""))

    def submit_serialized(self, doc_id: str, ts: int, body: bytes, mmsi: str | None, source: str | None,
                          kinds: int) -> None:
        """Queue a document serialised already: ``body`` is its JSON without the meta keys,
        newline-terminated, with its ``mmsi``, ``source`` and ``ships_seen.document_kinds``
        (``ingest.worker``'s decode process sends them so); it is parsed only if needed."""
        self._enqueue(QueuedDocument(self._index_for(ts), doc_id, ts, None, body, mmsi, source, kinds))

    def _enqueue(self, item: QueuedDocument) -> None:
        if self._closed:  # too late for the writer: keep it for the next start
            self._spill([item])
        elif self.queue.full() and not self.queue.wait_for_room(self.block_seconds, self._writer.is_alive):
            self._spill([item])
        else:
            self.queue.put(item)

    def _index_for(self, ts: int) -> str:
        day = ts // _DAY_MS
        name = self._index_by_day.get(day)
        if name is None:
            name = self.names.messages(datetime.fromtimestamp(day * 86400, tz=timezone.utc).strftime("%Y.%m.%d"))
            self._index_by_day[day] = name
        return name

    def _spill(self, items: list[QueuedDocument]) -> None:
        """Append to the spool; if the disk refuses, wait and retry (loudly) rather than drop."""
        records = [it.record() for it in items]
        delay = 1.0
        while True:
            try:
                with self._spill_lock:
                    self.spool.append(records)
                return
            except SpoolError:
                if self._stop.is_set() and self._closed:
                    log.critical("dropping %d documents: spool unwritable at shutdown", len(records))
                    self.counters.incr("documents_lost", len(records))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is acknowledged by Elasticsearch or spooled."""
        if not self._writer.is_alive():
            return self.queue.empty()
        marker = FlushMarker()
        self.queue.put(marker)
        return marker.done.wait(timeout)

    def drain(self, timeout: float = 30.0) -> bool:
        """Flush, then wait up to ``timeout`` for the spool to replay; gives up early once a
        delivery attempt finds Elasticsearch down. True if nothing is left in the spool."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        failures = self.cluster.failures
        self.cluster.probe_now()  # if ES looked down, ask again now rather than after the backoff
        while self.spool.depth and time.monotonic() < deadline and self._writer.is_alive():
            if not self.cluster.up and self.cluster.failures > failures:
                break  # found down again since we started waiting: leave the rest for the next start
            time.sleep(0.05)
        return self.spool.depth == 0

    def close(self, drain_seconds: float = 30.0) -> None:
        """Flush, replay the spool while Elasticsearch answers (up to ``drain_seconds``), stop the writer.

        Whatever is still spooled stays on disk for the next start."""
        if self._closed:
            return
        self.drain(drain_seconds)
        self._closed = True
        self._stop.set()
        self.queue.put(FlushMarker())  # wake the writer
        self._writer.join()
        # anything submitted while we were closing: on disk for the next start, not lost
        leftover, markers = self.queue.take(self.queue.qsize() + 1)
        for m in markers:
            m.done.set()
        if leftover:
            self._spill(leftover)
        self.spool.close()
        if self.spool.depth:
            log.warning("%d documents remain in the spool %s; they are replayed on the next start",
                        self.spool.depth, self.spool.dir)

    @property
    def es_up(self) -> bool:
        return self.cluster.up

    # -- the writer thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.spool.depth:
                    self._spool_mode()
                else:
                    self._direct_mode()
            except Exception:  # a bug here must not silently stop delivery
                log.exception("Elasticsearch writer error; retrying in 1 s")
                self.counters.incr("sink_errors")
                time.sleep(1.0)

    def _direct_mode(self) -> None:
        """Batch from the queue and send; on failure the unsent rest goes to the spool."""
        batch, markers = self.queue.collect(self.batch_size, self.batch_bytes, self.flush_seconds,
                                            self._idle_ends, self._stop.is_set, self._unserialisable)
        try:
            if batch:
                self.delivery.deliver(batch)
        except DeliveryFailed as exc:
            self.cluster.mark_down(exc.reason, self.spool.dir)
            self._spill(exc.undelivered)
        except Exception:  # a bug: keep the batch on disk (replayed, not lost) and say so
            log.exception("Elasticsearch writer error; %d documents kept in the spool", len(batch))
            self.counters.incr("sink_errors")
            self._spill(batch)
            time.sleep(1.0)
        finally:
            for m in markers:
                m.done.set()

    def _idle_ends(self) -> bool:
        return bool(self.spool.depth) or self._stop.is_set()

    def _unserialisable(self, item: QueuedDocument, exc: TypeError) -> None:
        self.dead_letters.write([(item.index, item.id, item.doc, 0, f"not serialisable: {exc}")])

    def _spool_mode(self) -> None:
        """The spool holds documents: queue new ones behind them, replay from the head when ES is up."""
        first = None
        if not self.cluster.up:
            wait = self.cluster.seconds_to_probe()
            if wait > 0:
                first = self.queue.get(min(wait, 0.2))
                if first is None:
                    return
        moved, markers = self.queue.take(self.batch_size, first)
        if moved:
            self._spill(moved)
        for m in markers:
            m.done.set()
        if not self.cluster.up and (self.cluster.seconds_to_probe() > 0 or not self.cluster.probe(self.spool.depth)):
            return
        records, position = self.spool.read(self.batch_size, self.batch_bytes)
        items = [QueuedDocument(idx, doc_id, ts, doc) for idx, doc_id, ts, doc in records]
        try:
            if items:
                self.delivery.deliver(items)
        except DeliveryFailed as exc:
            self.cluster.mark_down(exc.reason, self.spool.dir)
            return
        self.spool.ack(position)
        self.counters.incr("replayed_total", len(items))
