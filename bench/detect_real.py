"""Bench: the behaviour detectors on real AIS traffic, scored by rules a reviewer can check without labels.

Data: the PyPI package ``tracktable-data`` (NOAA/MarineCadastre points, terrestrial receivers),
fetched at run time with pip into a cache outside the repository (``--cache``; never committed):
- ``US_coastal_2020_06_30.traj``: one day of US coastal traffic, 1,185 MMSIs, ~236k points;
- ``NYHarbor_2020_12_first_week.traj``: a week of New York harbour, 140 MMSIs, ~173k points.

Conversion: every point becomes a tagged type 1 sentence (pyais ``encode_dict``; tag block
``\\c:<unix s>*hh\\`` carries the time). The files have no speed or course, so they are derived
from neighbouring points, the way each transponder's own GNSS would report them: the points of one
MMSI are first split into transmitters (a point continues the transmitter whose last point it can
reach at <= 60 kn, the nearest one; else it starts another), then speed and course come from the
previous and next point of the same transmitter. Without that split, an MMSI shared by two boats
10 nm apart would "report" 300 kn built from the other boat's positions, which no real transponder
sends. ``--speeds neighbours`` derives them from the MMSI's plain neighbours instead.

Each file is ingested through the real ``aiswatch ingest file`` path into its own namespace of a test
engine this script starts (osmem-server: it has the aggregations detection needs) or ``--es``.
Detection is ``Detector.run`` over the whole period (what ``aiswatch detect run`` calls), in a
subprocess with a byte-counting client; with ``--baseline REF`` the detector of that git commit
runs on the same data first (its ``behavior/`` exported to a temporary directory), so before and
after are measured in the same run on the same engine. Then ``aiswatch detect run --json`` is rerun
as a user would and its lines are compared with the stored events.

Printed per dataset and code: events by type/subtype, events per 1,000 vessel-days (vessel-day =
one MMSI with positions on one UTC day), the false ones by label-free rules:
- an encounter or loitering involving a number that is not a ship's MMSI by ITU-R M.585 (nine
  digits, first digit 2-7, MID 201-775);
- an encounter within 1 nm of land by the GLOBE 1 km land mask (``global-land-mask``, read here
  directly, not through the detector's grid);
and which of the shared MMSIs (368134280, 338010925, 316039006, 367541980) are reported as a jump
or a shared MMSI, detection wall time, requests, ES ``took``, bytes returned vs raw position bytes
(the JSON of the position documents the ingest builds from the same sentences).

    python bench/detect_real.py                              # current code only
    python bench/detect_real.py --baseline 3d7b064           # before/after in one run
    python bench/detect_real.py --es http://localhost:9200 --datasets us
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PACKAGE = "tracktable-data==1.7.3.1"
DATASETS = {
    "us": ("US_coastal_2020_06_30.traj", "US coastal day 2020-06-30"),
    "ny": ("NYHarbor_2020_12_first_week.traj", "New York harbour week 2020-12"),
}
SHARED_MMSIS = ("368134280", "338010925", "316039006", "367541980")
MAX_TRANSMITTER_KN = 60.0
KM_PER_NM = 1.852


# -- data ---------------------------------------------------------------------------------------------

def fetch_tracktable(cache: Path, wheel: str | None = None) -> Path:
    """The directory holding the .traj files, from ``wheel`` or pip-downloaded into ``cache``."""
    out = cache / "tracktable_data"
    if all((out / name).is_file() for name, _ in DATASETS.values()):
        return out
    cache.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        found = sorted(cache.glob("tracktable_data-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                            "-d", str(cache), PACKAGE], check=True)
            found = sorted(cache.glob("tracktable_data-*.whl"))
        wheel = str(found[-1])
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = Path(info.filename).name
            if name in {n for n, _ in DATASETS.values()}:
                (out / name).write_bytes(zf.read(info))
    return out


def read_traj(path: Path) -> dict[str, list[tuple[int, float, float]]]:
    """{mmsi: [(unix s, lat, lon)]} sorted by time, one point per second per MMSI.

    A line is ``*T*,<id>,<domain>,<n points>,<n props>,*P*,...`` followed by n points of
    (MMSI, 'YYYY-MM-DD HH:MM:SS', lon, lat)."""
    points: dict[str, dict[int, tuple[float, float]]] = collections.defaultdict(dict)
    for line in path.read_text().splitlines():
        parts = line.rstrip().split(",")
        if not parts or parts[0] != "*T*":
            continue
        n = int(parts[3])
        rows = parts[len(parts) - 4 * n:]
        for i in range(n):
            mmsi, when, lon, lat = rows[4 * i:4 * i + 4]
            t = int(dt.datetime.fromisoformat(when).replace(tzinfo=dt.timezone.utc).timestamp())
            points[mmsi][t] = (float(lat), float(lon))
    return {m: sorted((t, la, lo) for t, (la, lo) in d.items()) for m, d in points.items()}


def _km(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a)))


def _course(lat1, lon1, lat2, lon2) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def transmitters(points: list[tuple[int, float, float]]) -> list[list[int]]:
    """Indices of ``points`` split into continuous transmitters (see the module docstring)."""
    tracks: list[list[int]] = []
    for i, (t, lat, lon) in enumerate(points):
        best, best_km = None, math.inf
        for k, track in enumerate(tracks):
            t0, la0, lo0 = points[track[-1]]
            km = _km(la0, lo0, lat, lon)
            if km / KM_PER_NM <= MAX_TRANSMITTER_KN * max(t - t0, 1) / 3600.0 and km < best_km:
                best, best_km = k, km
        if best is None:
            tracks.append([i])
        else:
            tracks[best].append(i)
    return tracks


def motion(points: list[tuple[int, float, float]], mode: str) -> list[tuple[float | None, float | None]]:
    """(speed kn, course deg) per point from its neighbours (``transmitters`` or plain ``neighbours``)."""
    groups = transmitters(points) if mode == "transmitters" else [list(range(len(points)))]
    out: list[tuple[float | None, float | None]] = [(None, None)] * len(points)
    for idx in groups:
        for j, i in enumerate(idx):
            a = points[idx[j - 1]] if j > 0 else points[i]
            b = points[idx[j + 1]] if j + 1 < len(idx) else points[i]
            dt_s = b[0] - a[0]
            if dt_s <= 0 or dt_s > 3600:   # alone, or neighbours an hour away: not available
                continue
            km = _km(a[1], a[2], b[1], b[2])
            speed = min(km / KM_PER_NM / (dt_s / 3600.0), 102.2)
            course = _course(a[1], a[2], b[1], b[2]) if km > 0.005 else None
            out[i] = (speed, course)
    return out


def nmea_checksum(text: str) -> str:
    x = 0
    for ch in text.encode():
        x ^= ch
    return f"{x:02X}"


def write_nmea(tracks: dict[str, list[tuple[int, float, float]]], path: Path, speeds: str) -> int:
    """Tagged type 1 sentences for every point, in time order. Returns the number of lines."""
    from pyais.encode import encode_dict

    lines = []
    for mmsi, points in tracks.items():
        for (t, lat, lon), (sog, cog) in zip(points, motion(points, speeds)):
            msg = {"type": 1, "mmsi": int(mmsi), "lat": lat, "lon": lon, "heading": 511, "status": 15,
                   "speed": 102.3 if sog is None else round(sog, 1), "course": 360.0 if cog is None else round(cog, 1)}
            tag = f"c:{t}"
            for sentence in encode_dict(msg, talker_id="AI", sentence_type="VDM", radio_channel="A"):
                lines.append((t, f"\\{tag}*{nmea_checksum(tag)}\\{sentence}"))
    lines.sort(key=lambda x: x[0])
    path.write_text("".join(text + "\n" for _, text in lines))
    return len(lines)


def vessel_days(tracks) -> int:
    return sum(len({dt.datetime.fromtimestamp(t, dt.timezone.utc).date() for t, _, _ in pts}) for pts in tracks.values())


def raw_position_bytes(path: Path) -> tuple[int, int]:
    """(positions, JSON bytes of their documents) as the ingest builds them from ``path``."""
    from aiswatch.ingest.lines import Line
    from aiswatch.ingest.pipeline import Pipeline

    class Count:
        positions = 0
        size = 0

        def submit(self, doc):
            if doc.get("msg_kind") == "position":
                Count.positions += 1
                Count.size += len(json.dumps({k: v for k, v in doc.items() if not k.startswith("_")},
                                             separators=(",", ":")))

        def flush(self):
            pass

    pipeline = Pipeline(Count())
    with path.open() as f:
        for text in f:
            pipeline.feed(Line(text.rstrip("\n"), 0.0, "file"))
    pipeline.finish()
    return Count.positions, Count.size


# -- label-free rules -----------------------------------------------------------------------------------

def is_ship_mmsi(mmsi: str) -> bool:
    """ITU-R M.585: a ship station is MID + 6 digits, the MID 201-775 (first digit 2-7)."""
    return len(mmsi) == 9 and mmsi.isdigit() and 201 <= int(mmsi[:3]) <= 775


class LandWithin:
    """Is there land (GLOBE 1 km mask, ``global-land-mask``) within ``km`` of a point?"""

    def __init__(self):
        from global_land_mask import globe

        self.mask = globe._mask          # True = ocean, 1/120 degree cells from 90 N and 180 W
        self.lat, self.lon = globe._lat, globe._lon

    def __call__(self, lat: float, lon: float, km: float) -> bool:
        import numpy as np

        step = 1 / 120.0
        dlat = km / 111.0 + step
        dlon = dlat / max(math.cos(math.radians(lat)), 0.05)
        rows = np.nonzero((self.lat >= lat - dlat) & (self.lat <= lat + dlat))[0]
        cols = np.nonzero((self.lon >= lon - dlon) & (self.lon <= lon + dlon))[0]
        window = ~self.mask[np.ix_(rows, cols)]
        rr, cc = np.nonzero(window)
        if rr.size == 0:
            return False
        la, lo = np.radians(self.lat[rows[rr]]), np.radians(self.lon[cols[cc]])
        p = math.radians(lat)
        a = np.sin((la - p) / 2) ** 2 + math.cos(p) * np.cos(la) * np.sin((lo - math.radians(lon)) / 2) ** 2
        return bool((2 * 6371.0088 * np.arcsin(np.sqrt(a))).min() <= km)


def false_reasons(event: dict, land: LandWithin) -> list[str]:
    out = []
    if event["type"] in ("encounter", "loitering") and not all(is_ship_mmsi(m) for m in event["mmsi"]):
        out.append("non-ship MMSI")
    if event["type"] == "encounter" and event.get("lat") is not None and land(event["lat"], event["lon"], KM_PER_NM):
        out.append("within 1 nm of land")
    return out


# -- ingest and detection ---------------------------------------------------------------------------------

def aiswatch(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "from aiswatch.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, **kw)


DETECT_SNIPPET = r"""
import json, sys, time
try:   # a baseline from before the packages moved under aiswatch.* (its folders on PYTHONPATH)
    from aiswatch.behavior.runner import Detector
    from aiswatch.behavior.metering import ByteMeter
    from aiswatch.es_templates import IndexNames
    from aiswatch.ingest.esclient import make_client
    import behavior
