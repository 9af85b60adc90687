"""Slow-cluster benchmark: does intake keep the source's rate while every ``_bulk`` takes 20 s?

    python bench/slow_cluster.py                   # 5,000 lines/s for 60 s, bulk answered after 20 s
    python bench/slow_cluster.py --rate 10000 --seconds 30 --delay 20

What ``aiswatch ingest udp`` runs (``run_sources`` with a ``UDPSource``, the default sink settings)
against ``bench/bulk_ack_server.py`` answering each ``_bulk`` after ``--delay`` seconds, fed by a
separate sender process at ``--rate`` lines/s (bursts every 50 ms, 1-3 lines a datagram, every
line its own message time, so its own document). When the sender is done the server answers at
once again (the cluster "catches up") and the run goes on until every document is acknowledged.

Printed: lines the pipeline took in while the source sent, as a share of what was sent (the
intake ratio, the target is >= 0.95); documents spooled meanwhile; the most documents held in
memory (queue, staging, the batch in flight) and the peak RSS; the time to drain once the
cluster keeps up; and the exact counts: sent, kernel and own drops, distinct ids acknowledged.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
T0_MS = 1_763_164_800_000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=5000, help="lines per second the source sends")
    p.add_argument("--seconds", type=int, default=60, help="how long it sends")
    p.add_argument("--delay", type=float, default=20.0, help="seconds before each _bulk is answered while it sends")
    args = p.parse_args()
    sys.path.insert(0, str(HERE.parent / "tests"))
    from helpers import UDP_SENDER

    from aiswatch.config import load_config
    from aiswatch.ingest.counters import Counters
    from aiswatch.ingest.sources.udp import UDPSource
    from aiswatch.runner import IngestOptions, run_sources

    total = args.rate * args.seconds
    server = subprocess.Popen([sys.executable, str(HERE / "bulk_ack_server.py"), "--delay", str(args.delay),
                               "--count-ids"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip().split(" ", 1)[1]

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=30) as resp:
            return json.loads(resp.read())

    work = Path(tempfile.mkdtemp(prefix="aiswatch-slow-"))
    counters = Counters()
    source = UDPSource("127.0.0.1", 0, counters)
    cfg = load_config(environ={})
    cfg["metrics"]["status_file"] = str(work / "status.json")
    opts = IngestOptions(es_url=url, namespace="slow-", spool_dir=str(work / "spool"),
                         dead_letter=str(work / "dead.ndjson"))
    runner = threading.Thread(target=run_sources, args=(cfg, lambda c: [source], opts, counters))
    runner.start()
    print(f"# slow cluster: {args.rate} lines/s for {args.seconds} s, every _bulk answered after {args.delay} s, "
          f"queue {cfg['sink']['queue_size']}, batch {cfg['sink']['batch_size']}", flush=True)
    sender = subprocess.Popen([sys.executable, "-c", UDP_SENDER, str(source.port), str(total), str(args.rate),
                               "0.05", str(T0_MS)], stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    held = 0.0
    while sender.poll() is None:
        held = max(held, counters.get("queued"))
        time.sleep(0.1)
    sent_in = time.monotonic() - started
    taken_in = counters.get("lines_in")
    spooled = counters.get("spooled_total")
    print(f"sent {total} lines in {sent_in:.1f} s; the pipeline took in {taken_in:.0f} meanwhile "
          f"(intake ratio {taken_in / total:.3f}); {spooled:.0f} documents spooled; "
          f"acknowledged so far {call('/_bench/stats')['unique'].get('slow-ais', 0)}", flush=True)
    call("/_bench/delay", {"seconds": 0})
    caught_up = time.monotonic()
    while True:
        held = max(held, counters.get("queued"))
        acked = call("/_bench/stats")["unique"].get("slow-ais", 0)
        if acked >= total and not counters.get("spool_depth"):
            break
        if time.monotonic() - caught_up > 900:
            print("gave up waiting for the drain", flush=True)
            break
        time.sleep(0.5)
    drained_in = time.monotonic() - caught_up
    source.close()
    runner.join()
    stats = call("/_bench/stats")
    server.stdin.close()
    server.wait(10)
    snap = counters.snapshot()
    rss_mb = _peak_rss_mb()
    kernel = int(snap.get(f"source.{source.id}.kernel_drops", 0))
    own = int(snap.get(f"source.{source.id}.dropped", 0))
    print(f"drained in {drained_in:.1f} s once the cluster kept up; at most {held:.0f} documents in memory; "
          f"peak RSS {rss_mb:.0f} MB", flush=True)
    print(f"counts: sent {total}, lines in {int(snap['lines_in'])}, kernel drops {kernel}, own drops {own}, "
          f"indexed {int(snap['documents_indexed'])}, distinct ids acknowledged {stats['unique'].get('slow-ais', 0)}, "
          f"actions received {stats['actions']} (ships-seen included), spooled {int(snap['spooled_total'])}, "
          f"replayed {int(snap['replayed_total'])}, lost {int(snap.get('documents_lost', 0))}", flush=True)
    ok = (taken_in >= 0.95 * total and kernel == own == 0 and stats["unique"].get("slow-ais", 0) == total
          and int(snap["documents_indexed"]) == total and not snap.get("documents_lost"))
    print("RESULT", "ok" if ok else "NOT MET", flush=True)


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
