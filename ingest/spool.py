"""Disk spool: documents Elasticsearch could not take yet, kept on disk in arrival order.

When Elasticsearch is down or slow, the sink appends documents here instead of dropping them, and
replays them from the head once it is back; a spool left by a crashed process is replayed on the
next start. The layout is deliberately simple so an operator can inspect it with ``head``:

- ``seg-<n>.ndjson``: append-only segment files, one JSON record per line, fsync'ed per appended
  batch. A new segment starts when the current one passes ``segment_bytes``, and every process
  starts a new one (it never appends to a file a crashed process may have left half-written).
- ``ack.json``: ``{"segment": n, "offset": bytes}``, the position up to which records have been
  delivered, replaced atomically (write, fsync, rename) after each delivered batch. Fully
  delivered segments are deleted; once everything is delivered, all of them.
- ``target.json``: the cluster and namespace the documents are meant for, and ``lock``, held by
  the process using the spool (``spool_owner``): a spool for another target is refused
  (``SpoolForeign``), one another process holds too (``SpoolBusy``).

Bounded: ``max_bytes`` caps the segment files' total size. An append that would pass it, or that
the disk refuses for space (ENOSPC, EDQUOT), raises ``SpoolFull`` and writes nothing (a partial
write is cut back), so the caller keeps the records. Delivery at-least-once: a crash between
delivering a batch and writing ``ack.json`` replays that batch, harmless with content-derived
ids. A partial line at the end of a segment (a write torn by a crash) is skipped, ``spool_torn``.
"""
from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.spool_owner import (SEGMENT, TARGET_FILE, SpoolBusy, SpoolError, SpoolForeign, SpoolTarget,
                                         foreign_message, lock_directory, read_target, spool_dir_for, write_target)

__all__ = ["DiskSpool", "SpoolBusy", "SpoolError", "SpoolForeign", "SpoolFull", "SpoolTarget", "TARGET_FILE",
           "spool_dir_for"]

log = logging.getLogger(__name__)

MIN_SEGMENT_BYTES = 64 * 1024
_SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)


class SpoolFull(SpoolError):
    """The spool reached ``max_bytes``, or the disk has no space for it: the records were not written."""