except ImportError:
    from aiswatch.behavior.runner import Detector
    from aiswatch.behavior.metering import ByteMeter
    from aiswatch.es_templates import IndexNames
    from aiswatch.ingest.esclient import make_client
    from aiswatch import behavior
url, ns, since, until = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
meter = ByteMeter()
client = make_client(url, node_class=meter.node_class(), request_timeout=600)
started = time.monotonic()
result = Detector(client, IndexNames(ns), {}).run(since, until)
seconds = time.monotonic() - started
print(json.dumps({"code": behavior.__file__, "seconds": seconds, "bytes": meter.bytes, "requests": meter.requests, "took_ms": meter.took_ms,
                  "written": result.written.created, "events": [e.as_json() for e in result.events]}))
"""


def export_baseline(ref: str, into: Path) -> Path:
    """The detector of commit ``ref`` (behavior/, es_templates/ and the ingest/ it uses) in a directory
    of its own."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", ref, "behavior", "es_templates", "ingest"], cwd=REPO, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def delete_namespace(client, namespace: str) -> None:
    for row in client.cat.indices(index=namespace + "*", format="json", expand_wildcards="all"):
        client.indices.delete(index=row["index"], ignore_unavailable=True)
    for t in client.indices.get_index_template(name=namespace + "*").get("index_templates", []):
        client.indices.delete_index_template(name=t["name"])


