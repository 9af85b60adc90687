"""A slow cluster must not slow the intake: UDP at 5,000 lines/s against a ``_bulk`` that answers
late keeps the source's rate (the documents go to the spool in batches), memory stays bounded,
and once the cluster keeps up again every document is delivered, exactly once.

The cluster is ``bench/bulk_ack_server.py`` in its own process, answering every ``_bulk`` after a
delay until told otherwise, counting the distinct ids it acknowledged. bench/slow_cluster.py is
the long form (20 s answers, 300,000 lines).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from aiswatch.config import load_config
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.sources.udp import UDPSource
from aiswatch.runner import IngestOptions, run_sources
from helpers import UDP_SENDER

ROOT = Path(__file__).resolve().parent.parent
T0_MS = 1_763_164_800_000


class SlowCluster:
    """bench/bulk_ack_server.py with --delay and --count-ids, in its own process."""

    def __init__(self, delay: float) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bulk_ack_server.py"), "--delay",
                                      str(delay), "--count-ids"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        ready = self.proc.stdout.readline().strip()
        assert ready.startswith("READY "), ready
        self.url = ready.split(" ", 1)[1]

    def call(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + path, data=data), timeout=10) as resp:
            return json.loads(resp.read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def test_a_slow_bulk_endpoint_does_not_slow_the_intake(tmp_path):
    rate, seconds, delay = 5000, 6, 4.0
    total = rate * seconds
    queue_size, batch_size = 4000, 1000
    cluster = SlowCluster(delay)
    counters = Counters()
    source = UDPSource("127.0.0.1", 0, counters)
    cfg = load_config(environ={})
    cfg["metrics"]["status_file"] = str(tmp_path / "status.json")
    cfg["sink"]["queue_size"] = queue_size
    opts = IngestOptions(es_url=cluster.url, namespace="bp-", spool_dir=str(tmp_path / "spool"),
                         dead_letter=str(tmp_path / "dead.ndjson"), batch_size=batch_size)
    runner = threading.Thread(target=run_sources, args=(cfg, lambda c: [source], opts, counters))
    held = []   # documents in memory (queued, staged, in flight), sampled
    try:
        runner.start()
        sender = subprocess.Popen([sys.executable, "-c", UDP_SENDER, str(source.port), str(total), str(rate),
                                   "0.05", str(T0_MS)], stdout=subprocess.PIPE, text=True)
        started = time.monotonic()
        while sender.poll() is None:
            held.append(counters.get("queued"))
            time.sleep(0.1)
        sent_in = time.monotonic() - started
        taken_in = counters.get("lines_in")   # what the pipeline took while the source sent
        spooled = counters.get("spooled_total")
        cluster.call("/_bench/delay", {"seconds": 0})   # the cluster keeps up again
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if cluster.call("/_bench/stats")["unique"].get("bp-ais", 0) >= total and not counters.get("spool_depth"):
                break
            time.sleep(0.5)
    finally:
        source.close()
        runner.join(60)
        acknowledged = cluster.call("/_bench/stats")["unique"]
        cluster.close()
    assert not runner.is_alive()
    snap = counters.snapshot()
    print(f"sent {total} lines in {sent_in:.1f} s; taken in meanwhile {taken_in:.0f} ({taken_in / total:.3f}); "
          f"spooled by then {spooled:.0f}; most held in memory {max(held):.0f}")
    assert taken_in >= 0.95 * total                       # intake kept the source's rate
    assert spooled > 0                                    # ... because the spool took the overflow
    assert max(held) <= queue_size + 4 * batch_size       # memory bounded: queue, staging, one batch
    assert acknowledged["bp-ais"] == total                # every document delivered ...
    assert snap["source.udp:127.0.0.1:%d.kernel_drops" % source.port] == 0
    assert snap.get("source.udp:127.0.0.1:%d.dropped" % source.port, 0) == 0
    assert snap["lines_in"] == snap["messages_decoded"] == total
    assert snap["documents_indexed"] == total             # ... once
    assert snap.get("documents_lost", 0) == 0 and snap["spool_depth"] == 0
    assert snap["replayed_total"] > 0                     # the spool drained once the cluster kept up
