"""The sink's in-memory queue: documents on their way, taken off in batches by count, bytes and time.

``QueuedDocument`` is one raw document with its target index, id and message time; from a decode
process it travels as its JSON line only and is parsed when first needed. ``FlushMarker`` is put
on the queue by ``flush``: set once everything queued before it is acknowledged or spooled.
``DocumentQueue.collect`` waits for a first document, then takes what is there without blocking,
napping between rounds, until a batch is full (count or bytes), ``flush_seconds`` have passed or
a marker comes. The bound (``size``) is the caller's to enforce: ``put`` never blocks.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable

import orjson

from aiswatch.ingest.bulk import NDJSON
from aiswatch.ingest.ships_seen import document_kinds

NAP = 0.01  # pause between queue rounds while a batch fills
ACTION_OVERHEAD = 40  # bytes of an index action line besides the index name and the id


class FlushMarker:
    """A queue marker: set once everything queued before it is acknowledged or spooled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class QueuedDocument:
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
            self.body = body if body is not None else orjson.dumps(doc, option=NDJSON)
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
        """The spool record for this document: ``[index, id, ts, document]``."""
        return [self.index, self.id, self.ts, self.doc]

    def record_line(self) -> bytes:
        """``record()`` as a JSON line, from the source line where there is one (not parsed again).
        Raises TypeError for a document JSON cannot carry."""
        body = self.body
        if body:
            return b"".join((b"[", orjson.dumps(self.index), b",", orjson.dumps(self.id), b",",
                             str(self.ts).encode(), b",", body.rstrip(b"\n"), b"]\n"))
        return orjson.dumps(self.record(), option=NDJSON)

    def weight(self) -> int:
        """About the bytes this document adds to a bulk request."""
        return len(self.body) + len(self.index) + len(self.id) + ACTION_OVERHEAD


class DocumentQueue:
    """A FIFO of QueuedDocuments and FlushMarkers between the submitting threads and the writer.

    A SimpleQueue (C, lock-free put) costs a third of queue.Queue per document; ``full()`` tells
    the caller when ``size`` documents are waiting."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._queue: queue.SimpleQueue = queue.SimpleQueue()

    def put(self, item: QueuedDocument | FlushMarker) -> None:
        self._queue.put(item)

    def qsize(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()

    def full(self) -> bool:
        return self._queue.qsize() >= self.size

    def get(self, timeout: float) -> QueuedDocument | FlushMarker | None:
        """The next item, waiting up to ``timeout`` seconds; None if none came."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def get_nowait(self) -> QueuedDocument | FlushMarker | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def wait_for_room(self, seconds: float | None, keep_waiting: Callable[[], bool]) -> bool:
        """The queue is full: wait up to ``seconds`` for room (None: while ``keep_waiting()``).
        True if there is room now."""
        if seconds is None:
            while self.full() and keep_waiting():
                time.sleep(0.002)
            return not self.full()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.full():
                return True
            time.sleep(0.002)
        return not self.full()

    def collect(self, batch_size: int, batch_bytes: int, flush_seconds: float, idle_ends: Callable[[], bool],
                stopping: Callable[[], bool], unserialisable: Callable[[QueuedDocument, TypeError], None]
                ) -> tuple[list[QueuedDocument], list[FlushMarker]]:
        """Take documents until ``batch_size``, ``batch_bytes`` or ``flush_seconds`` is reached, a
        marker comes or ``stopping()``; an empty queue returns an empty batch only when
        ``idle_ends()`` says so.

        Only the first document of a batch is waited for; after that the queue is emptied without
        blocking, with a nap of ``NAP`` between rounds. Blocking per document would wake this
        thread for every one (two thread switches each, more than indexing it costs). A document
        submitted as a dict is serialised here; one JSON cannot carry goes to ``unserialisable``."""
        batch: list[QueuedDocument] = []
        markers: list[FlushMarker] = []
        size = 0
        deadline = -1.0
        get_nowait = self._queue.get_nowait
        while True:
            if deadline < 0:
                try:
                    item = self._queue.get(timeout=0.2)
                except queue.Empty:
                    if idle_ends():
                        return batch, markers
                    continue
                deadline = time.monotonic() + flush_seconds
            else:
                try:
                    item = get_nowait()
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0 or stopping():
                        return batch, markers
                    time.sleep(min(NAP, left))
                    continue
            if isinstance(item, FlushMarker):
                markers.append(item)
                return batch, markers
            if not item.body:
                try:
                    item.body = orjson.dumps(item.doc, option=NDJSON)
                except TypeError as exc:  # a value JSON cannot carry: reject this one, keep the rest
                    unserialisable(item, exc)
                    continue
            batch.append(item)
            size += item.weight()
            if len(batch) >= batch_size or size >= batch_bytes:
                return batch, markers

    def take(self, limit: int, first: QueuedDocument | FlushMarker | None = None
             ) -> tuple[list[QueuedDocument], list[FlushMarker]]:
        """Up to ``limit`` documents (after ``first``, if given) and every marker among them, without waiting."""
        docs: list[QueuedDocument] = []
        markers: list[FlushMarker] = []
        item = first
        while True:
            if item is not None:
                if isinstance(item, FlushMarker):
                    markers.append(item)
                else:
                    docs.append(item)
            if len(docs) >= limit:
                return docs, markers
            item = self.get_nowait()
            if item is None:
                return docs, markers
