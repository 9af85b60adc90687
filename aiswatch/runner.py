"""Run sources through the pipeline into Elasticsearch: what ``aiswatch ingest …`` and ``aiswatch run`` share.

One function, ``run_sources``: connect (or start the embedded server), install templates, start the
sink (with its spool and dead-letter file) and the metrics reporter, run the pipeline until the
sources end or SIGINT/SIGTERM arrives, then flush everything and report.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from elastic_transport import TlsError, TransportError
from elasticsearch import ApiError

from aiswatch.cluster import Cluster, connect
from aiswatch.config import Config, ConfigError
from aiswatch.ingest.counters import Counters
from aiswatch.common.secrets import redact_url
from aiswatch.ingest.pipeline import GC_THRESHOLDS, Pipeline

log = logging.getLogger(__name__)


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


def build_sink(cfg: Config, cluster: Cluster, counters: Counters, opts: IngestOptions,
               setup: Callable[[], None] | None = None):
    """The sink for this run; ``setup``: index templates still to install before its first delivery."""
    from aiswatch.ingest.sink import ElasticsearchSink

    sink_cfg = cfg["sink"]
    return ElasticsearchSink(
        cluster.client, cluster.names, counters,
        spool_dir=opts.spool_dir or sink_cfg["spool_dir"],
        dead_letter_path=opts.dead_letter or sink_cfg["dead_letter"],
        batch_size=int(opts.batch_size or sink_cfg["batch_size"]),
        batch_bytes=int(sink_cfg["batch_bytes"]),
        flush_seconds=float(sink_cfg["flush_seconds"]),
        queue_size=int(sink_cfg["queue_size"]),
        # a live source cannot wait (the UDP socket would overflow): past 0.5 s the spool takes the
        # documents; a replay can, and pure backpressure keeps a fast file off the disk spool
        block_seconds=None if opts.replay else 0.5,
        setup=setup,
    )


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
    from aiswatch.es_templates.install import install_templates

    counters = counters or Counters()
    log.info("stage modules: %s", native.mode())  # 'python (...)': not compiled, about a third slower
    asm = cfg["assembler"]
    stage_options = {"timeout_seconds": float(asm["timeout_seconds"]), "max_pending": int(asm["max_pending"])}
    decoder = None
    if opts.decode_process:  # forked first: before this process starts a thread or opens a connection
        from aiswatch.ingest.worker import start_decode_process

        decoder = start_decode_process(make_sources, **stage_options)
    cluster = sink = reporter = None
    try:
        cluster = connect(cfg, opts.es_url, opts.namespace)
        check_cluster(cluster)
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
                    log.warning("could not install the index templates now (%s); they are installed before "
                                "the first documents are delivered, which are spooled until then", _reason(exc))
                    pending_setup = setup_templates
        sink = build_sink(cfg, cluster, counters, opts, setup=pending_setup)
        m = cfg["metrics"]
        reporter = MetricsReporter(counters, client=cluster.client, names=cluster.names,
                                   log_seconds=float(m["log_seconds"]), index_seconds=float(m["index_seconds"]),
                                   status_file=m.get("status_file"))
        if decoder is not None:  # the stages run in the decode process; this one indexes
            stages, run = decoder, functools.partial(decoder.run, sink, counters)
        else:
            stages = Pipeline(sink, counters, **stage_options)
            run = functools.partial(stages.run, make_sources(counters))
        _stop_on_signals(stages)
        if on_ready:
            on_ready(cluster)
        with _collector_tuned():
            run()
    finally:
        if decoder is not None:  # ended by now, unless something failed before it ran
            decoder.close()
        if sink is not None:
            sink.close()
            if opts.replay:
                _refresh(cluster)
        if reporter is not None:
            reporter.close()
        if cluster is not None:
            cluster.close()
    return counters


def check_cluster(cluster: Cluster) -> None:
    """Fail now on what waiting cannot fix: credentials refused, a TLS handshake that fails (https to
    an http port, an unknown CA). A cluster that is only down is fine: the spool takes the documents."""
    from elasticsearch import AuthenticationException, AuthorizationException

    url = redact_url(cluster.url)
    try:
        cluster.client.options(request_timeout=10, max_retries=0).info()
    except (AuthenticationException, AuthorizationException) as exc:
        raise ConfigError(f"Elasticsearch at {url} refused our credentials ({exc.meta.status}): check ES_USERNAME "
                          "and ES_PASSWORD (or password_file), or ES_API_KEY (or api_key_file)") from None
    except TlsError as exc:
        raise ConfigError(f"TLS with Elasticsearch at {url} failed ({redact_url(str(exc))}): an https:// URL for "
                          "an http port, or a certificate not signed by ca_certs / ES_CA_CERTS?") from None
    except TransportError as exc:
        log.warning("Elasticsearch at %s does not answer now (%s); documents are spooled until it does",
                    url, _reason(exc))
    except ApiError as exc:  # answers, but not as we hoped (a proxy's 5xx, say): the sink will see
        log.warning("Elasticsearch at %s answered %s to a probe; going on", url, exc.meta.status)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {redact_url(str(exc))[:200]}"


def _refresh(cluster: Cluster) -> None:
    """Make a finished replay searchable now, not at the next refresh interval."""
    names = cluster.names
    try:
        cluster.client.options(request_timeout=30).indices.refresh(
            index=f"{names.messages_pattern},{names.ships}", ignore_unavailable=True, allow_no_indices=True)
    except Exception as exc:
        log.info("could not refresh the indices after the replay (%s)", exc)


def _start_pruner(cluster: Cluster, retention_days: int) -> None:
    """Without ILM: delete daily indices older than the retention now and every 6 hours."""
    from aiswatch.es_templates.install import prune_daily_indices

    def loop():
        while True:
            try:
                deleted = prune_daily_indices(cluster.client, cluster.names, retention_days)
                if deleted:
                    log.info("retention: deleted %d daily indices older than %d days: %s",
                             len(deleted), retention_days, ", ".join(deleted))
            except Exception as exc:
                log.warning("retention: could not prune daily indices: %s", exc)
            time.sleep(6 * 3600)

    threading.Thread(target=loop, name="retention", daemon=True).start()


def _stop_on_signals(pipeline) -> None:
    """SIGINT/SIGTERM call ``pipeline.stop()`` (a Pipeline, or the decode process that runs one)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        log.info("signal %s: stopping sources, flushing", signal.Signals(signum).name)
        pipeline.stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def summary_lines(counters: Counters) -> list[str]:
    """A short end-of-run summary: what came in, what was indexed, what was rejected and why."""
    snap = counters.snapshot()
    out = [
        f"lines in          {int(snap.get('lines_in', 0)):>10}",
        f"sentences in      {int(snap.get('sentences_in', 0)):>10}",
        f"messages decoded  {int(snap.get('messages_decoded', 0)):>10}",
        f"documents indexed {int(snap.get('documents_indexed', 0)):>10}",
        f"spool depth       {int(snap.get('spool_depth', 0)):>10}",
        f"bulk errors       {int(snap.get('bulk_errors', 0)):>10}",
        f"dead letters      {int(snap.get('dead_letters', 0)):>10}",
        f"rejected          {int(snap.get('rejected', 0)):>10}",
    ]
    for key, value in snap.items():
        if key.startswith("rejected.") and value:
            out.append(f"  {key[len('rejected.'):]:<16}{int(value):>10}")
    return out


def exit_on_failure(counters: Counters, opts: IngestOptions) -> None:
    """Exit status 1 when a source died, or when a finite replay ends with documents still spooled
    (Elasticsearch never took them: they wait on disk for the next run), so scripts notice."""
    snap = counters.snapshot()
    failed = sorted(k[len("source."):-len(".failures")] for k, v in snap.items()
                    if k.startswith("source.") and k.endswith(".failures") and v)
    problems = [f"source {name} failed (see the log above)" for name in failed]
    spooled = int(snap.get("spool_depth", 0))
    if opts.replay and spooled:
        problems.append(f"{spooled} documents are still in the spool (Elasticsearch did not take them); "
                        "the next aiswatch ingest or run delivers them")
    if problems:
        print("Error: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(1)
