"""Documents on their way to the disk spool, written in batches by one thread.

``stage(docs)`` hands documents over without touching the disk; the writer thread appends
everything staged since its last write in one ``DiskSpool.append_lines`` (one write, one fsync),
so a submitter spilling thousands of documents a second costs a list append each, and the
fsyncs are as many as the disk can do, not one per document. ``FlushMarker``s staged among the
documents are set once everything before them is on disk.

Bounded: ``limit`` documents wait at most; ``stage`` waits for room unless told not to (the
sink's writer thread never waits: delivery must go on whatever the spool's state). When the spool
refuses for space (``SpoolFull``) the documents stay staged and the thread tries again when space
is freed (``space_freed``) or every ``RETRY_SECONDS``; the sink may take them back to deliver them
directly (``take``). ``close`` writes what it can and returns what could not be written.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from aiswatch.ingest.batching import FlushMarker, QueuedDocument
from aiswatch.ingest.spool import DiskSpool, SpoolError, SpoolFull

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
MAX_WRITE_RECORDS = 5000  # records per append at most (a few MB)


class SpoolWriter:
    """Stages QueuedDocuments (and FlushMarkers) and appends them to ``spool`` in batches;
    ``unserialisable(doc, error)`` takes a document JSON cannot carry (a dead letter)."""

    def __init__(self, spool: DiskSpool, unserialisable: Callable[[QueuedDocument, TypeError], None],
                 limit: int = 4000, start: bool = True) -> None:
        self.spool = spool
        self.unserialisable = unserialisable
        self.limit = limit
        self._staged: deque = deque()   # documents and markers, oldest first
        self.pending = 0                # documents staged or being written (not on disk yet): a plain
        # attribute, read for every document the sink takes
        self._cond = threading.Condition()
        self._interrupted = False
        self._closing = False
        self._refused_at = 0.0
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        if start:
            self._thread.start()

    def room(self) -> int:
        return max(0, self.limit - self.pending)

    def stage(self, docs: list[QueuedDocument], markers: list[FlushMarker] | None = None,
              wait: bool = True) -> bool:
        """Stage ``docs`` (then ``markers``) for the spool. ``wait``: while ``limit`` documents are
        staged, wait for room (until ``interrupt``); False: stage at once, past the limit if need be.
        False if the writer is closed (nothing staged)."""
        with self._cond:
            if self._closing:
                return False
            if wait:
                while self.pending >= self.limit and not self._interrupted and not self._closing:
                    self._cond.wait(0.2)
            self._staged.extend(docs)
            self.pending += len(docs)
            if markers:
                self._staged.extend(markers)
            self._cond.notify_all()
        return True

    def take(self, limit: int) -> tuple[list[QueuedDocument], list[FlushMarker]]:
        """Take back up to ``limit`` staged documents from the head (and the markers among them),
        for the sink to deliver directly: the spool refuses them, or is empty and slower than
        Elasticsearch. Documents being written are not taken."""
        docs: list[QueuedDocument] = []
        markers: list[FlushMarker] = []
        with self._cond:
            while self._staged and len(docs) < limit:
                item = self._staged.popleft()
                if isinstance(item, FlushMarker):
                    markers.append(item)
                else:
                    docs.append(item)
            self.pending -= len(docs)
            self._cond.notify_all()
        return docs, markers

    def space_freed(self) -> None:
        """The spool has room again (documents were delivered): try the staged ones now."""
        with self._cond:
            self._refused_at = 0.0
            self._cond.notify_all()

    def interrupt(self) -> None:
        """Stop waiting for room: ``stage`` returns at once from now on."""
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not self._staged or self._refused_recently()):
                    self._cond.wait(0.2 if self._staged else None)
                if self._closing:
                    return
                batch = self._pop_head()
            self._write(batch)

    def _refused_recently(self) -> bool:
        return self._refused_at > 0 and time.monotonic() - self._refused_at < RETRY_SECONDS

    def _pop_head(self) -> list:
        """Take the first staged items off (documents up to MAX_WRITE_RECORDS, the markers among them)."""
        out = []
        count = 0
        staged = self._staged
        while staged:
            if not isinstance(staged[0], FlushMarker):
                if count >= MAX_WRITE_RECORDS:
                    break
                count += 1
            out.append(staged.popleft())
        return out

    def _write(self, batch: list) -> bool:
        """Append the documents of ``batch`` and set its markers; if the spool refuses, put the
        batch back at the head and return False."""
        lines = []
        written = 0
        for item in batch:
            if isinstance(item, FlushMarker):
                continue
            try:
                lines.append(item.record_line())
            except TypeError as exc:  # a value JSON cannot carry: a dead letter, not a stuck spool
                self.unserialisable(item, exc)
            written += 1
        try:
            self.spool.append_lines(lines)
        except SpoolError as exc:
            with self._cond:
                self._staged.extendleft(reversed(batch))
                self._refused_at = time.monotonic()
            if not isinstance(exc, SpoolFull):
                log.debug("spool append failed: %s", exc)
            return False
        with self._cond:
            self.pending -= written
            for item in batch:
                if isinstance(item, FlushMarker):
                    item.done.set()
            self._cond.notify_all()
        return True

    def close(self, timeout: float = 2.0) -> list[QueuedDocument]:
        """Stop the thread, write what is staged (for about ``timeout`` at most); the documents
        that could not be written (the spool full or failing), for the caller to count."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                batch = self._pop_head()
            if not batch or not self._write(batch):
                break
        with self._cond:
            left = [d for d in self._staged if not isinstance(d, FlushMarker)]
            for item in self._staged:
                if isinstance(item, FlushMarker):
                    item.done.set()
            self._staged.clear()
            self.pending = 0
        return left
