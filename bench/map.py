"""Bench: what the Natural Earth land under ``aiswatch map`` costs, against the map without it.

The README picture's traffic (``aiswatch simulate --vessels 60 --duration 2h --start
2026-03-14T08:00:00 --seed 3 --scenario planted``) goes through ``aiswatch ingest file`` into its
own namespace; then the vessel map is rendered to PNG (960 x 640) in these views:

- ``North Sea``: every ship of the 2 hours (the README picture);
- ``Rotterdam``: the ships inside 51.85-52.1 N, 3.5-4.4 E only (a dashboard filter, as Kibana's
  query bar would add), the map zoomed to the harbour mouth;
- ``no data``: an empty time range, the spec's own view (``config.kibana``, zoom 6);
- ``world``: an empty time range with the spec's zoom set to 1 (every continent: the most land).

Each view is rendered with land and without (the graticule alone, which is what the map drew
before land), alternating, ``--rounds`` times; the medians of ``prepare`` (queries + projection +
land) and of ``to_png`` are printed with their ratio to the map without land, plus the size of the
Vega spec handed to the renderer and the number of land points in it. The first load of the land
data in a fresh process is timed apart (after importing numpy, which is timed too).

    python bench/map.py                      # osmem-server started here
    python bench/map.py --es http://localhost:9200 --rounds 7
    python bench/map.py --save /tmp/maps     # also write each view's PNG with land there
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiswatch.ingest.esclient import make_client  # noqa: E402
from aiswatch.kibana import load_spec  # noqa: E402
from aiswatch.kibana.placeholders import KibanaContext  # noqa: E402
from aiswatch.kibana.render import prepare, to_png  # noqa: E402

START = dt.datetime(2026, 3, 14, 8, 0, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(hours=2)
ROTTERDAM = {"geo_bounding_box": {"location": {"top_left": {"lat": 52.1, "lon": 3.5},
                                               "bottom_right": {"lat": 51.85, "lon": 4.4}}}}


def aiswatch(*args: str) -> None:
    subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", *args], check=True,
                   capture_output=True, text=True, cwd=ROOT)


def load_traffic(url: str, namespace: str, workdir: Path) -> None:
    log = workdir / "sim.nmea"
    aiswatch("simulate", "--vessels", "60", "--duration", "2h", "--start", "2026-03-14T08:00:00", "--seed", "3",
             "--scenario", "planted", "--out", str(log))
    aiswatch("ingest", "file", str(log), "--es", url, "--namespace", namespace, "--no-progress")


def first_load_ms() -> tuple[float, float]:
    """(importing numpy, then importing kibana.land and reading the data), in ms, in a fresh process."""
    code = ("import time; t0 = time.perf_counter(); import numpy; t1 = time.perf_counter()\n"
            "from kibana.land import load_land; load_land(); t2 = time.perf_counter()\n"
            "print((t1 - t0) * 1000, (t2 - t1) * 1000)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    numpy_ms, land_ms = map(float, out.stdout.split())
    return numpy_ms, land_ms


def measure(client, namespace: str, spec: dict, ctx: KibanaContext, rounds: int, save: Path | None) -> dict:
    times: dict[bool, dict[str, list[float]]] = {True: {"prepare": [], "png": []}, False: {"prepare": [], "png": []}}
    sizes = {}
    for _ in range(rounds):
        for land in (False, True):
            t0 = time.perf_counter()
            vega, counts = prepare(spec, client, ctx, namespace, 960, 640, "bench", land=land)
            t1 = time.perf_counter()
            png = to_png(vega)
            t2 = time.perf_counter()
            if save is not None and land:
                save.write_bytes(png)
            times[land]["prepare"].append(t1 - t0)
            times[land]["png"].append(t2 - t1)
            paths = next((d["values"] for d in vega["data"] if d["name"] == "land-polygons"), [])
            sizes[land] = (len(json.dumps(vega)), sum(p["path"].count("L") + 1 for p in paths), counts.get("ships", 0))
    med = {land: {k: statistics.median(v) * 1000 for k, v in t.items()} for land, t in times.items()}
    return {"med": med, "sizes": sizes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--es", default=None, help="Elasticsearch URL (default: start an osmem-server here)")
    ap.add_argument("--rounds", type=int, default=5, help="renders of each view with and without land (median)")
    ap.add_argument("--save", type=Path, default=None, help="directory to write each view's PNG (with land) to")
    args = ap.parse_args()
    server = None
    url = args.es
    if url is None:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
        url = server.url
    namespace = f"benchmap{uuid.uuid4().hex[:6]}-"
    client = make_client(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            load_traffic(url, namespace, Path(tmp))
        client.indices.refresh(index=namespace + "*")
        world = load_spec("vessel_map")
        world["config"]["kibana"]["zoom"] = 1
        empty = KibanaContext(START - dt.timedelta(days=30), START - dt.timedelta(days=29))
        views = [("North Sea", load_spec("vessel_map"), KibanaContext(START, END)),
                 ("Rotterdam", load_spec("vessel_map"), KibanaContext(START, END, {"filter": [ROTTERDAM]})),
                 ("no data", load_spec("vessel_map"), empty),
                 ("world", world, empty)]
        cold = first_load_ms()
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
        rows = [(name, measure(client, namespace, spec, ctx, args.rounds,
                               args.save / f"{name.replace(' ', '-').lower()}.png" if args.save else None))
                for name, spec, ctx in views]
    finally:
        client.indices.delete(index=namespace + "*", ignore_unavailable=True, allow_no_indices=True)
        client.close()
        if server is not None:
            server.close()
    print(f"first load in a fresh process: importing numpy {cold[0]:.0f} ms, then kibana.land and its data "
          f"(read + decode) {cold[1]:.0f} ms")
    print("| view | ships | prepare without land | with land | ratio | PNG without land | with land | ratio "
          "| total ratio | Vega spec without / with land | land points |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        off, on = r["med"][False], r["med"][True]
        total = (on["prepare"] + on["png"]) / (off["prepare"] + off["png"])
        print(f"| {name} | {r['sizes'][True][2]} | {off['prepare']:.0f} ms | {on['prepare']:.0f} ms | "
              f"{on['prepare'] / off['prepare']:.2f} | {off['png']:.0f} ms | {on['png']:.0f} ms | "
              f"{on['png'] / off['png']:.2f} | {total:.2f} | {r['sizes'][False][0] / 1024:.0f} KB / "
              f"{r['sizes'][True][0] / 1024:.0f} KB | {r['sizes'][True][1]:,} |")


if __name__ == "__main__":
    main()
