"""The Elasticsearch writer: AIS documents in, bulk requests out, nothing lost on the way.

``submit(doc)`` puts a document on a bounded in-memory queue (``batching.DocumentQueue``); one
writer thread takes it off in batches by count, bytes and time and hands each batch to
``delivery.BatchDelivery``: raw documents to the daily index of their message time (UTC), each
vessel's merged state to ``ships-seen`` (``ships_seen_updater``), one bulk request with 429 retry
(``bulk``), content rejections to the dead-letter file (``dead_letters``).

Backpressure that degrades instead of collapsing, in three places, oldest documents first:

1. memory: the queue holds ``queue_size`` documents. When it is full (Elasticsearch slower than
   the input) ``submit`` waits up to ``block_seconds`` for room (None: as long as it takes, for
   a replay that can wait), then
2. staging: documents go to ``spool_writer.SpoolWriter``, which appends them to
3. the disk spool (``spool.DiskSpool``) in batches, one write and one fsync per batch, so intake
   keeps the source's rate. While the spool or the staging holds anything, new documents go
   behind them.

The writer delivers the queue first, then the spool from its head, then what is staged, so the
spool drains in order as soon as the cluster keeps up. A failed delivery (connection, timeout,
5xx, persistent 429) marks the cluster down (``availability.ClusterAvailability``): its batch and,
meanwhile, the queue go to the spool (durable across a crash), and a probe with backoff finds the
cluster back; delivery then resumes whatever the spool's state. The spool is bounded
(``spool_max_bytes``): full, staging fills, then ``submit`` waits, so sources that can wait (files,
TCP) stop reading and a UDP receiver drops and counts what it cannot hold.

``interrupt()`` (SIGTERM) makes every wait here end; ``close()`` then delivers what it can for
``grace_seconds``, spools the rest and counts what the spool cannot take (``documents_lost``).
At-least-once delivery, exactly-once counts.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
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
from aiswatch.ingest.spool import DiskSpool, SpoolError, SpoolForeign, SpoolTarget
from aiswatch.ingest.spool_writer import SpoolWriter

log = logging.getLogger(__name__)

_DAY_MS = 86_400_000


class ElasticsearchSink:
    """Writes AIS documents to daily indices and ships-seen; spools to disk when ES cannot take them.

    client: an Elasticsearch client (``ingest.esclient.make_client``).
    names: the IndexNames to write to.
    counters: shared Counters (documents_indexed, documents_stale, bulk_requests, bulk_errors,
        bulk_retries, dead_letters, spool_depth, spool_bytes, spooled_total, replayed_total,
        documents_lost, es_up, es_outages, queued, ships_written, last_message_time.<source>).
    spool_dir: directory of the disk spool (created; a non-empty spool is replayed first).
    spool_max_bytes: the spool's size bound (None: the disk's); spool_target: the cluster and
        namespace its documents are for (``spool.SpoolTarget``; a spool for another is refused).
    dead_letter_path: NDJSON file for documents Elasticsearch rejected for their content.
    batch_size / batch_bytes / flush_seconds: a bulk request is sent when any limit is reached.
    queue_size / block_seconds: documents held in memory, and how long ``submit`` waits for room
        before it stages a document for the spool (None: as long as the writer runs).
    probe_max_seconds: longest wait between two probes while Elasticsearch is down.
    setup: called before the first delivery (the index templates, when Elasticsearch was down at
        start), and as soon as the cluster answers even without documents: a connection failure
        or 5xx there counts as Elasticsearch down; once it succeeds, or is refused for good,
        ``setup_ready`` is set and it is not called again.
    retention_days: the daily indices' retention, to say what it does with a backfill older than it.
    on_fatal: called with a message when the spool turns out to be meant for another cluster
        (found when the cluster first answers); the sink then stops delivering.
    """

    def __init__(self, client, names: IndexNames, counters: Counters, *, spool_dir: str | os.PathLike,
                 dead_letter_path: str | os.PathLike, batch_size: int = 2000, batch_bytes: int = 8_000_000,
                 flush_seconds: float = 1.0, queue_size: int = 20000, block_seconds: float | None = 0.5,
                 probe_max_seconds: float = 10.0, setup: Callable[[], None] | None = None,
                 segment_bytes: int = 64 * 1024 * 1024, spool_max_bytes: int | None = None,
                 spool_target: SpoolTarget | None = None, retention_days: int | None = None,
                 on_fatal: Callable[[str], None] | None = None, start: bool = True):
        self.client = client
        self.names = names
        self.counters = counters
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.flush_seconds = flush_seconds
        self.block_seconds = block_seconds
        self.retention_days = retention_days
        self.on_fatal = on_fatal
        self.spool = DiskSpool(spool_dir, counters, segment_bytes=segment_bytes, max_bytes=spool_max_bytes,
                               target=spool_target)
        self.dead_letters = DeadLetterFile(dead_letter_path, counters)
        self.cluster = ClusterAvailability(client, counters, probe_max_seconds, self.spool.dir)
        self.queue = DocumentQueue(queue_size)
        self.spooler = SpoolWriter(self.spool, self._unserialisable, limit=max(2 * batch_size, 1000))
        self.setup = DeferredSetup(setup)
        sender, actions = BulkSender(client, counters), ActionLines()
        ships = ShipsSeenUpdater(client, names.ships, counters, sender, actions, self.dead_letters)
        self.delivery = BatchDelivery(counters, sender, actions, ships, self.dead_letters, self.setup)
        self.fatal: str | None = None
        self._index_by_day: dict[int, str] = {}
        self._in_flight: list[QueuedDocument] = []   # taken from memory and being delivered
        self._staged_count = 0
        self._interrupted = threading.Event()
        self._interrupted_at = 0.0
        self._stop = threading.Event()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="es-writer", daemon=True)
        if start:
            self._writer.start()

    @property
    def dead_letter_path(self) -> Path:
        return self.dead_letters.path

    @property
    def setup_ready(self) -> threading.Event:
        """Set once the deferred setup (the templates) is done: helper indices may be written."""
        return self.setup.ready

    @property
    def es_up(self) -> bool:
        return self.cluster.up

    # -- the pipeline side ----------------------------------------------------------------------------
    def submit(self, doc: dict) -> None:
        """Queue one ``ais-*`` document carrying ``_id`` and ``_ts`` (epoch ms). Thread-safe; waits
        only while memory and spool are both full (see the module docstring)."""
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
        if self._closed:  # too late for the writer: to the spool, or counted
            if not self.spooler.stage([item], wait=False):
                self._lost([item], "the sink was closed")
        elif self.spool.depth or self.spooler.pending:  # behind what waits on disk
            self._stage(item)
        elif self.queue.full() and not self.queue.wait_for_room(self.block_seconds, self._may_wait):
            self._stage(item)
        else:
            self.queue.put(item)

    def _stage(self, item: QueuedDocument) -> None:
        self.spooler.stage([item])
        self._staged_count += 1
        if self._staged_count % 100 == 0:  # while the writer may be stuck in a slow request
            self.counters.gauge("queued", self.in_memory())

    def _may_wait(self) -> bool:
        return self._writer.is_alive() and not self._interrupted.is_set()

    def _index_for(self, ts: int) -> str:
        day = ts // _DAY_MS
        name = self._index_by_day.get(day)
        if name is None:
            date = datetime.fromtimestamp(day * 86400, tz=timezone.utc)
            name = self.names.messages(date.strftime("%Y.%m.%d"))
            self._index_by_day[day] = name
            self._say_what_retention_does(name, date)
        return name

    def _say_what_retention_does(self, index: str, date: datetime) -> None:
        days = self.retention_days
        if not days or datetime.now(timezone.utc) - date <= timedelta(days=days):
            return
        log.info("backfill: %s holds messages older than the retention (%d days). It is kept: retention "
                 "counts an index's age from its creation, as ILM does, so it goes %d days after it was "
                 "created (about %s), not by the date in its name", index, days, days,
                 (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%d"))

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is acknowledged by Elasticsearch or on disk
        (False: ``timeout`` passed, or ``interrupt()`` came first)."""
        if not self._writer.is_alive():
            return self.queue.empty() and not self.spooler.pending
        deadline = None if timeout is None else time.monotonic() + timeout
        marker = FlushMarker()
        self.queue.put(marker)
        if not self._wait(marker, deadline):
            return False
        if not self.spooler.pending:
            return True
        marker = FlushMarker()
        return self.spooler.stage([], [marker], wait=False) and self._wait(marker, deadline)

    def _wait(self, marker: FlushMarker, deadline: float | None) -> bool:
        while not marker.done.wait(0.1):
            if self._interrupted.is_set() or not self._writer.is_alive():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def interrupt(self) -> None:
        """A shutdown is asked for (SIGTERM): no wait here lasts any more, ``close`` delivers for its
        ``grace_seconds`` at most, counted from now."""
        if not self._interrupted.is_set():
            self._interrupted_at = time.monotonic()
            self._interrupted.set()
        self.spooler.interrupt()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def outage_seconds(self) -> float:
        """How long Elasticsearch has been found down without a break (0 while up)."""
        return self.cluster.outage_seconds()

    def in_memory(self) -> int:
        """Documents held in memory: queued, staged for the spool, being delivered."""
        return self.queue.qsize() + self.spooler.pending + len(self._in_flight)

    def drain(self, timeout: float = 30.0, outage_seconds: float = 0.0, grace_seconds: float = 3.0) -> bool:
        """Wait up to ``timeout`` for everything, spool included, to be delivered. While the cluster
        is down: with ``outage_seconds`` 0, give up once a delivery attempt finds it down; else once
        it has been down for longer than that. After ``interrupt()``: ``grace_seconds`` at most.
        True if nothing is left."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)  # what is in memory is tried (or spooled) first
        failures = self.cluster.failures
        self.cluster.probe_now()  # if ES looked down, ask again now rather than after the backoff
        while self._undelivered() and self._writer.is_alive() and self.fatal is None:
            if self._interrupted.is_set():
                if not self.cluster.up:
                    break  # nothing to wait for: what is left goes to the spool now
                deadline = min(deadline, self._interrupted_at + grace_seconds)
            if time.monotonic() >= deadline:
                break
            if not self.cluster.up:
                if outage_seconds <= 0 and self.cluster.failures > failures:
                    break  # found down again since we started waiting: leave the rest for the next start
                if 0 < outage_seconds < self.cluster.outage_seconds():
                    break
            time.sleep(0.05)
        return not self._undelivered()

    def _undelivered(self) -> bool:
        return bool(self.spool.depth or self.in_memory())

    def close(self, drain_seconds: float = 30.0, outage_seconds: float = 0.0, grace_seconds: float = 3.0) -> None:
        """``drain`` (same arguments), stop the writer, put what is still in memory in the spool
        (what it cannot take is counted ``documents_lost`` and logged). What is spooled stays on
        disk for the next start."""
        if self._closed:
            return
        self.drain(drain_seconds, outage_seconds, grace_seconds)
        self._closed = True
        self._stop.set()
        self.queue.put(FlushMarker())  # wake the writer
        self._writer.join(1.0)         # a request in flight is not waited for: its batch is spooled
        leftover, markers = self.queue.take(self.queue.qsize() + 1)
        if self._writer.is_alive():
            leftover = self._in_flight + leftover
        self.spooler.stage(leftover, markers, wait=False)
        lost = self.spooler.close(timeout=2.0)
        if lost:
            self._lost(lost, f"the spool {self.spool.dir} could not take them "
                             f"({self.spool.bytes} bytes of {self.spool.max_bytes or 'the disk'})")
        self.spool.close()
        if self.spool.depth:
            log.warning("%d documents remain in the spool %s; they are replayed on the next start",
                        self.spool.depth, self.spool.dir)

    def _lost(self, docs: list[QueuedDocument], why: str) -> None:
        self.counters.incr("documents_lost", len(docs))
        log.error("%d documents lost: neither delivered nor spooled, %s", len(docs), why)

    # -- the writer thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set() and self.fatal is None:
            try:
                if self.cluster.up:
                    self._deliver_round()
                else:
                    self._outage_round()
                self.counters.gauge("queued", self.in_memory())
            except Exception:  # a bug here must not silently stop delivery
                log.exception("Elasticsearch writer error; retrying in 1 s")
                self.counters.incr("sink_errors")
                time.sleep(1.0)

    def _deliver_round(self) -> None:
        """One batch, oldest first: the queue, else the spool's head, else what is staged."""
        from_spool = False
        position = (0, 0, 0)
        if not self.queue.empty() or not (self.spool.depth or self.spooler.pending):
            batch, markers = self.queue.collect(self.batch_size, self.batch_bytes, self.flush_seconds,
                                                self._idle_ends, self._stop.is_set, self._unserialisable)
        elif self.spool.depth:
            records, position = self.spool.read(self.batch_size, self.batch_bytes)
            batch = [QueuedDocument(idx, doc_id, ts, doc) for idx, doc_id, ts, doc in records]
            markers = []
            from_spool = True
            if not batch:
                if position[2]:  # only unreadable records: skip them
                    self.spool.ack(position)
                else:            # nothing readable yet (cannot last): do not spin
                    time.sleep(0.05)
                return
        else:
            batch, markers = self.spooler.take(self.batch_size)
        try:
            if not batch:
                if self.setup.owed:
                    self.setup.settle(batch)  # the templates, as soon as the cluster answers
                return
            if not from_spool:
                self._in_flight = batch
            self.delivery.deliver(batch)
        except DeliveryFailed as exc:
            self.cluster.mark_down(exc.reason)
            if not from_spool:  # to disk, durable
                self.spooler.stage(exc.undelivered, markers, wait=False)
                markers = []
            elif len(exc.undelivered) < len(batch):
                self._requeue_rest(position, batch, exc.undelivered)
            # else: nothing of the spool batch was taken; it stays at the head, unacknowledged
        except Exception:  # a bug: keep the batch on disk (replayed, not lost) and say so
            log.exception("Elasticsearch writer error; %d documents kept in the spool", len(batch))
            self.counters.incr("sink_errors")
            if not from_spool:
                self.spooler.stage(batch, markers, wait=False)
                markers = []
            time.sleep(1.0)
        else:
            if from_spool:
                self._acknowledge(position, len(batch))
        finally:
            self._in_flight = []
            for m in markers:
                m.done.set()

    def _requeue_rest(self, position: tuple[int, int, int], batch: list[QueuedDocument],
                      undelivered: list[QueuedDocument]) -> None:
        """A spool batch delivered in part: its undelivered documents go to the spool's tail (on disk
        before the batch is acknowledged), so the delivered ones are not sent, nor counted, twice.
        If the spool cannot take them, the whole batch stays and is sent again later."""
        try:
            self.spool.append_lines([d.record_line() for d in undelivered])
        except (SpoolError, TypeError):
            return
        self._acknowledge(position, len(batch) - len(undelivered))

    def _acknowledge(self, position: tuple[int, int, int], delivered: int) -> None:
        try:
            self.spool.ack(position)
        except SpoolError as exc:  # delivered, but not recorded: sent again later (same ids: no duplicate)
            log.error("%s", exc)
            self.counters.incr("spool_errors")
            time.sleep(1.0)
            return
        self.counters.incr("replayed_total", delivered)
        self.spooler.space_freed()

    def _outage_round(self) -> None:
        """Elasticsearch is down (or not asked yet): probe when due; meanwhile move the queue to the
        spool, as far as the spool writer has room (it never waits here)."""
        wait = self.cluster.seconds_to_probe()
        if wait <= 0:
            if self.cluster.probe(self.spool.depth):
                self._check_spool_owner()
            return
        room = self.spooler.room()
        if room <= 0:
            self._stop.wait(min(wait, 0.2))
            return
        first = self.queue.get(min(wait, 0.2))
        if first is None:
            return
        docs, markers = self.queue.take(min(room, self.batch_size), first)
        self.spooler.stage(docs, markers, wait=False)

    def _check_spool_owner(self) -> None:
        try:
            self.spool.confirm_cluster(self.cluster.cluster_uuid)
        except SpoolForeign as exc:
            self.fatal = str(exc)
            log.error("%s", exc)
            if self.on_fatal is not None:
                self.on_fatal(str(exc))

    def _idle_ends(self) -> bool:
        return bool(self.spool.depth or self.spooler.pending) or self._stop.is_set() or self.setup.owed

    def _unserialisable(self, item: QueuedDocument, exc: TypeError) -> None:
        self.dead_letters.write([(item.index, item.id, item.doc, 0, f"not serialisable: {exc}")])