class DiskSpool:
    """An append-only on-disk FIFO of JSON records with a persistent read position.

    ``append`` may be called from several threads; ``read``/``ack`` from one reader thread.
    ``depth`` is the number of records not yet acknowledged (also the ``spool_depth`` gauge),
    ``bytes`` the size of the segment files (``spool_bytes``).
    target: where the documents are meant to go (None: not recorded, not checked).
    """

    def __init__(self, directory: str | os.PathLike, counters: Counters | None = None,
                 segment_bytes: int = 64 * 1024 * 1024, max_bytes: int | None = None,
                 target: SpoolTarget | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = lock_directory(self.dir)
        try:
            self._open(counters, segment_bytes, max_bytes, target)
        except BaseException:
            self._lock_file.close()
            raise

    def _open(self, counters: Counters | None, segment_bytes: int, max_bytes: int | None,
              target: SpoolTarget | None) -> None:
        self.counters = counters or Counters()
        self.max_bytes = max_bytes
        if max_bytes is not None:  # segments small enough that delivering frees space as it goes
            segment_bytes = min(segment_bytes, max(MIN_SEGMENT_BYTES, max_bytes // 8))
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._closed = False
        self._full = False
        self._ack_path = self.dir / "ack.json"
        self._ack_seg, self._ack_off = self._read_ack()
        self._drop_delivered_segments()
        self.depth = self._count_pending()
        self.inherited = self.depth  # records a previous process left
        existing = self._segments()
        self.bytes = sum(self._path(n).stat().st_size for n in existing)
        # never append to a segment an earlier (maybe crashed) process wrote
        self._tail_no = max(existing[-1] if existing else 0, self._ack_seg)
        self._tail_file = None
        self._tail_size = 0
        self.recorded: SpoolTarget | None = read_target(self.dir)
        self.target = target
        if target is not None:
            self._claim(target)
        self.counters.gauge("spool_depth", self.depth)
        self.counters.gauge("spool_bytes", self.bytes)
        if self.depth:
            log.warning("spool %s holds %d undelivered documents from a previous run; replaying them first",
                        self.dir, self.depth)

    # -- whose documents ----------------------------------------------------------------------------
    def _claim(self, target: SpoolTarget) -> None:
        recorded = self.recorded
        if self.depth and recorded is not None and not target.accepts(recorded):
            raise SpoolForeign(foreign_message(self.dir, self.depth, recorded, target))
        if self.depth and recorded is None:
            log.warning("spool %s holds %d documents without a record of their cluster (an older aiswatch "
                        "wrote them); delivering them to %s", self.dir, self.depth, target.describe())
        if self.depth and recorded is not None and recorded.cluster_uuid and not target.cluster_uuid:
            # the cluster does not answer yet: keep the recorded UUID until it can be compared
            target = SpoolTarget(target.url, target.namespace, recorded.cluster_uuid)
        self._write_target(target)

    def confirm_cluster(self, cluster_uuid: str | None) -> None:
        """The cluster answered with ``cluster_uuid``: record it, or raise SpoolForeign if the
        documents a previous process left were meant for another cluster."""
        if not cluster_uuid or self.target is None:
            return
        recorded = self.recorded
        if self.inherited and recorded is not None and recorded.cluster_uuid \
                and recorded.cluster_uuid != cluster_uuid:
            actual = SpoolTarget(self.target.url, self.target.namespace, cluster_uuid)
            raise SpoolForeign(foreign_message(self.dir, self.depth, recorded, actual))
        if self.target.cluster_uuid != cluster_uuid:
            self._write_target(SpoolTarget(self.target.url, self.target.namespace, cluster_uuid))

    def _write_target(self, target: SpoolTarget) -> None:
        self.target = self.recorded = target
        write_target(self.dir, target)

    # -- layout -------------------------------------------------------------------------------------
    def _segments(self) -> list[int]:
        nums = []
        for p in self.dir.iterdir():
            m = SEGMENT.match(p.name)
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
        """Append JSON-serialisable records durably (one write and one fsync for the whole list)."""
        self.append_lines([orjson.dumps(r) + b"\n" for r in records])

    def append_lines(self, lines: list[bytes]) -> None:
        """Append serialised records, each one newline-terminated JSON line, durably (one write and
        one fsync). Raises SpoolFull (nothing written) past ``max_bytes`` or when the disk is full,
        SpoolError for other disk errors; the caller keeps the records."""
        if not lines:
            return
        data = b"".join(lines)
        with self._lock:
            if self._closed:
                raise SpoolError(f"spool {self.dir} is closed")
            if self.max_bytes is not None and self.bytes + len(data) > self.max_bytes:
                self._now_full(f"{self.bytes + len(data)} bytes would pass max_bytes {self.max_bytes}")
                raise SpoolFull(f"spool {self.dir} is full ({self.bytes} of {self.max_bytes} bytes)")
            try:
                if self._tail_file is None or self._tail_size >= self.segment_bytes:
                    self._roll()
                view = memoryview(data)
                written = 0
                while written < len(data):  # unbuffered: nothing is left behind in a buffer on failure
                    written += self._tail_file.write(view[written:])
                os.fsync(self._tail_file.fileno())
            except OSError as exc:
                self._cut_back()
                if exc.errno in _SPACE_ERRORS:
                    self._now_full(f"{exc.strerror}")
                    raise SpoolFull(f"spool {self.dir}: {exc.strerror}") from exc
                self.counters.incr("spool_errors")
                log.error("SPOOL WRITE FAILED in %s: %s -- the documents stay in memory; fix the disk", self.dir, exc)
                raise SpoolError(str(exc)) from exc
            self._tail_size += len(data)
            self.bytes += len(data)
            self.depth += len(lines)
            if self._full:
                self._full = False
                self.counters.gauge("spool_full", 0)
                log.warning("spool %s takes documents again (%d bytes used)", self.dir, self.bytes)
            self.counters.incr("spooled_total", len(lines))
            self.counters.gauge("spool_depth", self.depth)
            self.counters.gauge("spool_bytes", self.bytes)

    def _now_full(self, why: str) -> None:
        if not self._full:
            self._full = True
            self.counters.incr("spool_full_episodes")
            self.counters.gauge("spool_full", 1)
            log.error("spool %s is full (%s): sources that can wait (files, TCP) are paused and what UDP "
                      "receives meanwhile is dropped and counted, until Elasticsearch takes documents again",
                      self.dir, why)

    def _cut_back(self) -> None:
        """After a failed write: cut the tail back to its last whole record (no torn line, no new segment)."""
        if self._tail_file is None:
            return
        try:
            os.ftruncate(self._tail_file.fileno(), self._tail_size)
            self._tail_file.seek(self._tail_size)
        except (OSError, ValueError):
            # cannot cut: what was written is a torn line the reader skips; start afresh next time
            self._close_tail()
            self._refresh_bytes()

    def _refresh_bytes(self) -> None:
        self.bytes = sum(self._path(n).stat().st_size for n in self._segments() if self._path(n).exists())

    def _roll(self) -> None:
        self._close_tail()
        self._tail_no += 1
        while self._path(self._tail_no).exists():
            self._tail_no += 1
        self._tail_file = open(self._path(self._tail_no), "ab", buffering=0)
        self._tail_size = 0
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

    @property
    def full(self) -> bool:
        """The last append was refused for space (until one succeeds)."""
        return self._full

    # -- reading ------------------------------------------------------------------------------------
    def read(self, max_records: int, max_bytes: int = 8_000_000) -> tuple[list[Any], tuple[int, int, int]]:
        """Up to ``max_records`` records (about ``max_bytes``) from the head, without consuming them.

        Returns (records, position); pass the position to ``ack`` once the records are delivered.
        """
        with self._lock:
            segments = [n for n in self._segments() if n >= self._ack_seg]
            # of the segment being appended to, only what an append completed: a write in progress
            # (or one that fails and is cut back) must not be read
            tail, committed = (self._tail_no, self._tail_size) if self._tail_file is not None else (-1, 0)
        seg, off = self._ack_seg, self._ack_off
        records: list[Any] = []
        used = 0
        lines = 0  # complete lines consumed, including unreadable ones (they count in depth)
        for n in segments:
            if n != seg:
                seg, off = n, 0
            try:
                f = open(self._path(n), "rb")
            except FileNotFoundError:
                continue
            with f:
                f.seek(off)
                while len(records) < max_records and used < max_bytes:
                    line = f.readline()
                    if not line or (n == tail and off + len(line) > committed):
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
        """Mark everything up to ``position`` (from ``read``) as delivered. Segments delivered whole
        are deleted first, so a full disk gets room for the position itself."""
        seg, off, count = position
        with self._lock:
            if self._closed:
                return
            depth = max(0, self.depth - count)
            for n in self._segments():
                if n < seg or (depth == 0 and n == seg):
                    self._delete_segment(n)
            self._write_ack(seg, off)
            self._ack_seg, self._ack_off = seg, off
            self.depth = depth
            if depth == 0 and self._full:  # emptied: full no more
                self._full = False
                self.counters.gauge("spool_full", 0)
            self.inherited = max(0, self.inherited - count)
            self.bytes = max(0, self.bytes)
            self.counters.gauge("spool_depth", self.depth)
            self.counters.gauge("spool_bytes", self.bytes)

    def _delete_segment(self, n: int) -> None:
        if n == self._tail_no:
            self._close_tail()  # everything delivered: its space back, a new segment next time
        try:
            size = self._path(n).stat().st_size
            self._path(n).unlink()
            self.bytes -= size
        except FileNotFoundError:
            pass

    def _write_ack(self, seg: int, off: int) -> None:
        """``ack.json`` replaced atomically; on a full disk, rewritten in place (a torn one is read
        as "replay everything": duplicates, never a loss)."""
        data = orjson.dumps({"segment": seg, "offset": off})
        tmp = self._ack_path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._ack_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno not in _SPACE_ERRORS or not self._ack_path.exists():
                raise SpoolError(f"spool {self.dir}: cannot record the delivered position: {exc}") from exc
            with open(self._ack_path, "r+b") as f:
                f.write(data.ljust(64))
                f.truncate()
                f.flush()
                os.fsync(f.fileno())

    def close(self) -> None:
        """Close the tail segment and release the directory (what is not acknowledged stays)."""
        with self._lock:
            self._closed = True
            self._close_tail()
            if not self._lock_file.closed:
                self._lock_file.close()  # releases the flock


