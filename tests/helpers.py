"""Helpers shared by the tests (and bench/detect.py): reading a source, answering like Elasticsearch
over HTTP, the installed package layout, simulated traffic loaded through the real pipeline."""
import configparser
import json
import random
import shutil
import tempfile
import textwrap
import threading
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import pytest
from pyais import encode_dict

from aiswatch.es_templates import IndexNames
from aiswatch.es_templates.install import install_templates
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.pipeline import Pipeline
from aiswatch.ingest.ships_seen import ms_to_iso
from aiswatch.ingest.simulation import Simulator
from aiswatch.ingest.sink import ElasticsearchSink

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, str]:
    """setup.cfg's package_dir: import name -> folder (``aiswatch.ingest`` -> ``ingest``)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    rows = [r.split("=") for r in cfg["options"]["package_dir"].strip().splitlines() if r.strip()]
    return {name.strip(): folder.strip() for name, folder in rows}


def installed_layout(dest: Path, extensions: bool = True) -> Path:
    """A copy of the sources laid out as a wheel installs them (``dest/aiswatch/ingest/...``), for
    tools that walk a package's directory (import-linter) or runs from a modified copy; ``dest``."""
    ignore = ["__pycache__"] + ([] if extensions else ["*.so"])
    for name, folder in sorted(package_dirs().items()):
        shutil.copytree(ROOT / folder, dest.joinpath(*name.split(".")), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*ignore))
    return dest


# A sender for a separate process (``python -c UDP_SENDER PORT TOTAL PER_SECOND BURST_SECONDS [T0_MS]``),
# as rtl_ais / AIS-catcher would: bursts of PER_SECOND * BURST_SECONDS sentences, 1-3 CRLF-terminated
# sentences per datagram. With T0_MS each line also carries c:T0_MS+n (a message time in ms), so
# every line is a document of its own. Each line carries its number in
# an NMEA 4.10 tag block (n: is the standard's line-count field) so every loss is visible.
UDP_SENDER = textwrap.dedent(r"""
    import functools, operator, socket, sys, time
    from pyais import encode_dict
    port, total, per_second, burst_seconds = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    t0_ms = int(sys.argv[5]) if len(sys.argv) > 5 else None
    # every line a message of its own (as on the air: a payload repeated within its second is a copy)
    sentences = [encode_dict({"type": 1, "mmsi": 211000000 + i % 100, "lat": 54.0 + i / 100000, "lon": 10.0,
                              "speed": 12.3, "course": 90.0, "heading": 90},
                             talker_id="AI", sentence_type="VDM")[0] for i in range(total)]
    def checksum(text):
        return "%02X" % functools.reduce(operator.xor, text.encode(), 0)
    def line(n):
        tag = "s:udptest,n:%d" % n if t0_ms is None else "s:udptest,n:%d,c:%d" % (n, t0_ms + n)
        return "\\%s*%s\\%s\r\n" % (tag, checksum(tag), sentences[n])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    per_burst = int(per_second * burst_seconds)
    start, n, burst = time.monotonic(), 0, 0
    while n < total:
        end = min(total, n + per_burst)
        while n < end:
            k = 1 + n % 3
            chunk = "".join(line(i) for i in range(n, min(end, n + k)))
            sock.sendto(chunk.encode(), ("127.0.0.1", port))
            n = min(end, n + k)
        burst += 1
        delay = start + burst * burst_seconds - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print("sent", n, "in", round(time.monotonic() - start, 2), "s")
""")


