"""Bench: what the behaviour detectors receive from Elasticsearch as the position density grows.

Rows, each through the real ingest pipeline into its own namespace:
- ``1x``, ``4x``, ``16x``: the ``planted`` scenario's 14 vessels over the window (8 h by default),
  replayed 1, 4 and 16 times with different report phases (more positions, same vessels); one
  ``detect run`` over the whole window;
- ``1x sched``: the same 1x data detected as ``detect schedule --every 10m`` does it: one run per
  10-minute window, each reading only its new slots (``SlotCache``), summed over the window;
- ``port``, ``port sched``: the ``port`` scenario, 40 class A ships at anchor or moored, which
  report every 3 min (the slowest rate: ~3 positions per 10-minute slot), whole window and scheduled;
- ``4x, 2-vessel pages ...``: the 4x read forced into pages of 2 vessels (``--pages``), by name
  from ships-seen's list (what more vessels than one request holds get), as composite pages and
  as terms partitions: the ES ``took`` column shows what each costs the cluster.

For each row: raw position bytes (the JSON of the position documents: what downloading them would
cost), bytes Elasticsearch returned to the detector (HTTP response bodies, counted by a node
class, the event writes included), their share, requests, the server's ``took`` summed over the
requests, and the detector's wall time. Whole-window rows: one warm-up run, then the median of 3
runs, each after deleting the events (so each writes them: the write path is in the numbers).

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/helpers.py: load_simulation

from helpers import load_simulation  # noqa: E402
from aiswatch.behavior.runner import Detector, run_scheduled  # noqa: E402
from aiswatch.behavior.scenarios import SCENARIOS  # noqa: E402
from aiswatch.behavior.metering import ByteMeter  # noqa: E402
from aiswatch.es_templates import IndexNames  # noqa: E402
from aiswatch.ingest.esclient import make_client  # noqa: E402

SCHEDULE_STEP_MS = 10 * 60_000


def delete_namespace(client, namespace: str) -> None:
    for row in client.cat.indices(index=namespace + "*", format="json", expand_wildcards="all"):
        client.indices.delete(index=row["index"], ignore_unavailable=True)
    for t in client.indices.get_index_template(name=namespace + "*").get("index_templates", []):
        client.indices.delete_index_template(name=t["name"])


def drop_events(client, names: IndexNames) -> None:
    for index in (names.events, names.state):
        client.indices.delete(index=index, ignore_unavailable=True)


def whole_window(url: str, client, names: IndexNames, since: int, until: int, repeats: int, **paging) -> dict:
    """One warm-up run, then ``repeats`` measured runs over [since, until); the median run.
    ``paging``: Detector keyword arguments (``paging``, ``page_vessels``)."""
    meter = ByteMeter()
    counted = make_client(url, node_class=meter.node_class(), request_timeout=300)
    runs = []
    try:
        for k in range(repeats + 1):
            drop_events(client, names)
            meter.reset()
            started = time.monotonic()
            result = Detector(counted, names, {}, **paging).run(since, until)
            seconds = time.monotonic() - started
            if k:   # the first one warms the server's caches and this process's
                runs.append({"received": meter.bytes, "requests": meter.requests, "took_ms": meter.took_ms,
                             "run_s": seconds, "events": len(result.events), "runs": 1})
    finally:
        counted.close()
    runs.sort(key=lambda r: r["run_s"])
    return runs[len(runs) // 2]


def scheduled(url: str, client, names: IndexNames, since: int, until: int) -> dict:
    """``detect schedule --every 10m`` over [since, until): one 10-minute window per run, summed."""
    drop_events(client, names)
    meter = ByteMeter()
    counted = make_client(url, node_class=meter.node_class(), request_timeout=300)
    detector = Detector(counted, names, {})
    lag = int(detector.settings["schedule"]["lag_minutes"] * 60_000)
    now = {"ms": since + lag}

    def clock():   # ten minutes later every time the scheduler looks
        now["ms"] += SCHEDULE_STEP_MS
        return now["ms"]

    windows = -(-(until - since) // SCHEDULE_STEP_MS) + 1
    try:
        started = time.monotonic()
        runs = run_scheduled(detector, every_s=0, start_ms=since, max_runs=windows, clock=clock, sleep=lambda s: None)
        seconds = time.monotonic() - started
    finally:
        counted.close()
    client.indices.refresh(index=names.events, ignore_unavailable=True)
    events = client.count(index=names.events)["count"] if client.indices.exists(index=names.events) else 0
    return {"received": meter.bytes, "requests": meter.requests, "took_ms": meter.took_ms, "run_s": seconds,
            "events": events, "runs": runs}


def measure(url: str, scenario: str, density: int, hours: float, t0: int, repeats: int, schedule: bool,
            pages: int = 0) -> list[dict]:
    client = make_client(url, request_timeout=300)
    names = IndexNames(f"bench{uuid.uuid4().hex[:6]}-")
    since, until = t0 * 1000, int((t0 + hours * 3600) * 1000)
    label = f"{density}x" if scenario == "planted" else scenario
    try:
        started = time.monotonic()
        loaded = load_simulation(client, names, SCENARIOS[scenario](t0, 0), t0, hours * 3600, density=density)
        load_s = time.monotonic() - started
        base = {"density": density, "positions": loaded.positions, "raw_bytes": loaded.position_bytes,
                "load_s": load_s}
        rows = [base | {"row": label} | whole_window(url, client, names, since, until, repeats)]
        if schedule:
            rows.append(base | {"row": f"{label} sched"} | scheduled(url, client, names, since, until))
        if pages:
            # the same read forced into pages of `pages` vessels: what each way of paging costs the cluster
            for paging in ("auto", "composite", "partitions"):
                way = {"auto": "by name", "composite": "composite", "partitions": "partitions"}[paging]
                rows.append(base | {"row": f"{label}, {pages}-vessel pages {way}"} | whole_window(
                    url, client, names, since, until, repeats, paging=paging, page_vessels=pages))
        return rows
    finally:
        delete_namespace(client, names.namespace)
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--es", default=None, help="Elasticsearch URL (default: start an osmem-server here)")
    ap.add_argument("--hours", type=float, default=8.0, help="hours of simulated traffic (default 8)")
    ap.add_argument("--densities", default="1,4,16")
    ap.add_argument("--repeats", type=int, default=3, help="measured whole-window runs per row (median)")
    ap.add_argument("--no-port", action="store_true", help="skip the port-heavy fleet rows")
    ap.add_argument("--pages", type=int, default=2,
                    help="also read the 4x data in pages of this many vessels, each way of paging (0: no)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = None
    url = args.es
    if url is None:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
        url = server.url
    t0 = int((time.time() - (args.hours + 2) * 3600) // 600 * 600) + 270   # off the slot grid, as the tests
    rows = []
    try:
        plan = [("planted", int(d), int(d) == 1, args.pages if int(d) == 4 else 0) for d in args.densities.split(",")]
        if not args.no_port:
            plan.append(("port", 1, True, 0))
        for scenario, density, schedule, pages in plan:
            rows += measure(url, scenario, density, args.hours, t0, args.repeats, schedule, pages)
            print(f"  {rows[-1]['row']} done ({rows[-1]['positions']} positions, load {rows[-1]['load_s']:.0f} s)",
                  file=sys.stderr)
    finally:
        if server is not None:
            server.close()
    base = rows[0]
    print("| row | positions | raw position bytes | bytes to detector | share of raw | bytes vs 1x | "
          "positions vs 1x | requests | ES took (sum) | detector run | run vs 1x | events |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        runs = f" ({r['runs']} runs)" if r["runs"] > 1 else ""
        print(f"| {r['row']} | {r['positions']:,} | {r['raw_bytes']:,} | {r['received']:,} | "
              f"{100 * r['received'] / r['raw_bytes']:.2f} % | {r['received'] / base['received']:.2f} | "
              f"{r['positions'] / base['positions']:.1f} | {r['requests']} | {r['took_ms']:,} ms | "
              f"{r['run_s']:.2f} s{runs} | {r['run_s'] / base['run_s']:.2f} | {r['events']} |")


if __name__ == "__main__":
    main()
