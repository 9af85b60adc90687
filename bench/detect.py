"""Bench: what the behaviour detectors receive from Elasticsearch as the position density grows.

For 1x, 4x and 16x the positions over the same vessels (the ``planted`` scenario replayed with
different report phases, through the real ingest pipeline), it runs every detector over the
window and prints: raw position bytes (the JSON of the position documents: what downloading them
would cost), bytes returned by Elasticsearch to the detector (HTTP response bodies, counted by a
node class), their ratio, the growth against 1x, and the detector's run time.

    python bench/detect.py                       # osmem-server started here, 8 h of traffic
    python bench/detect.py --es http://localhost:9200 --hours 24 --densities 1,4,16

The acceptance bound: bytes returned <= 5 % of the raw position bytes, growing sublinearly.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from behavior.loader import load_simulation  # noqa: E402
from behavior.runner import Detector  # noqa: E402
from behavior.scenarios import SCENARIOS  # noqa: E402
from behavior.tracks import ByteMeter  # noqa: E402
from es_templates import IndexNames  # noqa: E402
from ingest.esclient import make_client  # noqa: E402


def delete_namespace(client, namespace: str) -> None:
    for row in client.cat.indices(index=namespace + "*", format="json", expand_wildcards="all"):
        client.indices.delete(index=row["index"], ignore_unavailable=True)
    for t in client.indices.get_index_template(name=namespace + "*").get("index_templates", []):
        client.indices.delete_index_template(name=t["name"])


def measure(url: str, density: int, hours: float, t0: int) -> dict:
    client = make_client(url, request_timeout=300)
    names = IndexNames(f"bench{uuid.uuid4().hex[:6]}-")
    try:
        started = time.monotonic()
        loaded = load_simulation(client, names, SCENARIOS["planted"](t0, 0), t0, hours * 3600, density=density)
        load_s = time.monotonic() - started
        meter = ByteMeter()
        counted = make_client(url, node_class=meter.node_class(), request_timeout=300)
        try:
            started = time.monotonic()
            result = Detector(counted, names, {}).run(t0 * 1000, int((t0 + hours * 3600) * 1000), write=False)
            run_s = time.monotonic() - started
        finally:
            counted.close()
        return {"density": density, "positions": loaded.positions, "raw_bytes": loaded.position_bytes,
                "received": meter.bytes, "requests": meter.requests, "run_s": run_s, "load_s": load_s,
                "events": len(result.events), "slots": result.slots}
    finally:
        delete_namespace(client, names.namespace)
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--es", default=None, help="Elasticsearch URL (default: start an osmem-server here)")
    ap.add_argument("--hours", type=float, default=8.0, help="hours of simulated traffic (default 8)")
    ap.add_argument("--densities", default="1,4,16")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = None
    url = args.es
    if url is None:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
        url = server.url
    t0 = int((time.time() - (args.hours + 2) * 3600) // 600 * 600)
    rows = []
    try:
        for density in (int(d) for d in args.densities.split(",")):
            rows.append(measure(url, density, args.hours, t0))
            print(f"  {density}x done ({rows[-1]['positions']} positions, load {rows[-1]['load_s']:.0f} s)",
                  file=sys.stderr)
    finally:
        if server is not None:
            server.close()
    base = rows[0]
    print(f"| density | positions | raw position bytes | bytes to detector | share of raw | bytes vs 1x | "
          f"positions vs 1x | requests | detector run | run vs 1x | events |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['density']}x | {r['positions']:,} | {r['raw_bytes']:,} | {r['received']:,} | "
              f"{100 * r['received'] / r['raw_bytes']:.2f} % | {r['received'] / base['received']:.2f} | "
              f"{r['positions'] / base['positions']:.1f} | {r['requests']} | {r['run_s']:.2f} s | "
              f"{r['run_s'] / base['run_s']:.2f} | {r['events']} |")


if __name__ == "__main__":
    main()
