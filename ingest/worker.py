"""The pipeline's stages in a second process, for a replay that reads without waiting.

A log file replayed at full speed is CPU-bound Python on both sides of the sink, and threads of
one process take turns (the GIL). ``DecodeProcess`` forks a child that runs the sources and the
stages (``ingest.pipeline.Pipeline``) and sends the documents back already serialised, in batches,
over a pipe; this process turns them into bulk requests, parsing only the few it needs for the
ships-seen merge. The documents, their ids and the counts are the same as in one process.

Wire format, child to parent, each a ``send_bytes`` message:
- a batch: the meta ``{"ids", "ts", "mmsi", "source", "kinds": [one per document], "counters":
  [counts, gauges]}`` (orjson), then the bodies: each document's JSON without its meta keys,
  newline-terminated, in the same order. This process parses a body only when it needs the
  document (the ships-seen merge takes a few per vessel and batch: ``ships_seen.needed_for_merge``);
- the end: ``{"end": true, "counters": [...], "failed": null | "reason"}``.
The child's counters (``lines_in``, ``sentences_in``, ``rejected.*``, ``messages_decoded``,
``fragments_*``, ``source.*``) are mirrored into this process's with every message, so the log
line, ``aiswatch status`` and the metrics index see them as in one process.

Forked, not spawned: the child needs the sources as the caller builds them (``make_sources``, a
closure) and starts in milliseconds. ``start_decode_process`` forks only while this process runs
no other thread (``run_sources`` asks before it starts any, or opens any connection), so no lock
or socket is copied in the middle of its use; otherwise it returns None and the caller runs the
stages itself.

One CPU for the child: where this process may run on two CPUs or more, the child binds itself to
the last of them (``sched_setaffinity``; this process stays free to run anywhere), so it keeps its
caches warm (docs/benchmarks.md measures it). ``pin_cpu=False`` leaves it free.

Stopping: SIGINT/SIGTERM in the child stop its sources; what was read is still decoded and sent,
then the end message. A child that dies without sending the end (killed, out of memory) is a
failed source: logged and counted ``source.<decode process>.failures``. A child whose parent dies
(``kill -9``) ends too: the kernel sends it SIGKILL (``PR_SET_PDEATHSIG``, Linux), and elsewhere
its next send fails, since it keeps no copy of the parent's end of the pipe.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
from typing import Callable

import orjson

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.pipeline import GC_THRESHOLDS, Pipeline
from aiswatch.ingest.ships_seen import document_kinds

log = logging.getLogger(__name__)

BATCH_DOCUMENTS = 512   # documents per message: ~250 kB, a few milliseconds of work on each side
_NDJSON = orjson.OPT_APPEND_NEWLINE
SOURCE_ID = "decode-process"


class _PipeSink:
    """The child's sink: documents serialised and sent to the parent in batches."""

    def __init__(self, conn, counters: Counters, batch: int) -> None:
        self._conn = conn
        self._counters = counters
        self._batch = batch
        self._new_batch()

    def _new_batch(self) -> None:
        self._ids: list[str] = []
        self._ts: list[int] = []
        self._mmsi: list[str | None] = []
        self._source: list[str | None] = []
        self._kinds: list[int] = []
        self._bodies: list[bytes] = []

    def submit(self, doc: dict) -> None:
        self._ids.append(doc.pop("_id"))
        self._ts.append(doc.pop("_ts"))
        self._mmsi.append(doc.get("mmsi"))
        self._source.append(doc.get("source"))
        self._kinds.append(document_kinds(doc))
        self._bodies.append(orjson.dumps(doc, option=_NDJSON))
        if len(self._bodies) >= self._batch:
            self.flush()

    def flush(self) -> None:
        if not self._bodies:
            return
        meta = {"ids": self._ids, "ts": self._ts, "mmsi": self._mmsi, "source": self._source,
                "kinds": self._kinds, "counters": self._counters.state()}
        self._conn.send_bytes(orjson.dumps(meta))
        self._conn.send_bytes(b"".join(self._bodies))
        self._new_batch()


