"""The pipeline: lines in, documents out, one stage per module.

    Line -> nmea.parse_line -> Sentence -> FragmentAssembler -> SentenceGroup
         -> decoder.decode -> fields -> documents.build_document -> document -> sink.submit
    Report (a feed that arrives decoded) -> documents.build_report -> document -> sink.submit

``Pipeline.feed`` runs the stages for one line in the calling thread. ``Pipeline.run`` reads any
number of sources, each in its own thread, through one bounded queue into a single processing
thread (the assembler is not shared between threads), and returns when every source has ended
or ``stop()`` was called. Nothing here knows which kind of source a line came from, except that
a source with a ``line_batches()`` method (a file replayed at full speed) hands over lists of
lines: one queue hand-off (a lock, a condition, often a thread switch) per list instead of per
line, which cost more than parsing the line. And a lone source that never waits for its input
(``reads_without_waiting``: a file at full speed, ``aiswatch ingest file``) is read in the
processing thread itself: two threads taking turns with the GIL on two cores cost more than the
reading they would overlap.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Iterable, Protocol

from aiswatch.ingest.assembler import FragmentAssembler
from aiswatch.ingest.counters import CountBatch, Counters
from aiswatch.ingest.decoder import decode, fields_problem
from aiswatch.ingest.documents import Report, build_document, build_report
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import parse_line

log = logging.getLogger(__name__)

_END = object()  # a source thread's end marker on the line queue

# Collector thresholds while sources run (ingest.runner, and the decode process of ingest.worker).
# The stages make a few dozen objects per message and almost no cycles, but the sink queue holds
# up to queue_size documents that survive young collections, so at CPython's default (700, 10, 10)
# the older generations are traversed over and over: a fifth of the CPU of a fast replay, for
# nothing to collect (measured, bench/ingest.py).
GC_THRESHOLDS = (50_000, 20, 20)


class _LineQueue(queue.Queue):
    """A ``queue.Queue`` of lines and lists of lines whose bound counts lines: a list weighs its
    length (never put an empty one), anything else one."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self._lines = 0

    def _qsize(self) -> int:
        return self._lines

    def _put(self, item) -> None:
        self.queue.append(item)
        self._lines += len(item) if type(item) is list else 1

    def _get(self):
        item = self.queue.popleft()
        self._lines -= len(item) if type(item) is list else 1
        return item


class DocumentSink(Protocol):
    def submit(self, doc: dict) -> object: ...
    def flush(self) -> object: ...


class ListSink:
    """Collects documents in memory (replays into a list, tests of the decoding stages)."""

    def __init__(self) -> None:
        self.documents: list[dict] = []

    def submit(self, doc: dict) -> None:
        self.documents.append(doc)

    def flush(self) -> None:
        pass


