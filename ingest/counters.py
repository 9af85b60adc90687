"""Counters for every pipeline stage, shared by all threads, readable at any time.

Names a station operator sees (log line, ``aiswatch status``, metrics index):
lines_in, sentences_in, rejected.<reason> (bad_checksum, not_nmea, bad_field, ...), fragments_pending,
fragments_expired, fragments_dropped, messages_decoded, decode_errors, documents_indexed,
documents_stale, bulk_errors, dead_letters, spool_depth, last_message_time.<source>.

The accounting identity (every line ends decoded or counted as rejected, by reason)::

    lines_in     == sentences_in + rejections by the sources (not_utf8, line_too_long, aisstream_bad_*)
    sentences_in == sentences_decoded + rejections by parsing, reassembly and decoding
    so lines_in  == sentences_decoded + rejected

``lines_in`` is every line a source received: those it passed on to the NMEA parser (counted as
``sentences_in`` by ``nmea.parse_line``) and those it turned away itself (``reject_line``).
"""
from __future__ import annotations

import threading
from collections import defaultdict
from typing import Union


class Counters:
    """Thread-safe named counters (monotonic) and gauges (set to a value)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = defaultdict(int)
        self._gauges: dict[str, float] = {}

    def incr(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def add(self, *increments: tuple[str, int]) -> None:
        """Several ``(name, n)`` increments under one lock acquisition."""
        with self._lock:
            counts = self._counts
            for name, n in increments:
                counts[name] += n

    def reject(self, reason: str, n: int = 1) -> None:
        """Count a rejected line or message under ``rejected.<reason>`` and the ``rejected`` total."""
        with self._lock:
            self._counts["rejected." + reason] += n
            self._counts["rejected"] += n

    def reject_line(self, reason: str, n: int = 1) -> None:
        """Count a line a source received but could not pass on (not UTF-8, too long, ...): it is
        in ``lines_in`` but never reaches ``sentences_in``, so the identity above still holds."""
        with self._lock:
            self._counts["lines_in"] += n
            self._counts["rejected." + reason] += n
            self._counts["rejected"] += n

    def gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def get(self, name: str) -> float:
        with self._lock:
            if name in self._gauges:
                return self._gauges[name]
            return self._counts.get(name, 0)

    def state(self) -> list[dict]:
        """``[counts, gauges]``: what ``mirror`` takes (for counters kept in another process)."""
        with self._lock:
            return [dict(self._counts), dict(self._gauges)]

    def mirror(self, counts: dict[str, int], gauges: dict[str, float]) -> None:
        """Take these values as they are: the counters another process keeps (ingest.worker's
        decode process) shown here, where the log line, the status file and the metrics read."""
        with self._lock:
            self._counts.update(counts)
            self._gauges.update(gauges)

    def snapshot(self) -> dict[str, float]:
        """A copy of every counter and gauge, sorted by name."""
        with self._lock:
            merged: dict[str, float] = dict(self._counts)
            merged.update(self._gauges)
        return dict(sorted(merged.items()))


class CountBatch:
    """Counts of one thread collected locally and added to ``shared`` at once by ``flush()``.

    The pipeline counts three or four things per line; a lock acquisition each cost more than the
    assembler's work. Fed a list of lines, it counts here and flushes once per list (a few
    milliseconds), so the shared counters lag by at most that. Gauges go straight through. Not
    thread-safe: one per processing thread.
    """

    def __init__(self, shared: Counters) -> None:
        self.shared = shared
        self._counts: dict[str, int] = defaultdict(int)

    def incr(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def add(self, *increments: tuple[str, int]) -> None:
        counts = self._counts
        for name, n in increments:
            counts[name] += n

    def reject(self, reason: str, n: int = 1) -> None:
        counts = self._counts
        counts["rejected." + reason] += n
        counts["rejected"] += n

    def reject_line(self, reason: str, n: int = 1) -> None:
        counts = self._counts
        counts["lines_in"] += n
        counts["rejected." + reason] += n
        counts["rejected"] += n

    def gauge(self, name: str, value: float) -> None:
        self.shared.gauge(name, value)

    def get(self, name: str) -> float:
        self.flush()
        return self.shared.get(name)

    def flush(self) -> None:
        """Add what was counted since the last flush to the shared counters (one lock)."""
        if self._counts:
            counts, self._counts = self._counts, defaultdict(int)
            self.shared.add(*counts.items())


# What the stages count into: the shared counters, or a thread's batch of them.
Counts = Union[Counters, CountBatch]
