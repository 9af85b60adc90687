"""Run sources through the pipeline into Elasticsearch: what ``aiswatch ingest …`` and ``aiswatch run`` share.

One function, ``run_sources``: connect (or start the embedded server), install templates, start the
sink (with its spool and dead-letter file) and the metrics reporter, run the pipeline until the
sources end or SIGINT/SIGTERM arrives, then flush everything and report.

Every process has a spool of its own: ``--spool-dir`` names it; otherwise one is chosen under
``sink.spool_dir`` for this cluster and namespace (``ingest.spool.spool_dir_for``). A replay waits
for a cluster that is down as long as ``max_wait``, saying so, then gives up with its documents
kept in the spool (``ingest.outage_watch``). SIGINT/SIGTERM end the run within seconds in every
state: the sink stops waiting, delivers for ``SHUTDOWN_GRACE`` seconds and spools the rest.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from elastic_transport import TlsError, TransportError
from elasticsearch import ApiError

from aiswatch.cluster import Cluster, connect
from aiswatch.config import Config, ConfigError
from aiswatch.ingest.counters import Counters
from aiswatch.common.secrets import redact_url
from aiswatch.ingest.pipeline import GC_THRESHOLDS, Pipeline

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0        # seconds the sink still delivers after SIGINT/SIGTERM before it spools the rest
SPOOL_DISK_SHARE = 0.10     # default spool bound: this share of the size of the spool's file system


@dataclass
class IngestOptions:
    es_url: str | None = None
    namespace: str | None = None
    spool_dir: str | None = None
    dead_letter: str | None = None
    batch_size: int | None = None
    setup: bool = True
    replay: bool = False  # a finite input (log file, recording): wait for the writer instead of spooling, refresh at the end
    decode_process: bool = False  # run the sources and stages in a second process (ingest.worker): files at full speed
    max_wait: float | None = None  # a replay: seconds Elasticsearch may stay down before it gives up (None: config)
    progress: bool = False  # a replay: a progress bar while the spool is delivered at the end


def build_sink(cfg: Config, cluster: Cluster, counters: Counters, opts: IngestOptions,
               setup: Callable[[], None] | None = None, cluster_uuid: str | None = None,
               on_fatal: Callable[[str], None] | None = None):
    """The sink for this run; ``setup``: index templates still to install before its first delivery;
    ``cluster_uuid``: the cluster's, if it answered (the spool records it). A spool another process
    holds, or one with documents for another cluster, is a ConfigError (one ``Error:`` line)."""
    from aiswatch.ingest.sink import ElasticsearchSink
    from aiswatch.ingest.spool import SpoolError, SpoolTarget, spool_dir_for

    sink_cfg = cfg["sink"]
    target = SpoolTarget.for_url(cluster.url, cluster.names.namespace, cluster_uuid)
    retention = cfg["elasticsearch"].get("retention_days")
    try:
        spool_dir = Path(opts.spool_dir) if opts.spool_dir else spool_dir_for(sink_cfg["spool_dir"], target)
        return ElasticsearchSink(
            cluster.client, cluster.names, counters,
            spool_dir=spool_dir,
            dead_letter_path=opts.dead_letter or sink_cfg["dead_letter"],
            batch_size=int(opts.batch_size or sink_cfg["batch_size"]),
            batch_bytes=int(sink_cfg["batch_bytes"]),
            flush_seconds=float(sink_cfg["flush_seconds"]),
            queue_size=int(sink_cfg["queue_size"]),
            # a live source cannot wait (the UDP socket would overflow): past 0.5 s the spool takes the
            # documents; a replay can, and pure backpressure keeps a fast file off the disk spool
            block_seconds=None if opts.replay else 0.5,
            setup=setup,
            spool_max_bytes=spool_max_bytes(sink_cfg.get("spool_max_bytes"), spool_dir),
            spool_target=target,
            retention_days=int(retention) if retention else None,
            on_fatal=on_fatal,
        )
    except SpoolError as exc:
        raise ConfigError(str(exc)) from None


def spool_max_bytes(configured, spool_dir: Path) -> int:
    """``sink.spool_max_bytes``, or by default SPOOL_DISK_SHARE of the spool's file system."""
    if configured is not None:   # checked by the configuration: a positive number of bytes
        return int(configured)
    path = spool_dir
    while not path.exists() and path != path.parent:
        path = path.parent
    stat = os.statvfs(path)
    return max(1, int(stat.f_blocks * stat.f_frsize * SPOOL_DISK_SHARE))


