"""The Elasticsearch writer: AIS documents in, bulk requests out, nothing lost on the way.

``submit(doc)`` puts a document on a bounded in-memory queue; one writer thread batches the queue
by count, bytes and time and sends each batch as one ``_bulk`` request whose NDJSON body is
built here from bytes (every document serialised once with orjson, the action lines from cached
prefixes) and handed to ``client.bulk`` as is; 429-rejected items are retried here with backoff,
counted ``bulk_retries``:

- the raw message goes to the daily index of its message time (UTC), ``op_type=index`` with the
  content-derived ``_id``: replaying a log overwrites instead of duplicating;
- the batch's messages are coalesced per MMSI into one whole ``ships-seen`` document each
  (``ingest.ships_seen.merge_ship``), written with ``version_type=external_gte`` and the newest
  message time as version, so an older state never replaces a newer one even when two writers
  race. The stored documents of the batch's vessels are read first, every batch (one ``mget``),
  rather than kept in a cache: a restart keeps their static fields, and the fields the behaviour
  detectors add with partial updates (``identity``, ``area``, ``risk``) are written back as they
  are now, not as a cache remembered them. A 409 conflict (someone wrote between our read and our
  write) is counted ``documents_stale`` and the vessel is re-read and merged again, so a newer
  static or position group is never lost.

When a request fails for connection reasons, a timeout, a 5xx or a persistent 429, the documents
go to the disk spool (``ingest.spool``). When the queue is full (Elasticsearch slower than the
input) ``submit`` waits up to ``block_seconds`` for room, then spools too. While the spool holds
anything, new documents queue up behind it so order is kept, and the writer replays it from the
head as soon as a probe finds Elasticsearch back. Items rejected for their content (mapping
errors: 4xx other than 409/429), or whole requests refused as such (400, 413), go to the
dead-letter file with the reason. At-least-once delivery, exactly-once counts.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Any, Callable

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError

from aiswatch.es_templates import IndexNames
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.ships_seen import document_kinds, merge_ship, needed_for_merge
from aiswatch.ingest.spool import DiskSpool, SpoolError

log = logging.getLogger(__name__)

_DAY_MS = 86_400_000
_SHIP_RETRIES = 3
# results are matched by position, so the response needs only each item's status and error:
# a tenth of the bytes to receive and parse
_BULK_FILTER = "errors,items.*.status,items.*.error"
_BULK_ATTEMPTS = 4
_NAP = 0.01  # the writer's pause between queue rounds while a batch fills
# whole-request statuses worth retrying later (auth and timeouts are fixed outside the request)
_RETRY_REQUEST_STATUS = (401, 403, 408, 429)
_OK = (200, None)  # the result of every item of a bulk response without errors
_NDJSON = orjson.OPT_APPEND_NEWLINE  # a document's source line, ready for the bulk body


class _Flush:
    """A queue marker: set once everything queued before it is acknowledged or spooled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _Item:
    """One raw document on its way: target index, id, message time, the document, its source line
    (JSON and newline; empty: not serialised yet), the two fields the writer groups by and which
    field groups it carries (``ships_seen.document_kinds``).

    From a decode process (``doc`` None) the document is kept as its JSON line only and parsed
    when first needed: for the ships-seen merge (a few documents a vessel and batch), the spool
    or a dead letter; the bulk request sends the line as it is."""

    __slots__ = ("index", "id", "ts", "_doc", "body", "mmsi", "source", "kinds")

    def __init__(self, index: str, id: str, ts: int, doc: dict | None, body: bytes | None = None,
                 mmsi: str | None = None, source: str | None = None, kinds: int = 0):
        self.index, self.id, self.ts, self._doc = index, id, ts, doc
        if doc is not None:
            self.body = body if body is not None else orjson.dumps(doc, option=_NDJSON)
            self.mmsi, self.source, self.kinds = doc.get("mmsi"), doc.get("source"), document_kinds(doc)
        else:
            self.body = b"" if body is None else body
            self.mmsi, self.source, self.kinds = mmsi, source, kinds

    @property
    def doc(self) -> dict:
        if self._doc is None:
            self._doc = orjson.loads(self.body)
        return self._doc

    def record(self) -> list:
        """The spool line for this item."""
        return [self.index, self.id, self.ts, self.doc]


class _EsFailure(Exception):
    """Elasticsearch could not take a request (down, slow, overloaded): spool and retry later."""


