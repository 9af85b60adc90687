"""Replay NMEA log files, plain or gzip, as fast as possible or at the pace they were received.

* gzip is recognised by its magic bytes (1f 8b), so ``feed.log`` that is really gzip and
  ``feed.gz`` that is really plain text both work.
* ``Line.offset`` is the line's number in its file (1-based), so replaying the same log gives the
  same document ids; ``Line.source`` is ``file:<file name>``.
* Lines are passed through untouched: a tag block (``\\s:..,c:..*hh\\``) or a leading time
  (``1700000000.123 !AIVDM..``, ``2026-11-22T05:00:00Z !AIVDM..``) is read by the NMEA parser.
* ``rate="realtime"`` sleeps between lines by the difference of their message times (time prefix,
  else tag-block ``c:``), measured from the first timed line so sleeps do not accumulate drift.
  Lines without a time go at once; a time going backwards restarts the clock at that line.
* ``progress=True`` draws a tqdm bar on stderr by (compressed) bytes read.
"""
from __future__ import annotations

import gzip
import io
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from ingest.counters import Counters
from ingest.lines import Line
from ingest.sources.framing import LineDecoder, split_datagram
from ingest.timeprefix import split_time_prefix

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
RATES = ("max", "realtime")
COUNT_EVERY = 1000
BATCH_LINES = 256   # lines per list handed to the pipeline by line_batches() at rate "max"


def open_log(path: str | os.PathLike) -> tuple[io.BufferedIOBase, io.BufferedIOBase]:
    """``(reader of the log's lines, the raw file)``; the raw file's position is the progress."""
    raw = open(path, "rb")
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    raw.seek(0)
    return raw, raw


def tag_block_time(text: str) -> float | None:
    """Unix seconds from the ``c:`` field of a leading NMEA 4.10 tag block, else None.

    Only what pacing needs: the NMEA parser validates the tag block properly. ``c:`` is seconds
    by the standard; some loggers write milliseconds, recognised by their size.
    """
    if not text.startswith("\\"):
        return None
    end = text.find("\\", 1)
    if end < 0:
        return None
    fields = text[1:end].split("*", 1)[0]
    for field in fields.split(","):
        if field.startswith("c:"):
            try:
                value = float(field[2:])
            except ValueError:
                return None
            return value / 1000.0 if value > 1e11 else value
    return None


def line_time(text: str) -> float | None:
    """The message time of a log line: its time prefix, else its tag block's ``c:``."""
    seconds, rest = split_time_prefix(text)
    if seconds is not None:
        return seconds
    return tag_block_time(rest)