@contextlib.contextmanager
def _collector_tuned():
    """Freeze what exists now (imports, config, client: it lives as long as the process) out of
    the collector's way and raise its thresholds; restore both afterwards."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def run_sources(cfg: Config, make_sources: Callable[[Counters], list], opts: IngestOptions,
                counters: Counters | None = None, on_ready: Callable[[Cluster], None] | None = None) -> Counters:
    """Run the sources made by ``make_sources(counters)`` until they end or a signal stops us."""
    from aiswatch.ingest import native
    from aiswatch.ingest.metrics import MetricsReporter
    from aiswatch.ingest.outage_watch import OutageWatch
    from aiswatch.es_templates.install import install_templates

    counters = counters or Counters()
    log.info("stage modules: %s", native.mode())  # 'python (...)': not compiled, about a third slower
    asm = cfg["assembler"]
    stage_options = {"timeout_seconds": float(asm["timeout_seconds"]), "max_pending": int(asm["max_pending"])}
    decoder = None
    if opts.decode_process:  # forked first: before this process starts a thread or opens a connection
        from aiswatch.ingest.worker import start_decode_process

        decoder = start_decode_process(make_sources, **stage_options)
    cluster = sink = reporter = watch = None
    stopper = _Stopper()
    try:
        cluster = connect(cfg, opts.es_url, opts.namespace)
        cluster_uuid = check_cluster(cluster)
        retention = cfg["elasticsearch"].get("retention_days")
        pending_setup = None
        if opts.setup:
            def setup_templates() -> None:
                report = install_templates(cluster.client, cluster.names, retention)
                if retention and any("no ILM" in what for what in report.values()):
                    _start_pruner(cluster, int(retention))

            try:
                setup_templates()
            except (TransportError, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status_code < 500 and exc.status_code not in (408, 429):
                    log.error("index templates refused (%s): documents get the server's own mappings",
                              _reason(exc))
                else:  # ES down at start: the spool takes the documents meanwhile
                    log.warning("could not install the index templates now (%s); they are installed as soon as "
                                "Elasticsearch answers, before any document or metric is written", _reason(exc))
                    pending_setup = setup_templates
        sink = build_sink(cfg, cluster, counters, opts, setup=pending_setup, cluster_uuid=cluster_uuid,
                          on_fatal=stopper.fatal)
        stopper.sink = sink
        m = cfg["metrics"]
        reporter = MetricsReporter(counters, client=cluster.client, names=cluster.names,
                                   log_seconds=float(m["log_seconds"]), index_seconds=float(m["index_seconds"]),
                                   status_file=m.get("status_file"), ready=sink.setup_ready)
        if decoder is not None:  # the stages run in the decode process; this one indexes
            stages, run = decoder, functools.partial(decoder.run, sink, counters)
        else:
            stages = Pipeline(sink, counters, **stage_options)
            run = functools.partial(stages.run, make_sources(counters))
        stopper.stages = stages
        _stop_on_signals(stopper)
        if opts.replay:
            max_wait = opts.max_wait if opts.max_wait is not None else replay_max_wait(cfg)
            watch = OutageWatch(sink, stopper.stop, redact_url(cluster.url), max_wait, counters, opts.progress)
            watch.start()
        if on_ready:
            on_ready(cluster)
        with _collector_tuned():
            run()
    finally:
        if decoder is not None:  # ended by now, unless something failed before it ran
            decoder.close()
        if sink is not None:
            if watch is not None:
                watch.draining = True
            if opts.replay:  # everything delivered, as long as the cluster is not down for longer than max_wait
                sink.close(drain_seconds=float("inf"), outage_seconds=watch.max_wait if watch else 0.0,
                           grace_seconds=SHUTDOWN_GRACE)
            else:
                sink.close(drain_seconds=30.0, grace_seconds=SHUTDOWN_GRACE)
            if watch is not None:
                watch.stop()
                if sink.spool.depth and sink.outage_seconds() > watch.max_wait:
                    watch.give_up()  # the drain at the end gave up waiting: the same line
            if opts.replay and not sink.interrupted and sink.es_up:
                _refresh(cluster)
        if reporter is not None:
            reporter.close()
        if cluster is not None:
            cluster.close()
    if stopper.fatal_message:
        raise ConfigError(stopper.fatal_message)
    return counters


def replay_max_wait(cfg: Config) -> float:
    """``sink.max_wait``: how long a replay waits for a cluster that is down, in seconds."""
    from aiswatch.common.durations import parse_duration

    return parse_duration(cfg["sink"].get("max_wait", "10m"), "sink.max_wait")


class _Stopper:
    """Stops a run: the stages (their sources end) and the sink's waits. Called from the signal
    handler, the outage watch (a replay that gives up) and the sink (a spool for another cluster)."""

    def __init__(self) -> None:
        self.stages = None
        self.sink = None
        self.fatal_message: str | None = None

    def stop(self) -> None:
        if self.sink is not None:
            self.sink.interrupt()
        if self.stages is not None:
            self.stages.stop()

    def fatal(self, message: str) -> None:
        self.fatal_message = message
        self.stop()


def check_cluster(cluster: Cluster) -> str | None:
    """Fail now on what waiting cannot fix: credentials refused, a TLS handshake that fails (https to
    an http port, an unknown CA). A cluster that is only down is fine: the spool takes the documents.
    Returns the cluster's UUID when it answers with one."""
    from elasticsearch import AuthenticationException, AuthorizationException

    url = redact_url(cluster.url)
    try:
        info = cluster.client.options(request_timeout=10, max_retries=0).info()
    except (AuthenticationException, AuthorizationException) as exc:
        raise ConfigError(f"Elasticsearch at {url} refused our credentials ({exc.meta.status}): check ES_USERNAME "
                          "and ES_PASSWORD (or password_file), or ES_API_KEY (or api_key_file)") from None
    except TlsError as exc:
        raise ConfigError(f"TLS with Elasticsearch at {url} failed ({redact_url(str(exc))}): an https:// URL for "
                          "an http port, or a certificate not signed by ca_certs / ES_CA_CERTS?") from None
    except TransportError as exc:
        log.warning("Elasticsearch at %s does not answer now (%s); documents are spooled until it does",
                    url, _reason(exc))
        return None
    except ApiError as exc:  # answers, but not as we hoped (a proxy's 5xx, say): the sink will see
        log.warning("Elasticsearch at %s answered %s to a probe; going on", url, exc.meta.status)
        return None
    try:
        return str(info.get("cluster_uuid") or "") or None
    except AttributeError:
        return None


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {redact_url(str(exc))[:200]}"


