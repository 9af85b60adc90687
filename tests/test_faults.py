"""Fault tests: Elasticsearch stopped mid-replay, the daemon SIGKILLed with a non-empty spool.

(a) noida-db (data on disk) is stopped while the sink is sending and restarted a moment later
    (gracefully, and in a second test SIGKILLed while a bulk request is in flight):
    every message ends up indexed exactly once, ships-seen holds each vessel's newest position.
(b) ``aiswatch ingest file`` runs as a subprocess against an unreachable Elasticsearch, so its
    spool fills; it is SIGKILLed; a restart with Elasticsearch up delivers exactly what the spool
    held, and replaying the whole log afterwards still leaves one document per message.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aiswatch.es_templates import IndexNames
from aiswatch.ingest.counters import Counters
from aiswatch.embedded import free_port
from aiswatch.ingest.esclient import make_client
from aiswatch.ingest.lines import Line
from aiswatch.ingest.pipeline import Pipeline
from aiswatch.ingest.sink import ElasticsearchSink
from aiswatch.ingest.spool import DiskSpool
from helpers import MIDNIGHT, assert_ships, nmea_traffic, tag

pytestmark = pytest.mark.skipif(bool(os.environ.get("ES_URL")),
                                reason="stops and restarts its own Elasticsearch-compatible server")


def message_counts(es, names):
    es.indices.refresh(index=names.messages_pattern + "," + names.ships, ignore_unavailable=True)
    rows = es.cat.indices(index=names.namespace + "*", format="json")
    msgs = sum(int(r["docs.count"]) for r in rows if r["index"] != names.ships)
    ships = sum(int(r["docs.count"]) for r in rows if r["index"] == names.ships)
    return msgs, ships


def replay_setup(noida, tmp_path, namespace: str, batch_size: int):
    """A noida-db server, its client, and a sink + pipeline over 30 vessels' traffic into ``namespace``."""
    server = noida("es")
    es = make_client(server.url, request_timeout=5)
    names = IndexNames(namespace)
    lines, expected, per_day = nmea_traffic(n_ships=30, positions=80)
    counters = Counters()
    sink = ElasticsearchSink(es, names, counters, spool_dir=tmp_path / "spool",
                             dead_letter_path=tmp_path / "dead.ndjson", batch_size=batch_size, flush_seconds=0.1,
                             probe_max_seconds=0.5)
    return server, es, names, lines, expected, sum(per_day.values()), counters, sink, Pipeline(sink, counters)


def assert_exactly_once(es, names, counters, n_messages: int, expected: dict) -> None:
    """The outage really hit (spooled and replayed), and every message is indexed once."""
    assert counters.get("spooled_total") > 0 and counters.get("replayed_total") > 0
    assert counters.get("spool_depth") == 0 and counters.get("dead_letters") == 0
    assert message_counts(es, names) == (n_messages, len(expected))
    ids = {hit["_id"] for hit in es.search(index=names.messages_pattern, size=10000, _source=False)["hits"]["hits"]}
    assert len(ids) == n_messages
    assert_ships(es, names, expected)


def test_es_stopped_mid_replay_and_restarted_loses_and_duplicates_nothing(noida, tmp_path):
    server, es, names, lines, expected, n_messages, counters, sink, pipeline = replay_setup(
        noida, tmp_path, "fault-", batch_size=300)
    third = len(lines) // 3
    fed_first, es_stopped, fed_second, es_restarted = (threading.Event() for _ in range(4))

    def feed():
        chunks = [(0, third, fed_first, es_stopped), (third, 2 * third, fed_second, es_restarted),
                  (2 * third, len(lines), None, None)]
        for start, end, done, wait_for in chunks:
            for i in range(start, end):
                pipeline.feed(Line(lines[i], 1_800_000_000.0, "file:fault.nmea", offset=i))
                if i % 100 == 0:
                    time.sleep(0.005)  # keep the writer busy sending while the server goes away
            if done is not None:
                done.set()
                assert wait_for.wait(60)
        pipeline.finish()

    feeder = threading.Thread(target=feed)
    feeder.start()
    assert fed_first.wait(60)
    server.stop()  # graceful: noida-db keeps what it acknowledged
    es_stopped.set()
    assert fed_second.wait(60)
    time.sleep(0.5)
    server.start()
    es_restarted.set()
    feeder.join(60)
    sink.close(drain_seconds=60)

    assert_exactly_once(es, names, counters, n_messages, expected)
    es.close()


def spooled_records(spool_dir: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in spool_dir.glob("seg-*.ndjson"))


