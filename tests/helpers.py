"""Helpers shared by the tests (and bench/detect.py): reading a source, answering like Elasticsearch
over HTTP, the installed package layout, simulated traffic loaded through the real pipeline."""
import configparser
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from aiswatch.es_templates import IndexNames
from aiswatch.es_templates.install import install_templates
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.pipeline import Pipeline
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