def _refresh(cluster: Cluster) -> None:
    """Make a finished replay searchable now, not at the next refresh interval."""
    names = cluster.names
    try:
        cluster.client.options(request_timeout=10, max_retries=0).indices.refresh(
            index=f"{names.messages_pattern},{names.ships}", ignore_unavailable=True, allow_no_indices=True)
    except Exception as exc:
        log.info("could not refresh the indices after the replay (%s)", exc)


def _start_pruner(cluster: Cluster, retention_days: int) -> None:
    """Without ILM: delete the daily indices created more than the retention ago (as ILM counts),
    now and every 6 hours."""
    from aiswatch.es_templates.install import prune_daily_indices

    def loop():
        while True:
            try:
                deleted = prune_daily_indices(cluster.client, cluster.names, retention_days)
                if deleted:
                    log.info("retention: deleted %d daily indices created more than %d days ago: %s",
                             len(deleted), retention_days, ", ".join(deleted))
            except Exception as exc:
                log.warning("retention: could not prune daily indices: %s", exc)
            time.sleep(6 * 3600)

    threading.Thread(target=loop, name="retention", daemon=True).start()


def _stop_on_signals(stopper: _Stopper) -> None:
    """SIGINT/SIGTERM stop the run (``_Stopper.stop``): the sources end, the sink stops waiting."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        log.info("signal %s: stopping sources; delivering for %.0f s at most, then spooling the rest",
                 signal.Signals(signum).name, SHUTDOWN_GRACE)
        stopper.stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def summary_lines(counters: Counters) -> list[str]:
    """A short end-of-run summary: what came in, what was indexed, what was rejected and why, and
    every loss (datagrams dropped by us or by the kernel, documents neither delivered nor spooled)."""
    from aiswatch.ingest.metrics import losses

    snap = counters.snapshot()
    lost = losses(snap)
    out = [
        f"lines in          {int(snap.get('lines_in', 0)):>10}",
        f"sentences in      {int(snap.get('sentences_in', 0)):>10}",
        f"messages decoded  {int(snap.get('messages_decoded', 0)):>10}",
        f"documents indexed {int(snap.get('documents_indexed', 0)):>10}",
        f"spool depth       {int(snap.get('spool_depth', 0)):>10}",
        f"bulk errors       {int(snap.get('bulk_errors', 0)):>10}",
        f"dead letters      {int(snap.get('dead_letters', 0)):>10}",
        f"dropped datagrams {lost['datagrams_dropped']:>10}",
        f"kernel drops      {lost['kernel_drops']:>10}",
        f"documents lost    {lost['documents_lost']:>10}",
        f"rejected          {int(snap.get('rejected', 0)):>10}",
    ]
    for key, value in snap.items():
        if key.startswith("rejected.") and value:
            out.append(f"  {key[len('rejected.'):]:<16}{int(value):>10}")
    return out


def exit_on_failure(counters: Counters, opts: IngestOptions) -> None:
    """Exit status 1 when a source died, documents were lost, or a finite replay ends with
    documents still spooled (Elasticsearch never took them: they wait on disk for the next run,
    after a wait longer than --max-wait too), so scripts notice."""
    snap = counters.snapshot()
    failed = sorted(k[len("source."):-len(".failures")] for k, v in snap.items()
                    if k.startswith("source.") and k.endswith(".failures") and v)
    problems = [f"source {name} failed (see the log above)" for name in failed]
    if snap.get("documents_lost"):
        problems.append(f"{int(snap['documents_lost'])} documents were lost: neither delivered nor spooled "
                        "(see the log above)")
    if snap.get("replay_gave_up"):
        problems.append("Elasticsearch did not answer for longer than --max-wait")
    spooled = int(snap.get("spool_depth", 0))
    if opts.replay and spooled:
        problems.append(f"{spooled} documents are still in the spool (Elasticsearch did not take them); "
                        "the next aiswatch ingest or run delivers them")
    if problems:
        print("Error: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(1)