def run_daemon(args, tmp_path, **popen):
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"), AISWATCH_LOG_LEVEL="INFO",
               AISWATCH_METRICS__STATUS_FILE=str(tmp_path / "status.json"))
    env.pop("ES_URL", None)
    cmd = [sys.executable, "-c", "from aiswatch.cli import main; main()", "ingest", "file", *args]
    return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def test_daemon_sigkilled_with_spool_then_restart_delivers_it(noida, tmp_path):
    burst = 400  # lines stamped with the same second: replayed at once, then real-time pacing
    lines, expected, per_day = nmea_traffic(n_ships=20, positions=40, start=MIDNIGHT - 3600)
    t0 = MIDNIGHT - 3600
    while lines[burst].split("!AIVDM,")[1].startswith("2,2"):
        burst += 1  # never separate a type 5's two fragments
    burst_lines = [tag(line.split("\\")[-1], t0) for line in lines[:burst]]
    burst_messages = sum(1 for line in burst_lines if ",2,2," not in line)
    slow_lines = lines[burst:]
    log_path = tmp_path / "feed.nmea"
    log_path.write_text("\n".join(burst_lines + slow_lines) + "\n")
    spool = tmp_path / "spool"
    common = ["--namespace", "kill-", "--spool-dir", str(spool), "--dead-letter", str(tmp_path / "dead.ndjson")]

    port = free_port()  # nothing listens there yet; the cluster comes up there for the restart
    dead_url = f"http://127.0.0.1:{port}"
    proc = run_daemon([str(log_path), "--rate", "realtime", "--es", dead_url, *common], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while spooled_records(spool) < burst_messages and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("daemon exited early:\n" + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    in_spool = spooled_records(spool)
    assert in_spool >= burst_messages
    assert not (spool / "ack.json").exists()  # nothing was delivered: ES was never reachable

    server = noida("es", port=port)  # the spool is for this cluster: delivered only there
    es = make_client(server.url)
    names = IndexNames("kill-")
    empty = tmp_path / "empty.nmea"
    empty.write_text("")
    restart = run_daemon([str(empty), "--es", server.url, *common], tmp_path)
    out, _ = restart.communicate(timeout=120)
    assert restart.returncode == 0, out.decode(errors="replace")
    assert message_counts(es, names)[0] == in_spool
    assert DiskSpool(spool).depth == 0

    # the whole log again: the spooled messages are among them, and nothing is counted twice
    again = run_daemon([str(log_path), "--es", server.url, *common], tmp_path)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0, out.decode(errors="replace")
    assert message_counts(es, names) == (sum(per_day.values()), len(expected))
    es.close()


def test_es_killed_while_a_bulk_request_is_in_flight_loses_and_duplicates_nothing(noida, tmp_path):
    """SIGKILL, not a graceful stop, timed to land inside a bulk request: the request fails half-way
    (some of its items may be written, none acknowledged to us), the batch is spooled and replayed
    after the restart; content-derived ids turn whatever was written twice into overwrites.

    noida-db writes what it acknowledged to disk about once a second (a SIGKILL loses the last
    second; Elasticsearch fsyncs its translog before it acknowledges), so the test waits 2 s after
    the acknowledged part before it arms the kill: what is tested is our side of the exchange."""
    server, es, names, lines, expected, n_messages, counters, sink, pipeline = replay_setup(
        noida, tmp_path, "kill9-", batch_size=500)
    armed, killed, cut_in_flight = threading.Event(), threading.Event(), threading.Event()
    real_bulk = es.bulk

    def bulk_with_a_kill_inside(**kwargs):
        # the server dies 20 ms into the request (noida-db takes ~50 ms for 500 documents)
        if armed.is_set() and not killed.is_set():
            killed.set()
            threading.Timer(0.02, server.kill).start()
            try:
                return real_bulk(**kwargs)
            except Exception:
                cut_in_flight.set()  # this request, not a later one, met the dead server
                raise
        return real_bulk(**kwargs)

    es.bulk = bulk_with_a_kill_inside
    feed = (Line(text, 1_800_000_000.0, "file:kill9.nmea", offset=i) for i, text in enumerate(lines))
    third = len(lines) // 3
    for _ in range(third):
        pipeline.feed(next(feed))
    assert sink.flush(60) and counters.get("documents_indexed") > 0
    time.sleep(2.0)  # what was acknowledged is on noida-db's disk now
    armed.set()
    for line in feed:
        pipeline.feed(line)
        if killed.is_set():
            break
    assert killed.wait(60)
    while server.process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    server.start()  # same data directory, same port
    for line in feed:
        pipeline.feed(line)
    pipeline.finish()
    sink.close(drain_seconds=60)

    assert cut_in_flight.is_set()
    assert_exactly_once(es, names, counters, n_messages, expected)
    es.close()