def reply_json(handler, status: int, payload) -> None:
    """Answer an ``http.server`` request as Elasticsearch does: JSON with its product header."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("X-Elastic-Product", "Elasticsearch")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def collect(src, n: int, timeout: float = 15.0) -> list:
    """The first n lines of src, closing it from a watchdog if they do not come; src is closed after."""
    out = []
    watchdog = threading.Timer(timeout, src.close)
    watchdog.start()
    try:
        for line in src.lines():
            out.append(line)
            if len(out) == n:
                break
    finally:
        watchdog.cancel()
        src.close()
    return out


# -- simulated traffic through the real ingest pipeline into a cluster (behaviour tests, bench/detect.py) --

@dataclass
class LoadResult:
    lines: int = 0
    documents: int = 0
    positions: int = 0
    position_bytes: int = 0       # JSON size of the position documents: what downloading them would cost


class _CountingSink:
    """Passes documents on to the Elasticsearch sink, counting the position documents' JSON bytes."""

    def __init__(self, inner: ElasticsearchSink, result: LoadResult):
        self.inner, self.result = inner, result

    def submit(self, doc: dict) -> None:
        self.result.documents += 1
        if doc.get("msg_kind") == "position":
            self.result.positions += 1
            body = {k: v for k, v in doc.items() if not k.startswith("_")}
            self.result.position_bytes += len(json.dumps(body, separators=(",", ":")))
        self.inner.submit(doc)

    def flush(self) -> None:
        self.inner.flush()


def load_simulation(client, names: IndexNames, vessels: list, start: float, duration_s: float, *,
                    density: int = 1, seed: int = 0, work_dir: str | Path | None = None) -> LoadResult:
    """Install the templates, play ``vessels`` for ``duration_s`` through the pipeline, refresh."""
    install_templates(client, names, retention_days=None, echo=lambda *_: None)
    result = LoadResult()
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        sink = ElasticsearchSink(client, names, Counters(), spool_dir=Path(tmp) / "spool",
                                 dead_letter_path=Path(tmp) / "dead.ndjson", batch_size=5000, flush_seconds=0.5)
        pipeline = Pipeline(_CountingSink(sink, result))
        try:
            for k in range(density):
                sim = Simulator(vessels, start, seed=seed + 1000 * k, station=f"sim{k}")
                for t, lines in sim.messages(duration_s):
                    for text in lines:
                        result.lines += 1
                        pipeline.feed(Line(text, float(t), "sim"))
            pipeline.finish()
        finally:
            sink.close(drain_seconds=120)
    client.indices.refresh(index=names.messages_pattern, ignore_unavailable=True, allow_no_indices=True)
    client.indices.refresh(index=names.ships, ignore_unavailable=True)
    return result


# -- a tagged NMEA log whose documents and ships-seen states are known exactly ----------------

MIDNIGHT = 1_763_164_800  # 2025-11-15T00:00:00Z: the traffic straddles it


def tag(sentence: str, t: int, station: str = "bergen") -> str:
    body = f"s:{station},c:{t}"
    check = reduce(lambda a, ch: a ^ ord(ch), body, 0)
    return f"\\{body}*{check:02X}\\{sentence}"


def nmea_traffic(n_ships: int = 12, positions: int = 25, start: int = MIDNIGHT - 600, seed: int = 7):
    """Tagged NMEA lines in time order and what they must produce.

    Returns (lines, expected) where expected maps MMSI -> {"name", "lat", "lon", "time"} of the
    newest position, and the number of messages per UTC day.
    """
    rng = random.Random(seed)
    events = []
    expected = {}
    for s in range(n_ships):
        mmsi = 257_100_000 + s
        name = f"VESSEL {s}"
        t_static = start + rng.randint(0, 60)
        events.append((t_static, encode_dict(
            {"msg_type": 5, "mmsi": mmsi, "shipname": name, "callsign": f"LA{s:03d}", "ship_type": 70,
             "destination": "BERGEN", "to_bow": 50, "to_stern": 20, "to_port": 5, "to_starboard": 5,
             "imo": 9_000_000 + s}, talker_id="AI", sentence_type="VDM", seq_id=s % 10)))
        lat, lon = 60.0 + s / 50, 4.5 + s / 50
        for k in range(positions):
            t = start + 10 + k * 50 + s
            lat, lon = round(lat + 0.001, 5), round(lon + 0.002, 5)
            events.append((t, encode_dict({"msg_type": 1, "mmsi": mmsi, "lat": lat, "lon": lon, "speed": 11.5,
                                           "course": 63.0, "heading": 60, "status": 0}, talker_id="AI", sentence_type="VDM")))
            expected[mmsi] = {"name": name, "lat": lat, "lon": lon, "time": t}
    events.sort(key=lambda e: e[0])
    lines = [tag(sentence, t) for t, sentences in events for sentence in sentences]
    per_day = {"2025.11.14": sum(1 for t, _ in events if t < MIDNIGHT),
               "2025.11.15": sum(1 for t, _ in events if t >= MIDNIGHT)}
    return lines, expected, per_day


