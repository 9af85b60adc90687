"""Station health: the pipeline counters as a log line, a status file and a metrics index.

``MetricsReporter`` runs one background thread that

- logs a compact line every ``log_seconds`` (rates per second since the previous line, pending
  fragments, spool depth, Elasticsearch up/down, every loss), so a journal alone shows whether a
  station works;
- rewrites a JSON status file every few seconds (atomic rename) that ``aiswatch status`` reads;
- indexes one document per ``index_seconds`` into ``names.metrics`` (``es_templates/metrics.json``):
  one for the whole process and one per source (lines received, drops, last message time), so
  Kibana can chart each station's health. Not before ``ready`` is set (the index templates are
  installed: a metrics index made before would get guessed mappings for good). If Elasticsearch
  is down that minute's document is skipped (the counters are cumulative: only resolution is lost).

Losses (``losses``): datagrams a UDP receiver dropped itself (its queue full: ``source.<id>.dropped``,
their lines also in ``lines_in`` and ``rejected.udp_queue_full``), datagrams the kernel dropped
before we could read them (``source.<id>.kernel_drops``; their lines are unknown) and documents
the sink could neither deliver nor spool (``documents_lost``).

``render_status(snapshot)`` turns a status file into the table ``aiswatch status`` prints.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import orjson

from aiswatch.common.processes import pid_alive
from aiswatch.common.times import iso_from_seconds
from aiswatch.ingest.counters import Counters

log = logging.getLogger(__name__)

# counters whose rate per second goes into the log line, with their short label
_RATES = (("sentences_in", "in"), ("messages_decoded", "decoded"), ("documents_indexed", "indexed"),
          ("rejected", "rejected"))


def losses(snapshot: dict) -> dict[str, int]:
    """Every loss in a counters snapshot: ``datagrams_dropped`` (by our UDP receivers),
    ``kernel_drops`` (by the kernel, UDP receive buffers full), ``documents_lost`` (by the sink)."""
    dropped = kernel = 0
    for key, value in snapshot.items():
        if key.startswith("source."):
            if key.endswith(".dropped"):
                dropped += int(value)
            elif key.endswith(".kernel_drops"):
                kernel += int(value)
    return {"datagrams_dropped": dropped, "kernel_drops": kernel,
            "documents_lost": int(snapshot.get("documents_lost", 0))}


def per_source(snapshot: dict) -> dict[str, dict[str, float]]:
    """{source id: {"lines": n, "last_message_time": epoch s, ...}} from ``source.<id>.<name>`` and
    ``last_message_time.<id>`` counters (source ids may contain dots and colons)."""
    out: dict[str, dict[str, float]] = {}
    for key, value in snapshot.items():
        if key.startswith("source."):
            src, _, name = key[len("source."):].rpartition(".")
            if src:
                out.setdefault(src, {})[name] = value
        elif key.startswith("last_message_time."):
            out.setdefault(key[len("last_message_time."):], {})["last_message_time"] = value
    return out


class MetricsReporter:
    """Periodic log line, status file and metrics documents for ``counters``.

    client/names: where to index the metrics documents (None: do not index).
    log_seconds / index_seconds: intervals of the log line and the metrics documents (0: never).
    status_file: path of the JSON status file (None: none); written every ``status_seconds``.
    process_name: identifies this process in the metrics index (default ``aiswatch-<pid>``).
    ready: metrics documents are indexed only once it is set (the templates are installed).
    """

    def __init__(self, counters: Counters, client=None, names=None, log_seconds: float = 30,
                 index_seconds: float = 60, status_file: str | os.PathLike | None = None,
                 process_name: str | None = None, status_seconds: float = 5.0, start: bool = True,
                 ready: threading.Event | None = None):
        self.counters = counters
        self.ready = ready
        self.client = client
        self.names = names
        self.log_seconds = log_seconds
        self.index_seconds = index_seconds
        self.status_file = _own_status_file(Path(status_file)) if status_file else None
        self.status_seconds = status_seconds
        self.host = socket.gethostname()
        self.process = process_name or f"aiswatch-{os.getpid()}"
        self.started_at = time.time()
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._last_log = (time.monotonic(), counters.snapshot())
        self._last_index = (time.monotonic(), counters.snapshot())
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        if start:
            self._thread.start()

    def _run(self) -> None:
        now = time.monotonic()
        next_log = now + self.log_seconds if self.log_seconds else float("inf")
        next_index = now + self.index_seconds if self.index_seconds and self.client is not None else float("inf")
        next_status = now if self.status_file else float("inf")
        while True:
            wait = max(0.0, min(next_log, next_index, next_status) - time.monotonic())
            if self._stop.wait(min(wait, 3600)):
                return
            now = time.monotonic()
            try:
                if now >= next_status:
                    self.write_status()
                    next_status = now + self.status_seconds
                if now >= next_log:
                    log.info("%s", self.log_line())
                    next_log = now + self.log_seconds
                if now >= next_index:
                    self.index_metrics()
                    next_index = now + self.index_seconds
            except Exception:  # reporting must never take the daemon down
                log.exception("metrics reporter error")

    def close(self) -> None:
        """Stop the thread (not waiting long for a metrics request in flight); write the status
        file and log one last line."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self.stopped_at = time.time()
        if self.status_file:
            try:
                self.write_status()
            except OSError as exc:
                log.warning("could not write status file %s: %s", self.status_file, exc)
        if self.log_seconds:
            log.info("%s", self.log_line())

    # -- the three outputs ----------------------------------------------------------------------------
    def log_line(self) -> str:
        """``in 21.3/s decoded 20.9/s indexed 20.9/s rejected 0.1/s | pending 2 expired 0 | spool 0 | es up``"""
        now = time.monotonic()
        snap = self.counters.snapshot()
        then, before = self._last_log
        self._last_log = (now, snap)
        elapsed = max(now - then, 1e-9)
        rates = " ".join(f"{label} {(snap.get(key, 0) - before.get(key, 0)) / elapsed:.1f}/s"
                         for key, label in _RATES)
        es = "up" if snap.get("es_up", 1) else "DOWN"
        parts = [rates,
                 f"pending {int(snap.get('fragments_pending', 0))} expired {int(snap.get('fragments_expired', 0))}",
                 f"spool {int(snap.get('spool_depth', 0))}", f"es {es}"]
        lost = losses(snap)
        parts.append(f"dropped {lost['datagrams_dropped']} kernel {lost['kernel_drops']} "
                     f"lost {lost['documents_lost']}")
        problems = [f"{k} {int(snap[k])}" for k in ("bulk_errors", "dead_letters", "decode_errors") if snap.get(k)]
        if problems:
            parts.append(" ".join(problems))
        return " | ".join(parts)

    def status(self) -> dict:
        """The status file's content: identity, times and every counter."""
        return {"written_at": time.time(), "started_at": self.started_at, "stopped_at": self.stopped_at,
                "host": self.host, "process": self.process, "pid": os.getpid(), "counters": self.counters.snapshot()}

    def write_status(self) -> None:
        tmp = self.status_file.with_name(self.status_file.name + ".tmp")
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(orjson.dumps(self.status(), option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.status_file)

    def metrics_documents(self, now: float | None = None) -> list[dict]:
        """One document for the process and one per source, for the interval since the last call."""
        now = time.time() if now is None else now
        mono = time.monotonic()
        snap = self.counters.snapshot()
        then, before = self._last_index
        self._last_index = (mono, snap)
        minutes = max(mono - then, 1e-9) / 60.0
        base = {"@timestamp": iso_from_seconds(now), "host": self.host, "process": self.process}
        sources = per_source(snap)
        last_times = [s["last_message_time"] for s in sources.values() if "last_message_time" in s]
        total = dict(base)
        total.update(losses(snap))
        total.update({
            "lines_in": int(snap.get("lines_in", 0)),
            "sentences_in": int(snap.get("sentences_in", 0)),
            "rejected": int(snap.get("rejected", 0)),
            "bad_checksum": int(snap.get("rejected.bad_checksum", 0)),
            "fragments_pending": int(snap.get("fragments_pending", 0)),
            "fragments_expired": int(snap.get("fragments_expired", 0)),
            "messages_decoded": int(snap.get("messages_decoded", 0)),
            "documents_indexed": int(snap.get("documents_indexed", 0)),
            "bulk_errors": int(snap.get("bulk_errors", 0)),
            "spool_depth": int(snap.get("spool_depth", 0)),
            "spool_bytes": int(snap.get("spool_bytes", 0)),
            "queued": int(snap.get("queued", 0)),
            "dead_letters": int(snap.get("dead_letters", 0)),
            "es_up": int(snap.get("es_up", 1)),
            "rate_per_min": (snap.get("messages_decoded", 0) - before.get("messages_decoded", 0)) / minutes,
            "counters": snap,
        })
        if last_times:
            total["last_message_time"] = iso_from_seconds(max(last_times))
        docs = [total]
        before_sources = per_source(before)
        for src, values in sorted(sources.items()):
            doc = dict(base, source=src)
            lines = values.get("lines")
            if lines is not None:
                doc["sentences_in"] = int(lines)
                doc["rate_per_min"] = (lines - before_sources.get(src, {}).get("lines", 0)) / minutes
            if "last_message_time" in values:
                doc["last_message_time"] = iso_from_seconds(values["last_message_time"])
            if "dropped" in values or "kernel_drops" in values:
                doc["datagrams_dropped"] = int(values.get("dropped", 0))
                doc["kernel_drops"] = int(values.get("kernel_drops", 0))
            doc["counters"] = values
            docs.append(doc)
        return docs

    def index_metrics(self) -> int:
        """Index this interval's metrics documents; returns how many were written (0 if ES is down,
        or the templates are not installed yet)."""
        if self.client is None or self.names is None:
            return 0
        if self.ready is not None and not self.ready.is_set():
            log.debug("metrics not indexed yet: the index templates are not installed")
            return 0
        docs = self.metrics_documents()
        ops = []
        for d in docs:
            ops.append({"index": {"_index": self.names.metrics}})
            ops.append(d)
        try:
            resp = self.client.options(request_timeout=5, max_retries=0).bulk(operations=ops)
        except Exception as exc:
            self.counters.incr("metrics_errors")
            log.debug("metrics not indexed this time: %s", type(exc).__name__)
            return 0
        failed = [i for i in resp.get("items", ()) if next(iter(i.values())).get("status", 500) >= 300]
        if failed:
            self.counters.incr("metrics_errors", len(failed))
            log.warning("metrics index rejected %d documents: %s", len(failed),
                        next(iter(failed[0].values())).get("error"))
        return len(docs) - len(failed)


# a process rewrites its status file every 5 s: three missed writes and it is taken as gone
STATUS_STALE_SECONDS = 20.0


def writer_alive(snapshot: dict) -> bool:
    """The process that wrote this status lives on this host and has not said it stopped."""
    pid = int(snapshot.get("pid") or 0)
    return (not snapshot.get("stopped_at") and snapshot.get("host") == socket.gethostname()
            and bool(pid) and pid_alive(pid))


def process_state(snapshot: dict, now: float | None = None) -> str:
    """'running', 'stopped' (ended cleanly) or 'gone' (died, or on another host and silent)."""
    if snapshot.get("stopped_at"):
        return "stopped"
    now = time.time() if now is None else now
    fresh = now - float(snapshot.get("written_at") or 0) <= STATUS_STALE_SECONDS
    if snapshot.get("host") == socket.gethostname():
        return "running" if fresh and writer_alive(snapshot) else "gone"
    return "running" if fresh else "gone"


def _own_status_file(path: Path) -> Path:
    """``path``, unless another live process on this host writes it: then ``<stem>-<pid><suffix>``
    beside it, so a backfill next to the daemon does not overwrite the daemon's status."""
    try:
        other = orjson.loads(path.read_bytes())
        if int(other.get("pid") or 0) != os.getpid() and writer_alive(other):
            return path.with_name(f"{path.stem}-{os.getpid()}{path.suffix}")
    except (OSError, ValueError, AttributeError):
        pass
    return path


def render_status(snapshot: dict, live: bool = True) -> str:
    """The status file as a table for ``aiswatch status`` (``live``: the process still runs)."""
    counters = snapshot.get("counters", {})
    lines = []
    started = snapshot.get("started_at")
    if started:
        up = (time.time() if live else float(snapshot.get("stopped_at") or time.time())) - float(started)
        lines.append(f"  process {snapshot.get('process', '?')} on {snapshot.get('host', '?')}, "
                     f"{'up' if live else 'ran'} {int(up // 3600)}h{int(up % 3600 // 60):02d}m")
    if live:
        es = "reachable" if counters.get("es_up", 1) else "NOT reachable (documents are being spooled)"
        lines.append(f"  elasticsearch, as this process sees it: {es}")
    groups = [
        ("input", ["sentences_in", "rejected", "rejected.bad_checksum"]),
        ("assembly", ["fragments_pending", "fragments_expired", "fragments_dropped"]),
        ("decoding", ["messages_decoded", "decode_errors"]),
        ("indexing", ["documents_indexed", "documents_stale", "ships_written", "bulk_requests", "bulk_retries",
                      "bulk_errors", "dead_letters"]),
        ("spool", ["spool_depth", "spool_bytes", "spooled_total", "replayed_total", "queued"]),
    ]
    for title, keys in groups:
        lines.append(f"  {title}:")
        for key in keys:
            lines.append(f"    {key:<24}{int(counters.get(key, 0)):>12}")
    other_rejects = sorted(k for k in counters if k.startswith("rejected.") and k != "rejected.bad_checksum")
    for key in other_rejects:
        lines.append(f"    {key:<24}{int(counters[key]):>12}")
    lines.append("  losses:")
    for key, value in losses(counters).items():
        lines.append(f"    {key:<24}{value:>12}")
    sources = per_source(counters)
    if sources:
        lines.append("  sources:")
        now = time.time()
        for src, values in sorted(sources.items()):
            last = values.get("last_message_time")
            age = f"last message {now - last:.0f} s ago" if last else "no message yet"
            received = f"{int(values['lines'])} lines" if "lines" in values else ""
            drops = ""
            if values.get("dropped") or values.get("kernel_drops"):
                drops = (f"  dropped {int(values.get('dropped', 0))} datagrams, kernel "
                         f"{int(values.get('kernel_drops', 0))}")
            lines.append(f"    {src:<32} {received:>14}  {age}{drops}")
    return "\n".join(lines)
