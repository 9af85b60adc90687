"""End to end: an NMEA log through the whole pipeline into a real ES-compatible server.

Lines are made with ``pyais.encode_dict`` and carry NMEA 4.10 tag blocks with the message time,
so the expected documents, daily indices and ships-seen states are known exactly.
"""
from __future__ import annotations

import random

from aiswatch.es_templates.install import install_templates
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.pipeline import Pipeline
from aiswatch.ingest.sink import ElasticsearchSink
from helpers import assert_ships, nmea_traffic


def replay(es, names, tmp_path, lines, counters=None, source="file:traffic.nmea"):
    counters = counters or Counters()
    sink = ElasticsearchSink(es, names, counters, spool_dir=tmp_path / "spool",
                             dead_letter_path=tmp_path / "dead.ndjson", batch_size=200, flush_seconds=0.2)
    pipeline = Pipeline(sink, counters)
    pipeline.feed_many(Line(text, 1_800_000_000.0, source, offset=i) for i, text in enumerate(lines))
    pipeline.finish()
    sink.close()
    return counters


def index_counts(es, names):
    es.indices.refresh(index=names.namespace + "*")
    return {r["index"][len(names.namespace):]: int(r["docs.count"])
            for r in es.cat.indices(index=names.namespace + "*", format="json")}


def test_log_gives_one_document_per_message_and_replay_changes_nothing(es, names, tmp_path):
    install_templates(es, names, None)
    lines, expected, per_day = nmea_traffic()
    lines_with_noise = lines[:50] + ["!AIVDM,1,1,,A,garbage,0*00", "not nmea at all"] + lines[50:]
    counters = replay(es, names, tmp_path, lines_with_noise)
    n_messages = sum(per_day.values())
    assert counters.get("messages_decoded") == n_messages
    assert counters.get("documents_indexed") == n_messages
    assert counters.get("rejected") == 2
    want = {"ais-2025.11.14": per_day["2025.11.14"], "ais-2025.11.15": per_day["2025.11.15"],
            "ships-seen": len(expected)}
    assert index_counts(es, names) == want
    assert_ships(es, names, expected)
    assert counters.get("last_message_time.file:traffic.nmea") == max(e["time"] for e in expected.values())

    counters = replay(es, names, tmp_path, lines)  # the same log again
    assert counters.get("documents_indexed") == n_messages
    assert index_counts(es, names) == want
    assert_ships(es, names, expected)


def test_out_of_order_input_leaves_the_newest_position(es, names, tmp_path):
    lines, expected, per_day = nmea_traffic(n_ships=6, positions=20)
    # shuffle whole messages (a type 5's two fragments stay together)
    messages, i = [], 0
    while i < len(lines):
        n = int(lines[i].split("!AIVDM,")[1].split(",")[0])
        messages.append(lines[i:i + n])
        i += n
    random.Random(3).shuffle(messages)
    shuffled = [line for m in messages for line in m]
    counters = replay(es, names, tmp_path, shuffled)
    assert counters.get("documents_indexed") == sum(per_day.values())
    assert index_counts(es, names)["ships-seen"] == len(expected)
    assert_ships(es, names, expected)