def _pin_to_one_cpu() -> int | None:
    """Bind this process to the last CPU it may use, if it may use two or more; that CPU, or None."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return None
        os.sched_setaffinity(0, {cpus[-1]})
        return cpus[-1]
    except (AttributeError, OSError):  # no affinity on this platform, or refused: run unbound
        return None


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux); if the parent is gone
    already (it died between the fork and now), exit at once."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the pipe still tells us, at the next send
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _child(make_sources: Callable[[Counters], list], conn, parent_conn, parent_pid: int, timeout_seconds: float,
           max_pending: int, batch: int, pin_cpu: bool) -> None:
    _die_with_parent(parent_pid)
    parent_conn.close()  # the parent's end: held here too, a send would never see the parent gone
    if pin_cpu:
        _pin_to_one_cpu()
    counters = Counters()
    sink = _PipeSink(conn, counters, batch)
    pipeline = Pipeline(sink, counters, timeout_seconds=timeout_seconds, max_pending=max_pending)

    def stop(signum, frame):
        pipeline.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # as run_sources does for one process: what exists now lives as long as the child. No
    # gc.collect() first: it would touch every object inherited from the parent, copying its pages
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    failed = None
    try:
        pipeline.run(make_sources(counters))   # ends with finish(): the sink's last batch is sent
    except Exception as exc:  # building the sources failed, say: the parent reports it
        failed = f"{type(exc).__name__}: {exc}"
    conn.send_bytes(orjson.dumps({"end": True, "counters": counters.state(), "failed": failed}))
    conn.close()


class DecodeProcess:
    """Sources and pipeline stages in a forked child; ``run(sink, counters)`` in this process."""

    def __init__(self, make_sources: Callable[[Counters], list], *, timeout_seconds: float = 10.0,
                 max_pending: int = 10000, batch: int = BATCH_DOCUMENTS, pin_cpu: bool = True) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child_end = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child, name="aiswatch-decode", daemon=True,
                                    args=(make_sources, child_end, self._conn, os.getpid(), timeout_seconds,
                                          max_pending, batch, pin_cpu))
        self._process.start()
        child_end.close()
        self._stopping = False

    def run(self, sink, counters: Counters) -> None:
        """Hand every document the child sends to ``sink.submit_serialized`` and mirror its
        counters into ``counters``, until the child ends; then ``sink.flush()``."""
        conn = self._conn
        loads = orjson.loads
        ended = False
        try:
            while True:
                try:
                    meta = loads(conn.recv_bytes())
                    if not meta.get("end"):
                        bodies = conn.recv_bytes().splitlines(keepends=True)
                except (EOFError, OSError):  # the child is gone (a message cut short is dropped whole)
                    break
                counters.mirror(*meta["counters"])
                if meta.get("end"):
                    ended = True
                    if meta.get("failed"):
                        log.error("decode process: %s", meta["failed"])
                        counters.incr(f"source.{SOURCE_ID}.failures")
                    break
                submit = sink.submit_serialized
                for doc_id, ts, body, mmsi, source, kinds in zip(meta["ids"], meta["ts"], bodies, meta["mmsi"],
                                                                 meta["source"], meta["kinds"]):
                    submit(doc_id, ts, body, mmsi, source, kinds)
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            conn.close()
            if not ended:
                log.error("decode process ended without finishing (exit status %s); what it sent is kept",
                          self._process.exitcode)
                counters.incr(f"source.{SOURCE_ID}.failures")
            sink.flush()

    @property
    def pid(self) -> int | None:
        """The decode process's pid (None before it started)."""
        return self._process.pid

    def stop(self) -> None:
        """Ask the child to stop its sources (it still sends what it read): SIGTERM."""
        pid = self.pid
        if not self._stopping and pid is not None and self._process.is_alive():
            self._stopping = True
            os.kill(pid, signal.SIGTERM)

    def close(self) -> None:
        """Stop the child without reading from it (the caller gave up before ``run``)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._conn.close()


def start_decode_process(make_sources: Callable[[Counters], list], **options) -> DecodeProcess | None:
    """A DecodeProcess, or None when forking now would be unsafe (another thread is running)."""
    if threading.active_count() > 1:
        log.info("stages run in this process: other threads are running, so it is not forked")
        return None
    return DecodeProcess(make_sources, **options)