class FileSource:
    """Yields the lines of one or more NMEA log files in order, then ends."""

    def __init__(self, paths: str | os.PathLike | Iterable[str | os.PathLike], rate: str = "max",
                 counters: Counters | None = None, progress: bool = False) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("FileSource needs at least one file")
        for path in self.paths:
            if not path.is_file():
                raise FileNotFoundError(f"NMEA log not found: {path}")
        if rate not in RATES:
            raise ValueError(f"rate must be one of {RATES}, got {rate!r}")
        self.rate = rate
        self.progress = progress
        self.counters = counters if counters is not None else Counters()
        names = [p.name for p in self.paths]
        self.id = "file:" + (names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}")
        self._closed = threading.Event()
        self._decoder = LineDecoder(self.counters, self.id)
        self._lines_read = 0
        self._bytes_read = 0
        self._started: float | None = None
        self._finished: float | None = None

    def _count(self, name: str, n: int = 1) -> None:
        self.counters.incr(f"source.{self.id}.{name}", n)

    def lines(self) -> Iterator[Line]:
        self._started = time.monotonic()
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=sum(p.stat().st_size for p in self.paths), unit="B", unit_scale=True,
                       file=sys.stderr, desc=self.id)
        pacer = _Pacer(self._closed) if self.rate == "realtime" else None
        try:
            for path in self.paths:
                yield from self._read_file(path, bar, pacer)
                if self._closed.is_set():
                    break
        finally:
            if bar is not None:
                bar.close()
            self._finished = time.monotonic()

    @property
    def reads_without_waiting(self) -> bool:
        """At rate "max" nothing waits: the pipeline may read this source in its processing thread."""
        return self.rate == "max"

    def line_batches(self) -> Iterator[list[Line]]:
        """``lines()`` in lists of up to ``BATCH_LINES``, which the pipeline takes in one hand-off
        each; at rate "realtime" one line per list (a paced line must not wait for the next)."""
        if self.rate != "max":
            for line in self.lines():
                yield [line]
            return
        batch: list[Line] = []
        for line in self.lines():
            batch.append(line)
            if len(batch) >= BATCH_LINES:
                yield batch
                batch = []
        if batch:
            yield batch

    def _read_file(self, path: Path, bar, pacer: "_Pacer | None") -> Iterator[Line]:
        source = f"file:{path.name}"
        reader, raw = open_log(path)
        position = 0
        number = 0
        # Counted locally and added to the shared counters every COUNT_EVERY lines: two locked
        # increments per line would cost more than reading the line.
        unflushed_lines = unflushed_bytes = 0
        try:
            with reader, raw:
                try:
                    for physical in reader:
                        if self._closed.is_set():
                            return
                        unflushed_bytes += len(physical)
                        stripped = physical.rstrip(b"\r\n")
                        if not stripped:
                            number += 1          # blank lines count, so offsets are editor line numbers
                            continue
                        # Files with bare-CR line ends come through as one long "line".
                        for raw_line in split_datagram(stripped) if b"\r" in stripped else (stripped,):
                            number += 1
                            text = self._decoder.decode(raw_line)
                            if text is None:
                                continue
                            if pacer is not None:
                                pacer.wait_for(line_time(text))
                                if self._closed.is_set():
                                    return
                            unflushed_lines += 1
                            yield Line(text, time.time(), source, number)
                        if unflushed_lines >= COUNT_EVERY:
                            self._add_counts(unflushed_lines, unflushed_bytes)
                            unflushed_lines = unflushed_bytes = 0
                            if bar is not None:
                                now = raw.tell()
                                bar.update(now - position)
                                position = now
                except (OSError, EOFError) as exc:
                    # A truncated .gz (a log still being written, a copy cut short): keep what was read.
                    log.error("%s: stopped reading after line %d: %s", path, number, exc)
                    self._count("read_errors")
            if bar is not None:
                bar.update(path.stat().st_size - position)
        finally:
            self._add_counts(unflushed_lines, unflushed_bytes)

    def _add_counts(self, lines: int, nbytes: int) -> None:
        self._lines_read += lines
        self._bytes_read += nbytes
        self._count("lines", lines)
        self._count("bytes", nbytes)

    def close(self) -> None:
        """Stop early; ``lines()`` ends at the next line (or at once if it is pacing)."""
        self._closed.set()

    def summary(self) -> dict:
        """Lines and bytes (uncompressed) read so far and seconds spent."""
        end = self._finished if self._finished is not None else time.monotonic()
        elapsed = (end - self._started) if self._started is not None else 0.0
        return {"source": self.id, "files": len(self.paths), "lines": self._lines_read,
                "bytes": self._bytes_read, "elapsed": round(elapsed, 3),
                "lines_per_second": round(self._lines_read / elapsed, 1) if elapsed > 0 else None}

    def __repr__(self) -> str:
        return f"FileSource({[str(p) for p in self.paths]!r}, rate={self.rate!r})"


class _Pacer:
    """Sleeps so that lines come out spaced like their message times."""

    def __init__(self, closed: threading.Event) -> None:
        self._closed = closed
        self._first_time: float | None = None
        self._first_wall = 0.0
        self._last_time: float | None = None

    def wait_for(self, message_time: float | None) -> None:
        if message_time is None:
            return
        if self._first_time is None or message_time < self._last_time:
            self._first_time, self._first_wall = message_time, time.monotonic()
        self._last_time = message_time
        delay = self._first_wall + (message_time - self._first_time) - time.monotonic()
        if delay > 0:
            self._closed.wait(delay)