class _BulkFailed(Exception):
    """A bulk request failed as a whole; ``results`` holds the answers received before (None: none)."""

    def __init__(self, reason: str, results: list):
        super().__init__(reason)
        self.reason = reason
        self.results = results


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
        self.probe_max_seconds = probe_max_seconds
        self._setup = setup
        self.dead_letter_path = Path(dead_letter_path)
        self.spool = DiskSpool(spool_dir, counters, segment_bytes=segment_bytes)
        # SimpleQueue (C, lock-free put) costs a third of queue.Queue per document; the bound is
        # enforced in submit() by spilling to the spool, so put() never blocks
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.queue_size = queue_size
        self.block_seconds = block_seconds
        self._spill_lock = threading.Lock()
        self._index_by_day: dict[int, str] = {}
        self._header_prefix: dict[str, bytes] = {}
        self._es_up = True
        self._next_probe = 0.0
        self._probe_wait = 0.5
        self._failures = 0  # failed deliveries and probes, so drain() can tell "still down" from "was down"
        self._stop = threading.Event()
        self._closed = False
        self.counters.gauge("es_up", 1)
        self._writer = threading.Thread(target=self._run, name="es-writer", daemon=True)
        if start:
            self._writer.start()

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
        self._enqueue(_Item(self._index_for(ts), doc_id, ts, doc, b""))

    def submit_serialized(self, doc_id: str, ts: int, body: bytes, mmsi: str | None, source: str | None,
                          kinds: int) -> None:
        """Queue a document serialised already: ``body`` is its JSON without the meta keys,
        newline-terminated, with its ``mmsi``, ``source`` and ``ships_seen.document_kinds``
        (``ingest.worker``'s decode process sends them so); it is parsed only if needed."""
        self._enqueue(_Item(self._index_for(ts), doc_id, ts, None, body, mmsi, source, kinds))

    def _enqueue(self, item: "_Item") -> None:
        if self._closed:  # too late for the writer: keep it for the next start
            self._spill([item])
        elif self._queue.qsize() >= self.queue_size and not self._wait_for_room():
            self._spill([item])
        else:
            self._queue.put(item)

    def _wait_for_room(self) -> bool:
        """The queue is full: wait up to ``block_seconds`` for the writer to make room.

        A short wait is backpressure a file replay absorbs without touching the disk; a longer
        stall (Elasticsearch really slow) must not hold up a live source, so the caller spills."""
        if self.block_seconds is None:  # pure backpressure (file replays): wait while the writer lives
            while self._queue.qsize() >= self.queue_size and self._writer.is_alive():
                time.sleep(0.002)
            return self._queue.qsize() < self.queue_size
        deadline = time.monotonic() + self.block_seconds
        while time.monotonic() < deadline:
            if self._queue.qsize() < self.queue_size:
                return True
            time.sleep(0.002)
        return self._queue.qsize() < self.queue_size

    def _index_for(self, ts: int) -> str:
        day = ts // _DAY_MS
        name = self._index_by_day.get(day)
        if name is None:
            name = self.names.messages(datetime.fromtimestamp(day * 86400, tz=timezone.utc).strftime("%Y.%m.%d"))
            self._index_by_day[day] = name
        return name

    def _spill(self, items: list[_Item]) -> None:
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
            return self._queue.empty()
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def drain(self, timeout: float = 30.0) -> bool:
        """Flush, then wait up to ``timeout`` for the spool to replay; gives up early once a
        delivery attempt finds Elasticsearch down. True if nothing is left in the spool."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        failures = self._failures
        self._next_probe = 0.0  # if ES looked down, ask again now rather than after the backoff
        while self.spool.depth and time.monotonic() < deadline and self._writer.is_alive():
            if not self._es_up and self._failures > failures:
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
        self._queue.put(_Flush())  # wake the writer
        self._writer.join()
        # anything submitted while we were closing: on disk for the next start, not lost
        leftover = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _Flush):
                item.done.set()
            else:
                leftover.append(item)
        if leftover:
            self._spill(leftover)
        self.spool.close()
        if self.spool.depth:
            log.warning("%d documents remain in the spool %s; they are replayed on the next start",
                        self.spool.depth, self.spool.dir)

    @property
    def es_up(self) -> bool:
        return self._es_up

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
        batch, markers = self._collect()
        try:
            if batch:
                self._deliver(batch)
        except _EsFailure as exc:
            self._mark_down(exc)
            self._spill(exc.args[1])
        except Exception:  # a bug: keep the batch on disk (replayed, not lost) and say so
            log.exception("Elasticsearch writer error; %d documents kept in the spool", len(batch))
            self.counters.incr("sink_errors")
            self._spill(batch)
            time.sleep(1.0)
        finally:
            for m in markers:
                m.done.set()

    def _collect(self) -> tuple[list[_Item], list[_Flush]]:
        """Take items until batch_size, batch_bytes or flush_seconds is reached, or a flush marker.

        Only the first item of a batch is waited for; after that the queue is emptied without
        blocking and the writer naps ``_NAP`` seconds between rounds. Blocking per item would wake
        this thread for every document (two thread switches each, more than indexing it costs)."""
        batch: list[_Item] = []
        markers: list[_Flush] = []
        size = 0
        deadline = None
        get_nowait = self._queue.get_nowait
        while True:
            if deadline is None:
                try:
                    item = self._queue.get(timeout=0.2)
                except queue.Empty:
                    if not self.spool.depth and not self._stop.is_set():
                        continue
                    return batch, markers
                deadline = time.monotonic() + self.flush_seconds
            else:
                try:
                    item = get_nowait()
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stop.is_set():
                        return batch, markers
                    time.sleep(min(_NAP, left))
                    continue
            if isinstance(item, _Flush):
                markers.append(item)
                return batch, markers
            if not item.body:
                try:
                    item.body = orjson.dumps(item.doc, option=_NDJSON)
                except TypeError as exc:  # a value JSON cannot carry: reject this one, keep the rest
                    self._dead_letters([(item.index, item.id, item.doc, 0, f"not serialisable: {exc}")])
                    continue
            batch.append(item)
            size += len(item.body) + len(item.index) + len(item.id) + 40
            if len(batch) >= self.batch_size or size >= self.batch_bytes:
                return batch, markers

    def _spool_mode(self) -> None:
        """The spool holds documents: queue new ones behind them, replay from the head when ES is up."""
        first = None
        if not self._es_up:
            wait = self._next_probe - time.monotonic()
            if wait > 0:
                try:
                    first = self._queue.get(timeout=min(wait, 0.2))
                except queue.Empty:
                    return
        moved: list[_Item] = [] if first is None or isinstance(first, _Flush) else [first]
        markers: list[_Flush] = [first] if isinstance(first, _Flush) else []
        while len(moved) < self.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Flush):
                markers.append(item)
            else:
                moved.append(item)
        if moved:
            self._spill(moved)
        for m in markers:
            m.done.set()
        if not self._es_up and (time.monotonic() < self._next_probe or not self._probe()):
            return
        records, position = self.spool.read(self.batch_size, self.batch_bytes)
        items = [_Item(idx, doc_id, ts, doc) for idx, doc_id, ts, doc in records]
        try:
            if items:
                self._deliver(items)
        except _EsFailure as exc:
            self._mark_down(exc)
            return
        self.spool.ack(position)
        self.counters.incr("replayed_total", len(items))

    def _probe(self) -> bool:
        try:
            self.client.options(request_timeout=5).info()
        except Exception as exc:  # any failure means: not yet
            self._failures += 1
            self._probe_wait = min(self._probe_wait * 2, self.probe_max_seconds)
            self._next_probe = time.monotonic() + self._probe_wait
            log.debug("Elasticsearch still unreachable (%s); next probe in %.1f s", type(exc).__name__,
                      self._probe_wait)
            return False
        log.warning("Elasticsearch is reachable again; replaying %d spooled documents", self.spool.depth)
        self._es_up = True
        self._probe_wait = 0.5
        self.counters.gauge("es_up", 1)
        return True

    def _mark_down(self, exc: _EsFailure) -> None:
        self._failures += 1
        if self._es_up:
            log.error("Elasticsearch unavailable (%s); spooling documents to %s", exc.args[0], self.spool.dir)
        self._es_up = False
        self.counters.gauge("es_up", 0)
        self._next_probe = time.monotonic() + self._probe_wait

    # -- one batch ------------------------------------------------------------------------------------
    def _deliver(self, items: list[_Item]) -> None:
        """Index ``items`` and their ships-seen updates; raise _EsFailure(reason, undelivered items)."""
        if self._setup is not None:
            self._run_setup(items)
        by_mmsi: dict[str, list[_Item]] = {}
        newest_by_source: dict[str, int] = {}
        for it in items:
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
            ships = self._plan_ships(by_mmsi)
        except (TransportError, ApiError) as exc:
            raise _EsFailure(f"mget {self.names.ships}: {_reason(exc)}", items) from exc

        header = self._header
        actions = [(header(it.index, it.id), it.body) for it in items]
        ship_ids = list(ships)
        actions.extend(self._ship_action(mmsi, *ships[mmsi]) for mmsi in ship_ids)
        failure: str | None = None
        try:
            results = self._bulk(actions)
        except _BulkFailed as exc:
            failure, results = exc.reason, exc.results

        undelivered: list[_Item] = []
        dead: list[tuple[str, str, dict, int, Any]] = []
        indexed = 0
        for it, result in zip(items, results):
            status = result[0] if result is not None else None
            if status is not None and 200 <= status < 300:
                indexed += 1
            elif status is None or status == 429 or status >= 500:
                undelivered.append(it)
            else:
                dead.append((it.index, it.id, it.doc, status, None if result is None else result[1]))
        stale: list[str] = []
        for mmsi, result in zip(ship_ids, results[len(items):]):
            status = result[0] if result is not None else None
            if status is not None and 200 <= status < 300:
                self.counters.incr("ships_written")
            elif status == 409:
                stale.append(mmsi)
            elif status is None or status == 429 or status >= 500:
                undelivered.extend(by_mmsi[mmsi])  # re-sent later so ships-seen gets its update
            else:
                dead.append((self.names.ships, mmsi, ships[mmsi][0], status, None if result is None else result[1]))
        self.counters.incr("documents_indexed", indexed)
        if dead:
            self._dead_letters(dead)
        if stale and failure is None:
            self.counters.incr("documents_stale", len(stale))
            try:
                undelivered.extend(self._rewrite_stale(stale, by_mmsi))
            except (_BulkFailed, TransportError, ApiError) as exc:
                failure = failure or _reason(exc)
                undelivered.extend(it for m in stale for it in by_mmsi[m])
        elif stale:
            undelivered.extend(it for m in stale for it in by_mmsi[m])
        for source, ts in newest_by_source.items():
            key = "last_message_time." + source
            if ts / 1000.0 > self.counters.get(key):
                self.counters.gauge(key, ts / 1000.0)
        if undelivered:
            raise _EsFailure(failure or "items rejected with 429/5xx", _unique(undelivered))

    def _run_setup(self, items: list[_Item]) -> None:
        """The setup owed before the first delivery: documents indexed without their templates would
        get guessed mappings (a location as two floats, the MMSI as text) that no later fix changes."""
        setup = self._setup
        try:
            if setup is not None:
                setup()
        except ApiError as exc:
            if exc.status_code in _RETRY_REQUEST_STATUS or exc.status_code >= 500:
                raise _EsFailure(f"index templates: {_reason(exc)}", items) from exc
            log.error("index templates refused (%s); delivering without them", _short_error(exc.body))
        except TransportError as exc:
            raise _EsFailure(f"index templates: {_reason(exc)}", items) from exc
        else:
            log.info("index templates installed")
        self._setup = None

    def _header(self, index: str, doc_id: str) -> bytes:
        """The bulk action line, with its newline, for a raw document (built from a cached prefix:
        this runs per document)."""
        prefix = self._header_prefix.get(index)
        if prefix is None:
            prefix = self._header_prefix[index] = b'{"index":{"_index":' + orjson.dumps(index) + b',"_id":'
        return prefix + orjson.dumps(doc_id) + b"}}\n"

    def _bulk(self, actions: list[tuple[bytes, bytes]]) -> list[tuple[int, Any] | None]:
        """Send pre-serialised actions, (action line, source line) each newline-terminated, as
        one NDJSON bulk request; retry the 429-rejected ones with backoff.

        Returns (status, error) per action, in order (None where the response has no item for
        it). Raises _BulkFailed (with the results so far, None for no answer) when a request
        fails: connection, timeout, 5xx, persistent 429.
        """
        results: list[tuple[int, Any] | None] = [None] * len(actions)
        pending = list(range(len(actions)))
        backoff = 0.5
        for attempt in range(_BULK_ATTEMPTS):
            if attempt:
                self.counters.incr("bulk_retries")
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            self.counters.incr("bulk_requests")
            body = b"".join(chain.from_iterable(actions if attempt == 0 else [actions[i] for i in pending]))
            retry: list[int] = []
            try:
                resp = self.client.bulk(operations=body, filter_path=_BULK_FILTER).body
            except (TransportError, ApiError) as exc:
                status = exc.status_code if isinstance(exc, ApiError) else None
                if status == 429 and attempt + 1 < _BULK_ATTEMPTS:
                    continue  # the whole request was rejected: retry it after the backoff
                if status is not None and 400 <= status < 500 and status not in _RETRY_REQUEST_STATUS:
                    # the request itself is refused (400, 413): sending it again would refuse it
                    # again and stall everything queued behind it, so its items become dead letters
                    error = {"type": "request_rejected", "reason": str(exc)[:500]}
                    for pos in pending:
                        results[pos] = (status, error)
                    self.counters.incr("bulk_errors")
                    return results
                self.counters.incr("bulk_errors")
                raise _BulkFailed(f"bulk: {_reason(exc)}", results) from exc
            items = resp.get("items") or ()
            if resp.get("errors") is False and len(items) == len(pending):
                for pos in pending:  # the common case: every item succeeded
                    results[pos] = _OK
                break
            # items answer the actions in order; one missing leaves its result None (re-sent later)
            for pos, item in zip(pending, items):
                for res in item.values():
                    status = res.get("status", 500)
                    results[pos] = (status, res.get("error"))
                    if status == 429:
                        retry.append(pos)
            if not retry:
                break
            pending = retry
        return results

    def _ship_action(self, mmsi: str, doc: dict, version: int) -> tuple[bytes, bytes]:
        header = {"index": {"_index": self.names.ships, "_id": mmsi, "version": version,
                            "version_type": "external_gte"}}
        return orjson.dumps(header, option=_NDJSON), orjson.dumps(doc, option=_NDJSON)

    def _plan_ships(self, by_mmsi: dict[str, list[_Item]]) -> dict[str, tuple[dict, int]]:
        """Read the stored ships-seen documents of these vessels and merge the batch's messages in."""
        if not by_mmsi:
            return {}
        stored = self._read_ships(list(by_mmsi))
        plan = {}
        for mmsi, its in by_mmsi.items():
            doc, version = stored.get(mmsi, (None, None))
            needed = needed_for_merge([(it.ts, it.kinds) for it in its])
            merged = merge_ship(doc, version, [(its[i].ts, its[i].doc) for i in needed])
            if merged is not None:
                plan[mmsi] = merged
        return plan

    def _read_ships(self, ids: list[str]) -> dict[str, tuple[dict, int]]:
        try:
            resp = self.client.mget(index=self.names.ships, ids=ids)
        except ApiError as exc:
            if exc.status_code == 404:  # the index does not exist yet
                return {}
            raise
        out = {}
        for d in resp.get("docs", ()):
            if d.get("found"):
                out[d["_id"]] = (d.get("_source") or {}, int(d.get("_version") or 0))
        return out

    def _rewrite_stale(self, mmsis: list[str], by_mmsi: dict[str, list[_Item]]) -> list[_Item]:
        """Someone wrote these vessels meanwhile: re-read, merge again, write; items still not written."""
        for _ in range(_SHIP_RETRIES):
            plan = self._plan_ships({m: by_mmsi[m] for m in mmsis})
            if not plan:
                return []
            ids = list(plan)
            results = self._bulk([self._ship_action(m, *plan[m]) for m in ids])
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
                    self._dead_letters([(self.names.ships, mmsi, plan[mmsi][0], status, error)])
            if not mmsis:
                return []
        log.warning("ships-seen: %d vessels still conflicting after %d attempts; spooling their messages",
                    len(mmsis), _SHIP_RETRIES)
        return [it for m in mmsis for it in by_mmsi[m]]

    def _dead_letters(self, dead: list[tuple[str, str, dict, int, Any]]) -> None:
        """Append (index, id, document, status, error) rejections to the dead-letter file."""
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = []
        for index, doc_id, document, status, error in dead:
            lines.append(orjson.dumps({"time": now, "index": index, "id": doc_id, "status": status,
                                       "error": error, "document": document},
                                      option=orjson.OPT_NON_STR_KEYS, default=repr) + b"\n")
            log.warning("dead letter: %s/%s rejected with %s: %s", index, doc_id, status, _short_error(error))
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dead_letter_path, "ab") as f:
            f.write(b"".join(lines))
            f.flush()
            os.fsync(f.fileno())
        self.counters.incr("dead_letters", len(lines))
        self.counters.incr("bulk_errors", len(lines))


def _unique(items: list[_Item]) -> list[_Item]:
    seen = set()
    out = []
    for it in items:
        if id(it) not in seen:
            seen.add(id(it))
            out.append(it)
    return out


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return f"{type(exc).__name__}{' ' + str(status) if status else ''}"


def _short_error(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type')}: {str(error.get('reason'))[:200]}"
    return str(error)[:200]