def drop_events(client, names) -> None:
    for index in (names.events, names.state, getattr(names, "anchorages", None)):
        if index:
            client.indices.delete(index=index, ignore_unavailable=True)


def detect(url: str, names, since_ms: int, until_ms: int, code: Path | None) -> dict:
    """One detection run in a subprocess, with ``code`` (a baseline's modules) first on the path."""
    env = dict(os.environ)
    # the baseline's folders alone (their old top-level names); the current code is the installed aiswatch
    env["PYTHONPATH"] = str(code) if code else ""
    out = subprocess.run([sys.executable, "-c", DETECT_SNIPPET, url, names.namespace, str(since_ms), str(until_ms)],
                         cwd=str(code or tempfile.gettempdir()), env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"detection failed ({code or 'current'}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def rerun_json_check(url: str, names, since_ms: int, until_ms: int) -> dict:
    """``aiswatch detect run --json`` again over the same window, compared with the stored events."""
    from aiswatch.behavior.events import EventStore
    from aiswatch.ingest.esclient import make_client

    out = aiswatch("detect", "run", "--es", url, "--namespace", names.namespace, "--since", str(since_ms // 1000),
                   "--until", str(until_ms // 1000), "--json", capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    client = make_client(url, request_timeout=120)
    try:
        client.indices.refresh(index=names.events, ignore_unavailable=True)
        stored = {d["_id"]: d for d in EventStore(client, names.events).recent(limit=10_000)}
    finally:
        client.close()
    ids = [r.get("id") for r in rows]
    return {"exit": out.returncode, "lines": len(rows), "stored": len(stored), "distinct_ids": len(set(ids)),
            "ids_stored": sum(1 for i in set(ids) if i in stored),
            "null_positions": sum(1 for r in rows if r.get("lat") is None and r["type"] != "identity"
                                  and (stored.get(r.get("id")) or {}).get("lat") is not None),
            "empty_details": sum(1 for r in rows if not r.get("details")
                                 and (stored.get(r.get("id")) or {}).get("details"))}


def score(result: dict, vdays: int, land: LandWithin) -> dict:
    events = result["events"]
    by_type = collections.Counter(f"{e['type']}/{e['subtype']}" for e in events)
    false = [(e, r) for e in events for r in [false_reasons(e, land)] if r]
    shared = {m: sorted({e["subtype"] for e in events if m in e["mmsi"] and e["type"] == "spoofing"
                         and e["subtype"] in ("jump", "shared_mmsi")}) for m in SHARED_MMSIS}
    return {"events": len(events), "by_type": dict(sorted(by_type.items())), "false": len(false),
            "false_events": false, "per_1000": 1000.0 * len(events) / vdays,
            "false_per_1000": 1000.0 * len(false) / vdays, "shared_found": sum(1 for v in shared.values() if v),
            "shared": shared}


def run_dataset(key: str, args, url: str, data_dir: Path, work: Path, land: LandWithin, baseline_code: Path | None):
    from aiswatch.es_templates import IndexNames
    from aiswatch.ingest.esclient import make_client

    filename, label = DATASETS[key]
    tracks = read_traj(data_dir / filename)
    nmea = work / f"{key}.nmea"
    lines = write_nmea(tracks, nmea, args.speeds)
    positions, raw = raw_position_bytes(nmea)
    vdays = vessel_days(tracks)
    times = [t for pts in tracks.values() for t, _, _ in pts]
    since_ms = min(times) // 600 * 600 * 1000
    until_ms = (max(times) // 600 + 1) * 600 * 1000
    reuse = dict(kv.split("=", 1) for kv in args.reuse.split(",") if kv).get(key)
    names = IndexNames(reuse or f"real{key}{uuid.uuid4().hex[:6]}-")
    env = dict(os.environ, AISWATCH_ELASTICSEARCH__RETENTION_DAYS="0", AISWATCH_HOME=str(work / "home"))
    started = time.monotonic()
    if not reuse:
        out = aiswatch("--log-level", "WARNING", "ingest", "file", str(nmea), "--es", url, "--namespace",
                       names.namespace, "--spool-dir", str(work / f"spool-{key}"), "--no-progress", env=env,
                       capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"ingest failed:\n{out.stderr[-3000:]}")
    ingest_s = time.monotonic() - started
    client = make_client(url, request_timeout=600)
    client.indices.refresh(index=names.namespace + "*")
    stored_positions = client.count(index=names.messages_pattern, query={"term": {"msg_kind": "position"}})["count"]
    print(f"\n== {label}: {len(tracks)} MMSIs, {vdays} vessel-days, {lines} sentences, {positions} positions "
          f"({stored_positions} stored), {raw:,} raw position bytes; ingest {ingest_s:.0f} s", flush=True)
    rows = {}
    try:
        for code_label, code in ([("baseline", baseline_code)] if baseline_code else []) + [("current", None)]:
            for k in range(args.repeats):
                drop_events(client, names)
                result = detect(url, names, since_ms, until_ms, code)
                rows.setdefault(code_label, []).append(result)
            runs = sorted(rows[code_label], key=lambda r: r["seconds"])
            median = runs[len(runs) // 2]
            scored = score(median, vdays, land) | {"seconds": median["seconds"], "bytes": median["bytes"],
                                                   "requests": median["requests"], "took_ms": median["took_ms"],
                                                   "share": median["bytes"] / raw}
            rows[code_label] = scored
            print(f"  [{code_label}] detector from {median['code']}")
            print_scored(code_label, scored)
        rows["rerun"] = rerun_json_check(url, names, since_ms, until_ms)
        print(f"  rerun `detect run --json`: {rows['rerun']}")
    finally:
        if not args.keep and not reuse:
            delete_namespace(client, names.namespace)
        client.close()
    return {"label": label, "vessel_days": vdays, "positions": positions, "raw": raw, "rows": rows}


def print_scored(code_label: str, s: dict) -> None:
    print(f"  [{code_label}] {s['events']} events ({s['per_1000']:.1f} per 1,000 vessel-days): {s['by_type']}")
    print(f"  [{code_label}] false by the rules: {s['false']} ({s['false_per_1000']:.1f} per 1,000 vessel-days); "
          f"shared MMSIs reported as jump/shared: {s['shared_found']} of {len(SHARED_MMSIS)} {s['shared']}")
    for e, reasons in s["false_events"]:
        print(f"      {e['type']:<10} {','.join(e['mmsi']):<22} {str(e['start'])[:16]} {e.get('lat')},{e.get('lon')} "
              f"{'; '.join(reasons)}")
    print(f"  [{code_label}] detection {s['seconds']:.1f} s, {s['requests']} requests, ES took {s['took_ms']:,} ms, "
          f"{s['bytes']:,} bytes returned = {100 * s['share']:.2f} % of raw position bytes", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--es", default=None, help="cluster URL (default: an osmem-server started here)")
    parser.add_argument("--datasets", default="us,ny", help="comma-separated: us, ny")
    parser.add_argument("--baseline", default=None, help="git commit whose detector runs first on the same data")
    parser.add_argument("--speeds", choices=["transmitters", "neighbours"], default="transmitters",
                        help="how speed and course are derived (see the module docstring)")
    parser.add_argument("--repeats", type=int, default=1, help="detection runs per code (the median is shown)")
    parser.add_argument("--cache", default=str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                                               / "aiswatch-bench"), help="where tracktable-data is kept")
    parser.add_argument("--wheel", default=None, help="a tracktable-data wheel already downloaded")
    parser.add_argument("--keep", action="store_true", help="keep the indices afterwards")
    parser.add_argument("--reuse", default="", help="us=NAMESPACE,ny=NAMESPACE: data already ingested (--keep) "
                                                   "from the same conversion; skips the ingest")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    data_dir = fetch_tracktable(Path(args.cache), args.wheel)
    land = LandWithin()
    server = None
    url = args.es
    if url is None:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
        url = server.url
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="aiswatch-real-") as tmp:
            work = Path(tmp)
            baseline = export_baseline(args.baseline, work / "baseline") if args.baseline else None
            for key in args.datasets.split(","):
                results[key] = run_dataset(key.strip(), args, url, data_dir, work, land, baseline)
    finally:
        if server is not None:
            server.close()
    print_table(results)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1, default=str))
    return 0


def print_table(results: dict) -> None:
    print("\n| data | code | events | per 1,000 vessel-days | false (rules) | false per 1,000 vessel-days | "
          "shared MMSIs found | detection s | bytes returned | share of raw |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, r in results.items():
        for code in ("baseline", "current"):
            s = r["rows"].get(code)
            if not s:
                continue
            shared = f"{s['shared_found']} of {len(SHARED_MMSIS)}" if key == "us" else "-"
            print(f"| {r['label']} ({r['vessel_days']} vessel-days) | {code} | {s['events']} | {s['per_1000']:.1f} | "
                  f"{s['false']} | {s['false_per_1000']:.1f} | {shared} | {s['seconds']:.1f} | {s['bytes']:,} | "
                  f"{100 * s['share']:.2f} % |")
        base, cur = r["rows"].get("baseline"), r["rows"].get("current")
        if base and cur:
            print(f"  {r['label']}: detection time current/baseline = {cur['seconds'] / base['seconds']:.2f}, "
                  f"bytes current/baseline = {cur['bytes'] / base['bytes']:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