def assert_ships(es, names, expected):
    for mmsi, want in expected.items():
        doc = es.get(index=names.ships, id=f"{mmsi:09d}")["_source"]
        assert doc["name"] == want["name"]
        assert doc["lat"] == pytest.approx(want["lat"], abs=1e-5)
        assert doc["lon"] == pytest.approx(want["lon"], abs=1e-5)
        assert doc["location"]["lat"] == pytest.approx(want["lat"], abs=1e-5)
        assert doc["position_time"] == ms_to_iso(want["time"] * 1000)


# -- namespaces --------------------------------------------------------------------------------

def delete_namespace(client, namespace: str) -> None:
    """Delete every index and template of a namespace by explicit name (ES 8 refuses wildcard deletes)."""
    try:
        rows = client.cat.indices(index=namespace + "*", format="json", expand_wildcards="all")
    except Exception:
        rows = []
    for row in rows:
        client.indices.delete(index=row["index"], ignore_unavailable=True)
    try:
        templates = client.indices.get_index_template(name=namespace + "*").get("index_templates", [])
    except Exception:
        templates = []
    for t in templates:
        client.indices.delete_index_template(name=t["name"])


# -- aiswatch as a user runs it, and logs whose documents are known (delivery tests) ------------------

def aiswatch_command(args: list[str], tmp_path: Path, env_extra: dict | None = None) -> tuple[list[str], dict]:
    """``aiswatch ARGS`` as a subprocess command and its environment: its home, status file and
    working directory in ``tmp_path``, no cluster or credentials inherited from the caller."""
    import os
    import sys

    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"),
               AISWATCH_METRICS__STATUS_FILE=str(tmp_path / "status.json"))
    for key in ("ES_URL", "ES_USERNAME", "ES_PASSWORD", "ES_API_KEY", "ES_CA_CERTS"):
        env.pop(key, None)
    env.update(env_extra or {})
    return [sys.executable, "-c", "from aiswatch.cli import main; main()", *args], env


def status_counters(path: Path) -> dict:
    """The counters of an aiswatch status file."""
    return json.loads(Path(path).read_text())["counters"]


def simulated_log(path: Path, seconds: int, vessels: int = 40, seed: int = 4, t0: int = 1_763_164_800) -> Path:
    """An NMEA log of simulated traffic (tag blocks with message times) written to ``path``."""
    from aiswatch.ingest.simulation import random_fleet

    sim = Simulator(random_fleet(vessels, seed=seed, start=t0), start=t0, seed=seed)
    path.write_text("\n".join(line for _, group in sim.messages(seconds) for line in group) + "\n")
    return path


def document_ids(path: Path) -> set[str]:
    """The ids of the documents a replay of the log ``path`` makes (the pipeline, no cluster)."""
    from aiswatch.ingest.pipeline import ListSink
    from aiswatch.ingest.sources.file import FileSource

    sink = ListSink()
    Pipeline(sink).run([FileSource([path])])
    return {d["_id"] for d in sink.documents}


def count_present(client, pattern: str, ids: set[str]) -> tuple[int, int]:
    """(documents in ``pattern``, how many of ``ids`` are among them): equal to (len(ids), len(ids))
    means every document is there exactly once."""
    client.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
    total = client.count(index=pattern, ignore_unavailable=True, allow_no_indices=True)["count"]
    ids = sorted(ids)
    present = 0
    for i in range(0, len(ids), 5000):
        present += client.count(index=pattern, query={"ids": {"values": ids[i:i + 5000]}},
                                ignore_unavailable=True, allow_no_indices=True)["count"]
    return total, present