class Pipeline:
    """Parse, reassemble, decode and build documents for every line fed; hand them to ``sink``.

    timeout_seconds: how long an incomplete multi-sentence message waits for its other fragments.
    max_pending: the most incomplete messages held at once (the oldest is dropped, counted, beyond).
    queue_size: lines buffered between the source threads and the processing thread in ``run``
        (a list of lines from ``line_batches`` may take it past the bound by its length).
    """

    def __init__(self, sink: DocumentSink, counters: Counters | None = None, *,
                 timeout_seconds: float = 10.0, max_pending: int = 10000, queue_size: int = 20000):
        self.sink = sink
        self.counters = counters if counters is not None else Counters()
        self.assembler = FragmentAssembler(self.counters, timeout_seconds=timeout_seconds, max_pending=max_pending)
        self._queue: queue.Queue = _LineQueue(maxsize=queue_size)
        self._stop = threading.Event()
        self._next_expiry = 0.0
        self._batch_counts = CountBatch(self.counters)

    def feed(self, line: Line | Report, counts: Counters | CountBatch | None = None) -> None:
        """Run the stages for one line (or Report); ``counts``: where parsing and decoding count
        (default: the counters)."""
        if counts is None:
            counts = self.counters
        if isinstance(line, Report):   # arrived decoded (aisstream): straight to the document
            counts.add(("lines_in", 1), ("sentences_in", 1))
            problem = fields_problem(line.fields)   # the decoder's rules, those that need no bits
            if problem is not None:
                counts.reject(problem)
                return
            counts.add(("messages_decoded", 1), ("sentences_decoded", 1))
            report_doc = build_report(line)
            if report_doc is not None:
                self.sink.submit(report_doc)
            return
        sentence = parse_line(line, counts)
        if sentence is None:
            return
        group = self.assembler.push(sentence)
        if group is None:
            return
        fields = decode(group, counts)
        if fields is None:
            return
        doc = build_document(group, fields)
        if doc is not None:
            self.sink.submit(doc)

    def _feed_list(self, lines: list[Line]) -> None:
        """``feed`` every line of a list, counting locally and adding the counts once at the end."""
        feed = self.feed
        counts = self._batch_counts
        try:
            for line in lines:
                feed(line, counts)
                if line.received_at >= self._next_expiry:
                    self.expire(line.received_at)
        finally:
            counts.flush()

    def feed_many(self, lines: Iterable[Line]) -> None:
        for line in lines:
            self.feed(line)
            if line.received_at >= self._next_expiry:
                self.expire(line.received_at)

    def expire(self, now: float | None = None) -> None:
        """Drop incomplete messages whose fragments are overdue (counted by the assembler)."""
        now = time.time() if now is None else now
        self.assembler.expire(now)
        self._next_expiry = now + 1.0

    def finish(self) -> None:
        """End of input: drop what is still incomplete (counted) and flush the sink."""
        self.assembler.flush()
        self.sink.flush()

    def stop(self) -> None:
        """Ask ``run`` to end: sources are closed and what was read is still processed."""
        self._stop.set()

    def run(self, sources: list, *, finish: bool = True) -> None:
        """Read every source in its own thread until all have ended (or ``stop()``); process in this one.

        A lone source that ``reads_without_waiting`` is read in this thread instead."""
        if len(sources) == 1 and getattr(sources[0], "reads_without_waiting", False):
            self._run_inline(sources[0], finish)
            return
        threads = [threading.Thread(target=self._pump, args=(src,), name=f"source-{src.id}", daemon=True)
                   for src in sources]
        for t in threads:
            t.start()
        running = len(threads)
        try:
            while running:
                if self._stop.is_set():
                    for src in sources:
                        src.close()
                try:
                    item = self._queue.get(timeout=0.5)
                except queue.Empty:
                    self.expire()
                    continue
                if item is _END:
                    running -= 1
                    continue
                if type(item) is list:
                    self._feed_list(item)
                    continue
                self.feed(item)
                if item.received_at >= self._next_expiry:
                    self.expire(item.received_at)
        finally:
            for src in sources:
                src.close()
            for t in threads:
                t.join(timeout=5)
            if finish:
                self.finish()

    def _run_inline(self, source, finish: bool) -> None:
        """``run`` for one source that never waits: its lists of lines are processed as read."""
        batches = iter(source.line_batches())
        try:
            while not self._stop.is_set():
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception as exc:  # as in _pump: a source that dies is logged and counted
                    self._source_failed(source, exc)
                    break
                self._feed_list(batch)
        finally:
            source.close()
            if finish:
                self.finish()

    def _source_failed(self, source, exc: Exception) -> None:
        """One line for the operator (a dongle unplugged, a file that cannot be read), the
        traceback at DEBUG; counted ``source.<id>.failures``, which makes the command exit 1."""
        log.error("source %s failed: %s: %s", source.id, type(exc).__name__, exc)
        log.debug("source %s failed", source.id, exc_info=exc)
        self.counters.incr(f"source.{source.id}.failures")

    def _pump(self, source) -> None:
        try:
            batches = getattr(source, "line_batches", None)
            if batches is not None:
                for batch in batches():
                    if batch:  # lists the source does not touch again (FileSource makes a new one each time)
                        self._queue.put(batch if type(batch) is list else list(batch))
                    if self._stop.is_set():
                        break
            else:
                for line in source.lines():
                    self._queue.put(line)
                    if self._stop.is_set():
                        break
        except Exception as exc:  # a source that dies is logged and counted, the others go on
            self._source_failed(source, exc)
        finally:
            self._queue.put(_END)
