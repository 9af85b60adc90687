"""Load simulated traffic into a cluster through the real ingest pipeline (tests and bench/detect.py).

The simulator's NMEA lines go through ``ingest.pipeline.Pipeline`` (parse, reassemble, decode,
build documents) into ``ingest.sink.ElasticsearchSink`` (daily indices + ships-seen), exactly as a
live receiver's would. ``density`` replays the same vessels ``density`` times with different report
phases (simulator seeds), which multiplies the positions per vessel without adding vessels.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiswatch.es_templates import IndexNames
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.pipeline import Pipeline
from aiswatch.ingest.setup import install_templates
from aiswatch.ingest.simulate import Simulator
from aiswatch.ingest.sink import ElasticsearchSink


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
