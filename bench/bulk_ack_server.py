"""A local Elasticsearch stand-in that acknowledges every bulk item at once (for bench/ingest.py).

The test engines index only 3-11k documents/s, so measuring aiswatch against them measures them.
This server answers just enough of the API for the sink, as fast as Python's HTTP server can:

- ``GET /``: cluster info (with the ``X-Elastic-Product`` header elasticsearch-py checks);
- ``POST [/<index>]/_bulk``: one correct item per action (status 201), parsed from the NDJSON
  body so the per-item bookkeeping on our side is real; with ``filter_path`` only the statuses;
- ``POST|GET [/<index>]/_mget``: every id "not found";
- anything else: ``{}`` with 200.

A slow cluster on demand (bench/slow_cluster.py, tests/test_backpressure.py): ``--delay S`` answers
every ``_bulk`` after S seconds, ``POST /_bench/delay`` with ``{"seconds": S}`` changes it while
running. ``--count-ids`` records the ``(index, id)`` of every index action: ``GET /_bench/stats``
gives ``{"bulk_requests", "actions", "unique": {index prefix: distinct ids}}``, the index prefix
being the index name up to its last dash (``bp-ais-2025.11.15`` counts under ``bp-ais``).

Run: ``python bench/bulk_ack_server.py [--port N] [--delay S] [--count-ids]``; it prints
``READY <url>`` when listening and exits when stdin closes (so it dies with the process that
started it).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

INFO = orjson.dumps({"name": "bulk-ack", "cluster_name": "bench", "version": {"number": "8.15.0",
                    "build_flavor": "default", "lucene_version": "9.11.1"}, "tagline": "You Know, for Search"})


_INDEX_OK = b'{"index":{"status":201}}'


def bulk_response(body: bytes, status_only: bool = False) -> bytes:
    """A bulk response with one success item per action line of ``body`` (``status_only``: as
    Elasticsearch answers with ``filter_path=items.*.status``)."""
    if status_only and b'"delete"' not in body and b'"create"' not in body and b'"update"' not in body:
        # only index actions, each an action line and a source line: the answer needs their number,
        # not their parsing (this server shares the machine's two cores with the client it measures)
        n = body.count(b"\n") // 2
        return b'{"took":0,"errors":false,"items":[' + b",".join([_INDEX_OK] * n) + b"]}"
    items = []
    lines = body.split(b"\n")
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        i += 1
        if not line:
            continue
        header = orjson.loads(line)
        op, meta = next(iter(header.items()))
        if op != "delete":
            i += 1  # skip the source line
        if status_only:
            items.append({op: {"status": 201}})
            continue
        items.append({op: {"_index": meta.get("_index", "unknown"), "_id": meta.get("_id", str(i)),
                           "_version": meta.get("version", 1), "result": "created", "status": 201,
                           "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0,
                           "_primary_term": 1}})
    return orjson.dumps({"took": 0, "errors": False, "items": items})


class Behaviour:
    """How slow the server is, and what it has seen (when counting ids)."""

    def __init__(self, delay: float = 0.0, count_ids: bool = False) -> None:
        self.delay = delay
        self.count_ids = count_ids
        self.lock = threading.Lock()
        self.bulk_requests = 0
        self.actions = 0
        self.ids: dict[str, set] = {}

    def record(self, body: bytes) -> None:
        if not self.count_ids:
            with self.lock:
                self.bulk_requests += 1
            return
        seen = []
        lines = body.split(b"\n")
        for i in range(0, len(lines) - 1, 2):
            if lines[i]:
                meta = next(iter(orjson.loads(lines[i]).values()))
                seen.append((meta.get("_index", ""), meta.get("_id")))
        with self.lock:
            self.bulk_requests += 1
            self.actions += len(seen)
            for index, doc_id in seen:
                self.ids.setdefault(index.rpartition("-")[0] or index, set()).add(doc_id)

    def stats(self) -> bytes:
        with self.lock:
            return orjson.dumps({"bulk_requests": self.bulk_requests, "actions": self.actions,
                                 "unique": {k: len(v) for k, v in self.ids.items()}, "delay": self.delay})


BEHAVIOUR = Behaviour()


def mget_response(body: bytes, index: str | None) -> bytes:
    req = orjson.loads(body) if body else {}
    ids = req.get("ids") or [d.get("_id") for d in req.get("docs", [])]
    return orjson.dumps({"docs": [{"_index": index, "_id": i, "found": False} for i in ids]})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client pools connections
    # without TCP_NODELAY, header and body go out as two segments and the client's delayed ACK
    # adds ~40 ms to every request: the "instant" server would be the slowest part
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, payload: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self) -> None:
        body = self._body()
        path, _, query = self.path.partition("?")
        parts = [p for p in path.split("/") if p]
        if not parts:
            self._reply(INFO)
        elif parts[-1] == "_bulk":
            if BEHAVIOUR.delay:
                time.sleep(BEHAVIOUR.delay)
            BEHAVIOUR.record(body)
            self._reply(bulk_response(body, status_only="filter_path=" in query and "_id" not in query))
        elif parts == ["_bench", "delay"]:
            BEHAVIOUR.delay = float(orjson.loads(body)["seconds"])
            self._reply(BEHAVIOUR.stats())
        elif parts == ["_bench", "stats"]:
            self._reply(BEHAVIOUR.stats())
        elif parts[-1] == "_mget":
            self._reply(mget_response(body, parts[0] if len(parts) > 1 else None))
        else:
            self._reply(b"{}")

    do_GET = do_POST = do_PUT = _route

    def do_HEAD(self):
        self._reply(b"")


def serve(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each _bulk is answered")
    parser.add_argument("--count-ids", action="store_true", help="record the (index, id) of every action")
    args = parser.parse_args()
    BEHAVIOUR.delay, BEHAVIOUR.count_ids = args.delay, args.count_ids
    server = serve(args.port)
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin or dies
    server.shutdown()


if __name__ == "__main__":
    main()
