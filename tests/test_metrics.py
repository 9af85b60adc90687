"""MetricsReporter: log line, status file (what ``aiswatch status`` reads) and the metrics index."""
from __future__ import annotations

import json
import logging
import re
import time

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.metrics import MetricsReporter, render_status
from aiswatch.es_templates.install import install_templates


def busy_counters():
    c = Counters()
    c.incr("sentences_in", 1200)
    c.incr("messages_decoded", 1000)
    c.incr("documents_indexed", 990)
    c.reject("bad_checksum", 7)
    c.gauge("fragments_pending", 3)
    c.gauge("spool_depth", 0)
    c.gauge("es_up", 1)
    c.incr("source.udp:127.0.0.1:10110.lines", 1200)
    c.gauge("last_message_time.udp:127.0.0.1:10110", time.time() - 4)
    return c


def test_log_line_reports_rates_since_the_previous_line():
    c = Counters()
    reporter = MetricsReporter(c, log_seconds=0, index_seconds=0, start=False)
    reporter._last_log = (time.monotonic() - 2.0, c.snapshot())  # the previous line was 2 s ago
    c.incr("sentences_in", 200)
    c.incr("messages_decoded", 100)
    c.gauge("spool_depth", 42)
    c.gauge("es_up", 0)
    c.incr("bulk_errors", 2)
    line = reporter.log_line()
    rates = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+) ([\d.]+)/s", line)}
    assert abs(rates["in"] - 100) < 2 and abs(rates["decoded"] - 50) < 1 and rates["indexed"] == 0
    assert "spool 42" in line and "es DOWN" in line and "bulk_errors 2" in line


def test_status_file_and_render(tmp_path):
    c = busy_counters()
    path = tmp_path / "status.json"
    reporter = MetricsReporter(c, log_seconds=0, index_seconds=0, status_file=path, status_seconds=0.05)
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    c.incr("sentences_in", 5)
    reporter.close()  # writes the final state
    snap = json.loads(path.read_text())
    assert snap["counters"]["sentences_in"] == 1205 and snap["pid"] > 0
    table = render_status(snap)
    assert "sentences_in" in table and "1205" in table
    assert "rejected.bad_checksum" in table and "elasticsearch, as this process sees it: reachable" in table
    assert "udp:127.0.0.1:10110" in table and "1200 lines" in table and "last message" in table
    assert not list(tmp_path.glob("*.tmp"))


def test_metrics_documents_are_indexed_every_interval(es, names, caplog):
    install_templates(es, names, None)
    c = busy_counters()
    caplog.set_level(logging.INFO, logger="aiswatch.ingest.metrics")
    reporter = MetricsReporter(c, client=es, names=names, log_seconds=0.2, index_seconds=0.3,
                               process_name="test-proc")
    deadline = time.monotonic() + 10
    hits = []
    while time.monotonic() < deadline:
        time.sleep(0.3)
        es.indices.refresh(index=names.metrics, ignore_unavailable=True)
        try:
            hits = es.search(index=names.metrics, size=100)["hits"]["hits"]
        except Exception:
            continue
        if len(hits) >= 4:
            break
    reporter.close()
    docs = [h["_source"] for h in hits]
    totals = [d for d in docs if "source" not in d]
    stations = [d for d in docs if d.get("source") == "udp:127.0.0.1:10110"]
    assert totals and stations
    assert totals[0]["process"] == "test-proc" and totals[0]["bad_checksum"] == 7
    assert totals[0]["messages_decoded"] == 1000 and totals[0]["last_message_time"].endswith("Z")
    assert stations[0]["sentences_in"] == 1200
    assert any("in " in r.getMessage() and "| spool 0 | es up" in r.getMessage() for r in caplog.records)


def test_es_down_skips_the_document_and_counts_it():
    from aiswatch.embedded import free_port
    from aiswatch.ingest.esclient import make_client
    from aiswatch.es_templates import IndexNames

    c = busy_counters()
    client = make_client(f"http://127.0.0.1:{free_port()}", request_timeout=1)
    reporter = MetricsReporter(c, client=client, names=IndexNames("x-"), log_seconds=0, index_seconds=0, start=False)
    assert reporter.index_metrics() == 0
    assert c.get("metrics_errors") == 1
    client.close()


def test_losses_are_mapped_fields_kibana_can_chart(es, names):
    """Every loss is a mapped field of the metrics documents (the template maps ``counters`` with
    ``enabled: false`` and the rest ``dynamic: false``: an unmapped field could not be charted):
    the sums come back from an aggregation, and the log line and status table show them."""
    install_templates(es, names, None)
    c = busy_counters()
    src = "udp:127.0.0.1:10110"
    c.incr(f"source.{src}.dropped", 7)
    c.gauge(f"source.{src}.kernel_drops", 41319)
    c.incr("documents_lost", 3)
    c.gauge("spool_bytes", 12345)
    reporter = MetricsReporter(c, client=es, names=names, log_seconds=0, index_seconds=0, start=False)
    assert reporter.index_metrics() == 2
    es.indices.refresh(index=names.metrics)
    aggs = {k: {"sum": {"field": k}} for k in ("datagrams_dropped", "kernel_drops", "documents_lost", "spool_bytes")}
    total = es.search(index=names.metrics, size=0, query={"bool": {"must_not": {"exists": {"field": "source"}}}},
                      aggs=aggs)["aggregations"]
    per_source = es.search(index=names.metrics, size=0, query={"term": {"source": src}}, aggs=aggs)["aggregations"]
    assert {k: v["value"] for k, v in total.items()} == {"datagrams_dropped": 7, "kernel_drops": 41319,
                                                         "documents_lost": 3, "spool_bytes": 12345}
    assert per_source["datagrams_dropped"]["value"] == 7 and per_source["kernel_drops"]["value"] == 41319
    assert "dropped 7 kernel 41319 lost 3" in reporter.log_line()
    table = render_status({"counters": c.snapshot()})
    assert "kernel_drops" in table and "41319" in table and "documents_lost" in table
    assert "dropped 7 datagrams, kernel 41319" in table


def test_no_metrics_document_before_the_templates_are_installed(es, names):
    """``ready`` unset (the templates not installed yet): nothing is written, so the metrics index
    is never made with guessed mappings; once set, the documents go in under the template's."""
    import threading

    c = busy_counters()
    ready = threading.Event()
    reporter = MetricsReporter(c, client=es, names=names, log_seconds=0, index_seconds=0, start=False, ready=ready)
    assert reporter.index_metrics() == 0
    assert not es.indices.exists(index=names.metrics)
    install_templates(es, names, None)
    ready.set()
    assert reporter.index_metrics() == 2 and c.get("metrics_errors") == 0
    mapping = es.indices.get_mapping(index=names.metrics)[names.metrics]["mappings"]
    assert mapping["properties"]["counters"] == {"type": "object", "enabled": False}
