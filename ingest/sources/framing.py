"""Bytes to lines: line splitting for byte streams and datagrams, and UTF-8 decoding with counted rejects.

Receivers end lines with CRLF (rtl_ais, AIS-catcher), LF (many loggers) or a bare CR (some serial
bridges), and a TCP read can end anywhere, even between the CR and the LF of one line ending.
Empty lines (the second half of a split CRLF, blank keep-alives) carry nothing and are skipped.
A line that is not UTF-8 is rejected as ``not_utf8`` and logged, never dropped silently; a line
longer than ``MAX_LINE_BYTES`` as ``line_too_long``, once, however long it goes on. Both are
source-level rejections (``Counters.reject_line``): they count in ``lines_in`` but never reach the
NMEA parser's ``sentences_in``.
"""
from __future__ import annotations

import logging
import re

from aiswatch.ingest.counters import Counters

log = logging.getLogger(__name__)

_EOL = re.compile(rb"\r\n|\r|\n")

# An NMEA sentence is at most 82 characters; with a tag block a few hundred. A "line" of 64 KiB
# without an end is a feed speaking something else (binary, HTTP): reject it instead of growing.
MAX_LINE_BYTES = 65536


def split_datagram(data: bytes) -> list[bytes]:
    """Every non-empty line of one datagram; the last line need not be terminated."""
    return [part for part in _EOL.split(data) if part]


class StreamSplitter:
    """Reassembles lines from arbitrary chunks of a byte stream."""

    def __init__(self, counters: Counters, source_id: str) -> None:
        self._pending = b""
        self._counters = counters
        self._source_id = source_id
        self._skipping = False     # inside a line already rejected as too long: drop up to its end

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines completed by ``chunk``; an unterminated tail waits for the next chunk."""
        if self._skipping:
            end = _EOL.search(chunk)
            if end is None:
                return []
            # What follows the end of the over-long line is a new line; its rest was not one.
            chunk = chunk[end.end():]
            self._skipping = False
        data = self._pending + chunk if self._pending else chunk
        parts = _EOL.split(data)
        # A chunk ending in "\r" may hold the first half of a CRLF: the CR ends the line at once
        # (bare-CR feeds work) and the LF that opens the next chunk makes only an empty line.
        tail = parts.pop()
        if len(tail) > MAX_LINE_BYTES:
            self._counters.reject_line("line_too_long")
            log.warning("%s: dropped a line of more than %d bytes without a line end (not an NMEA feed?)",
                        self._source_id, MAX_LINE_BYTES)
            tail = b""
            self._skipping = True
        self._pending = tail
        return [part for part in parts if part]

    def flush(self) -> list[bytes]:
        """The unterminated tail at end of stream (a last line sent without its line end)."""
        tail, self._pending = self._pending, b""
        self._skipping = False
        return [tail] if tail else []


class LineDecoder:
    """Decodes raw lines to text, counting lines and rejecting what is not UTF-8."""

    def __init__(self, counters: Counters, source_id: str) -> None:
        self._counters = counters
        self._source_id = source_id
        self._warned = False

    def decode(self, raw: bytes) -> str | None:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._counters.reject_line("not_utf8")
            # The first one at WARNING (a misconfigured feed), the rest at DEBUG (a noisy radio).
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "%s: line is not UTF-8 (%s): %r", self._source_id, exc.reason, raw[:100])
            return None
