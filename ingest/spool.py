"""Disk spool: documents Elasticsearch could not take yet, kept on disk in arrival order.

When Elasticsearch is down or slow, the sink appends documents here instead of dropping them, and
replays them from the head once it is back; a spool left by a crashed process is replayed on the
next start. The layout is deliberately simple so an operator can inspect it with ``head``:

- ``seg-<n>.ndjson``: append-only segment files, one JSON record per line, fsync'ed per appended
  batch. A new segment starts when the current one passes ``segment_bytes``, and every process
  starts a new one (it never appends to a file a crashed process may have left half-written).
- ``ack.json``: ``{"segment": n, "offset": bytes}``, the position up to which records have been
  delivered, replaced atomically (write, fsync, rename) after each delivered batch. Fully
  delivered segments are deleted.

Delivery is at-least-once: a crash between delivering a batch and writing ``ack.json`` replays
that batch, which is harmless because document ids are derived from content. A partial line at
the end of a segment (a write torn by a crash) is skipped and counted as ``spool_torn``.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import orjson

from aiswatch.ingest.counters import Counters

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^seg-(\d{9})\.ndjson$")


class SpoolError(OSError):
    """The spool could not be written (disk full, permissions): nothing was lost, but it must be fixed."""


class DiskSpool:
    """An append-only on-disk FIFO of JSON records with a persistent read position.

    ``append`` may be called from several threads; ``read``/``ack`` from one reader thread.
    ``depth`` is the number of records not yet acknowledged (also the ``spool_depth`` gauge).
    """

    def __init__(self, directory: str | os.PathLike, counters: Counters | None = None,
                 segment_bytes: int = 64 * 1024 * 1024):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        # two processes appending and acknowledging in one spool would corrupt each other's position
        self._lock_file = open(self.dir / "lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise SpoolError(f"spool directory {self.dir} is in use by another aiswatch process; "
                             "give each process its own --spool-dir") from None
        self.counters = counters or Counters()
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._ack_path = self.dir / "ack.json"
        self._ack_seg, self._ack_off = self._read_ack()
        self._drop_delivered_segments()
        self.depth = self._count_pending()
        existing = self._segments()
        # never append to a segment an earlier (maybe crashed) process wrote
        self._tail_no = max(existing[-1] if existing else 0, self._ack_seg) + 1
        self._tail_file = None
        self._tail_size = 0
        self.counters.gauge("spool_depth", self.depth)
        if self.depth:
            log.warning("spool %s holds %d undelivered documents from a previous run; replaying them first",
                        self.dir, self.depth)

    # -- layout -------------------------------------------------------------------------------------
    def _segments(self) -> list[int]:
        nums = []
        for p in self.dir.iterdir():
            m = _SEGMENT.match(p.name)
            if m:
                nums.append(int(m.group(1)))
        return sorted(nums)

    def _path(self, n: int) -> Path:
        return self.dir / f"seg-{n:09d}.ndjson"

    def _read_ack(self) -> tuple[int, int]:
        try:
            data = orjson.loads(self._ack_path.read_bytes())
            return int(data["segment"]), int(data["offset"])
        except FileNotFoundError:
            return 0, 0
        except (ValueError, KeyError, TypeError) as exc:
            # An unreadable ack file must not lose data: replay everything (duplicates are harmless).
            log.error("spool ack file %s is unreadable (%s); replaying the whole spool", self._ack_path, exc)
            return 0, 0

    def _drop_delivered_segments(self) -> None:
        for n in self._segments():
            if n < self._ack_seg:
                self._path(n).unlink(missing_ok=True)

    def _count_pending(self) -> int:
        total = 0
        for n in self._segments():
            with open(self._path(n), "rb") as f:
                if n == self._ack_seg:
                    f.seek(self._ack_off)
                data = f.read()
            total += data.count(b"\n")
        return total

    # -- writing ------------------------------------------------------------------------------------
    def append(self, records: list[Any]) -> None:
        """Append JSON-serialisable records durably (one write and one fsync for the whole list).

        Raises SpoolError (after logging loudly) if the disk refuses; the caller keeps the records.
        """
        if not records:
            return
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        with self._lock:
            try:
                if self._tail_file is None or self._tail_size >= self.segment_bytes:
                    self._roll()
                self._tail_file.write(data)
                self._tail_file.flush()
                os.fsync(self._tail_file.fileno())
            except OSError as exc:
                self.counters.incr("spool_errors")
                log.error("SPOOL WRITE FAILED in %s: %s -- documents are held in memory and the pipeline "
                          "will block when the queue is full; free disk space", self.dir, exc)
                # the partial write (if any) is a torn line the reader skips; start a fresh segment
                self._close_tail()
                raise SpoolError(str(exc)) from exc
            self._tail_size += len(data)
            self.depth += len(records)
            self.counters.incr("spooled_total", len(records))
            self.counters.gauge("spool_depth", self.depth)

    def _roll(self) -> None:
        self._close_tail()
        self._tail_no += 1 if self._path(self._tail_no).exists() else 0
        self._tail_file = open(self._path(self._tail_no), "ab")
        self._tail_size = self._tail_file.tell()
        # make the new file's directory entry durable too
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _close_tail(self) -> None:
        if self._tail_file is not None:
            try:
                self._tail_file.close()
            except OSError:
                pass
            self._tail_file = None

    # -- reading ------------------------------------------------------------------------------------
    def read(self, max_records: int, max_bytes: int = 8_000_000) -> tuple[list[Any], tuple[int, int, int]]:
        """Up to ``max_records`` records (about ``max_bytes``) from the head, without consuming them.

        Returns (records, position); pass the position to ``ack`` once the records are delivered.
        """
        with self._lock:
            if self._tail_file is not None:
                self._tail_file.flush()
            segments = [n for n in self._segments() if n >= self._ack_seg]
        seg, off = self._ack_seg, self._ack_off
        records: list[Any] = []
        used = 0
        lines = 0  # complete lines consumed, including unreadable ones (they count in depth)
        for n in segments:
            if n != seg:
                seg, off = n, 0
            with open(self._path(n), "rb") as f:
                f.seek(off)
                while len(records) < max_records and used < max_bytes:
                    line = f.readline()
                    if not line:
                        break
                    if not line.endswith(b"\n"):
                        self.counters.incr("spool_torn")
                        log.error("spool segment %s ends with a torn record (%d bytes); skipped",
                                  self._path(n), len(line))
                        off += len(line)
                        break
                    off += len(line)
                    used += len(line)
                    lines += 1
                    try:
                        records.append(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        self.counters.incr("spool_torn")
                        log.error("spool segment %s: unreadable record skipped", self._path(n))
            if len(records) >= max_records or used >= max_bytes:
                break
        return records, (seg, off, lines)

    def ack(self, position: tuple[int, int, int]) -> None:
        """Mark everything up to ``position`` (from ``read``) as delivered."""
        seg, off, count = position
        tmp = self._ack_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(orjson.dumps({"segment": seg, "offset": off}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._ack_path)
        with self._lock:
            self._ack_seg, self._ack_off = seg, off
            self.depth = max(0, self.depth - count)
            self.counters.gauge("spool_depth", self.depth)
            for n in self._segments():
                if n < seg:
                    self._path(n).unlink(missing_ok=True)
            if self.depth == 0 and self._tail_file is not None and self._tail_no == seg \
                    and self._tail_size >= self.segment_bytes:
                self._close_tail()

    def close(self) -> None:
        """Close the tail segment and release the directory (what is not acknowledged stays)."""
        with self._lock:
            self._close_tail()
            if not self._lock_file.closed:
                self._lock_file.close()  # releases the flock
