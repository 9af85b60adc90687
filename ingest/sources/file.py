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
* No line is held whole in memory beyond ``MAX_LINE_BYTES`` (64 KiB, as for the stream sources):
  a longer one (a binary file, a log with a broken line end) is skipped to its line end and
  counted once as ``rejected.line_too_long``; the next line is read as usual.
* A gzip file that ends early (a log still being written) or whose data is corrupt stops that
  file: one ERROR line says where, ``source.<id>.read_errors`` counts it, the lines before the
  damage are kept and the next file is read.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Literal

from pydantic import AliasChoices, Field, field_validator

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.sources import SourceSettings, SourceType
from aiswatch.ingest.sources.framing import MAX_LINE_BYTES, LineDecoder, split_datagram
from aiswatch.ingest.sources.logfiles import READ_ERRORS, damage, long_read, open_log
from aiswatch.ingest.timeprefix import split_time_prefix

log = logging.getLogger(__name__)

RATES = ("max", "realtime")
COUNT_EVERY = 1000
BATCH_LINES = 256   # lines per list handed to the pipeline by line_batches() at rate "max"


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
            # any readable file that is not a directory: a log, /dev/null, a pipe (<(zcat ...))
            if not path.exists():
                raise FileNotFoundError(f"NMEA log not found: {path}")
            if path.is_dir():
                raise IsADirectoryError(f"NMEA log {path} is a directory")
        if rate not in RATES:
            raise ValueError(f"rate must be one of {RATES}, got {rate!r}")
        self.rate = rate
        self.progress = progress
        self.counters = counters if counters is not None else Counters()
        names = [p.name for p in self.paths]
        self.id = "file:" + (names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}")
        self._closed = threading.Event()
        self._decoder = LineDecoder(self.counters, self.id)
        self._warned_long = False
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
                    # readline with a limit: a line of any length costs at most limit + 1 bytes
                    for chunk in iter(functools.partial(reader.readline, MAX_LINE_BYTES + 1), b""):
                        # An LF-ended line, or the file's last: itself; else what long_read makes of it.
                        pieces = ((chunk,) if chunk[-1] == 10 or len(chunk) <= MAX_LINE_BYTES
                                  else long_read(reader, chunk, MAX_LINE_BYTES))
                        for physical in pieces:
                            if self._closed.is_set():
                                return
                            if type(physical) is int:    # an over-long line, skipped
                                number += 1
                                unflushed_bytes += physical
                                self._reject_long_line(path, number, physical)
                                continue
                            unflushed_bytes += len(physical)
                            stripped = physical.rstrip(b"\r\n")
                            if not stripped:
                                number += 1      # blank lines count, so offsets are editor line numbers
                                continue
                            # Bare-CR line ends: several lines in one piece.
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
                                if bar is not None and raw.seekable():  # a pipe has no position
                                    now = raw.tell()
                                    bar.update(now - position)
                                    position = now
                except READ_ERRORS as exc:
                    # A truncated or damaged .gz (a log still being written, a copy cut short, a
                    # bad disk): keep what was read, say where it stopped, go on with the next file.
                    log.error("%s: %s after line %d; the lines before it are kept (%s: %s)",
                              path, damage(exc), number, type(exc).__name__, exc)
                    self._count("read_errors")
            if bar is not None:
                bar.update(path.stat().st_size - position)
        finally:
            self._add_counts(unflushed_lines, unflushed_bytes)

    def _reject_long_line(self, path: Path, number: int, nbytes: int) -> None:
        self.counters.reject_line("line_too_long")
        # The first one of a source at WARNING (a binary file has thousands), the rest at DEBUG.
        level = logging.DEBUG if self._warned_long else logging.WARNING
        self._warned_long = True
        log.log(level, "%s: line %d has %d bytes without a line end (more than %d): skipped, counted as "
                "rejected.line_too_long (not an NMEA log?)", path, number, nbytes, MAX_LINE_BYTES)

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


class FileSettings(SourceSettings):
    paths: list[str] = Field(min_length=1, validation_alias=AliasChoices("paths", "path"),
                             description="NMEA log files, plain or gzip.", json_schema_extra={"cli": "argument"})
    rate: Literal["max", "realtime"] = Field("max", description="Replay as fast as possible, or at the pace "
                                             "of the message times.")
    progress: bool = Field(False, description="A progress bar on standard error (on the command line: by "
                           "default when it is a terminal).")

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, value):
        return [value] if isinstance(value, str) else value


SOURCE = SourceType("file", FileSettings, lambda s, counters: FileSource(s.paths, rate=s.rate, counters=counters,
                                                                 progress=s.progress), finite=True)
