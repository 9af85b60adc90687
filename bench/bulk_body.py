"""Bulk body benchmark: ``ingest.bulk.BulkSender`` against ``elasticsearch.helpers.streaming_bulk``.

    python bench/bulk_body.py [--messages 100000] [--batch 2000] [--rounds 5]

The same pre-serialised actions (the simulated traffic of bench/ingest.py through the pipeline,
each document an action line and its JSON line, as the sink makes them) are sent in batches of
``--batch`` to ``bench/bulk_ack_server.py`` (which acknowledges at once, in another process):

1. ``BulkSender.send``: the NDJSON body joined from the bytes, ``filter_path`` keeping only each
   item's status and error, results matched by position;
2. ``streaming_bulk`` with the same bytes passed through (``expand_action_callback`` returning
   them, one chunk per batch, 429 retries by the helper), ``_index`` and ``_id`` kept in the
   response so each result can be matched to its action (the helper yields retried items out of
   order), which is what the sink needs.

Printed: CPU time of this process per document for each, and their ratio, medians of the rounds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aiswatch.ingest import start_ack_server, stop, traffic_file  # noqa: E402  (bench/ingest.py)


def actions_for(path: Path) -> tuple[list[tuple[bytes, bytes]], list[tuple[str, str]]]:
    """The documents' (action line, source line) pairs, and their (index, id): the sink has both."""
    import orjson

    from aiswatch.ingest.bulk import NDJSON, ActionLines
    from aiswatch.ingest.pipeline import ListSink, Pipeline
    from aiswatch.ingest.sources.file import FileSource

    sink = ListSink()
    Pipeline(sink).run([FileSource(path)])
    lines = ActionLines()
    out, keys = [], []
    for doc in sink.documents:
        doc_id, ts = doc.pop("_id"), doc.pop("_ts")
        index = f"bench-ais-{ts // 86_400_000}"
        out.append((lines.index(index, doc_id), orjson.dumps(doc, option=NDJSON)))
        keys.append((index, doc_id))
    return out, keys


def send_bytes(client, batches, keys) -> int:
    from aiswatch.ingest.bulk import BulkSender
    from aiswatch.ingest.counters import Counters

    sender = BulkSender(client, Counters())
    ok = 0
    for batch in batches:
        ok += sum(1 for r in sender.send(batch) if r is not None and 200 <= r[0] < 300)
    return ok


def send_streaming(client, batches, keys) -> int:
    from elasticsearch.helpers import streaming_bulk

    ok = 0
    for batch, batch_keys in zip(batches, keys):
        positions: dict[tuple[str, str], list[int]] = {}   # the answers come back out of order
        for pos, key in enumerate(batch_keys):
            positions.setdefault(key, []).append(pos)
        results: list = [None] * len(batch)
        for good, item in streaming_bulk(client, batch, chunk_size=len(batch), max_chunk_bytes=1 << 40,
                                         expand_action_callback=lambda pair: pair, raise_on_error=False,
                                         max_retries=3, initial_backoff=0.5, max_backoff=5,
                                         filter_path="errors,items.*._index,items.*._id,items.*.status,"
                                                     "items.*.error"):
            res = next(iter(item.values()))
            for pos in positions.get((res.get("_index"), res.get("_id")), ()):
                results[pos] = (res.get("status", 500), res.get("error"))
        ok += sum(1 for r in results if r is not None and 200 <= r[0] < 300)
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "aiswatch-bench"))
    args = p.parse_args()
    from aiswatch.ingest.esclient import make_client

    actions, keys = actions_for(traffic_file(Path(args.cache), args.messages))
    batches = [actions[i:i + args.batch] for i in range(0, len(actions), args.batch)]
    key_batches = [keys[i:i + args.batch] for i in range(0, len(keys), args.batch)]
    server, url = start_ack_server()
    client = make_client(url)
    cpu: dict[str, list[float]] = {"bytes": [], "streaming_bulk": []}
    try:
        for r in range(args.rounds):
            for name, fn in (("bytes", send_bytes), ("streaming_bulk", send_streaming)):
                t = time.process_time()
                ok = fn(client, batches, key_batches)
                cpu[name].append((time.process_time() - t) / len(actions) * 1e6)
                assert ok == len(actions), (name, ok)
            print(f"round {r + 1}: CPU us/document: BulkSender {cpu['bytes'][-1]:.2f}, "
                  f"streaming_bulk {cpu['streaming_bulk'][-1]:.2f}", flush=True)
    finally:
        client.close()
        stop(server)
    med = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
    print(f"{len(actions)} documents in batches of {args.batch}, medians of {args.rounds} rounds: "
          f"BulkSender {med['bytes']:.2f} us CPU/document, streaming_bulk {med['streaming_bulk']:.2f} "
          f"({med['streaming_bulk'] / med['bytes']:.2f}x)")


if __name__ == "__main__":
    main()
