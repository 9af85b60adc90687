"""The sink against a scripted HTTP server: 429 retries, 5xx spooling, refused requests.

The test engines never answer 429 or 503 on demand, so this server (a real socket, a real HTTP
exchange through elasticsearch-py) answers each _bulk request with the next scripted reply.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aiswatch.es_templates import IndexNames
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.esclient import make_client
from aiswatch.ingest.sink import ElasticsearchSink
from aiswatch.ingest.ships_seen import ms_to_iso
from helpers import reply_json

T = 1_763_078_400_000


class ScriptedBulkServer:
    """Answers ``_bulk`` with scripted replies: "ok", "429-items" (every item 429), "short" (no item
    for the last action), or an HTTP status."""

    def __init__(self, script):
        self.script = list(script)
        self.bulk_bodies: list[list[dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, payload):
                reply_json(self, status, payload)

            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                if path.endswith("/_mget"):
                    ids = json.loads(body)["ids"]
                    return self.reply(200, {"docs": [{"_id": i, "found": False} for i in ids]})
                if not path.endswith("/_bulk"):
                    return self.reply(200, {"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"})
                lines = [json.loads(x) for x in body.splitlines() if x.strip()]
                actions = lines[0::2]
                outer.bulk_bodies.append(actions)
                step = outer.script.pop(0) if outer.script else "ok"
                if isinstance(step, int):
                    return self.reply(step, {"error": {"type": "scripted", "reason": f"status {step}"},
                                             "status": step})
                if step == "short":  # an answer without the last item (no status for it at all)
                    items = [{"index": {"status": 201}} for _ in actions[:-1]]
                    return self.reply(200, {"errors": False, "items": items})
                status = 429 if step == "429-items" else 201
                items = [{"index": {"status": status, **({"error": {"type": "es_rejected_execution_exception"}}
                                                         if status == 429 else {})}} for _ in actions]
                return self.reply(200, {"errors": status != 201, "items": items})

            do_GET = do_POST = do_PUT = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(*script):
        s = ScriptedBulkServer(script)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def docs(n):
    return [{"_id": f"id{i}", "_ts": T + i, "@timestamp": ms_to_iso(T + i), "mmsi": f"{257000000 + i % 3}",
             "msg_kind": "position", "location": {"lat": 60.0, "lon": 5.0}, "source": "test"} for i in range(n)]


def run(server, tmp_path, n=10, **kw):
    client = make_client(server.url, request_timeout=5, max_retries=0)
    counters = Counters()
    sink = ElasticsearchSink(client, IndexNames("h-"), counters, spool_dir=tmp_path / "spool",
                             dead_letter_path=tmp_path / "dead.ndjson", flush_seconds=0.05,
                             probe_max_seconds=0.2, **kw)
    for d in docs(n):
        sink.submit(d)
    sink.close(drain_seconds=10)
    client.close()
    return counters


def test_items_rejected_with_429_are_retried_with_backoff(scripted, tmp_path):
    server = scripted("429-items", "ok")
    counters = run(server, tmp_path)
    assert counters.get("bulk_retries") == 1 and counters.get("documents_indexed") == 10
    assert len(server.bulk_bodies) == 2 and len(server.bulk_bodies[1]) == len(server.bulk_bodies[0])
    assert counters.get("spool_depth") == 0 and counters.get("dead_letters") == 0


def test_a_503_spools_the_batch_and_replays_it(scripted, tmp_path):
    server = scripted(503)
    counters = run(server, tmp_path)
    assert counters.get("spooled_total") == 10 and counters.get("replayed_total") == 10
    assert counters.get("documents_indexed") == 10 and counters.get("spool_depth") == 0
    sent = [a["index"]["_id"] for body in server.bulk_bodies[1:] for a in body if "version" not in a["index"]]
    assert sent == [f"id{i}" for i in range(10)]  # replayed in order


def test_a_refused_request_becomes_dead_letters_instead_of_stalling(scripted, tmp_path):
    server = scripted(413)
    counters = run(server, tmp_path, n=4)
    lines = [json.loads(x) for x in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert {x["status"] for x in lines} == {413}
    assert sorted(x["id"] for x in lines if x["index"].startswith("h-ais-")) == ["id0", "id1", "id2", "id3"]
    assert counters.get("spool_depth") == 0 and counters.get("documents_indexed") == 0


def test_a_document_json_cannot_carry_is_a_dead_letter(scripted, tmp_path):
    server = scripted()
    client = make_client(server.url, request_timeout=5)
    counters = Counters()
    sink = ElasticsearchSink(client, IndexNames("h-"), counters, spool_dir=tmp_path / "spool",
                             dead_letter_path=tmp_path / "dead.ndjson", flush_seconds=0.05)
    good, bad = docs(2)
    bad["weird"] = object()
    sink.submit(good)
    sink.submit(bad)
    sink.close()
    client.close()
    lines = [json.loads(x) for x in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["id1"] and "not serialisable" in lines[0]["error"]
    assert counters.get("documents_indexed") == 1


def test_documents_without_meta_keys_are_refused_clearly(scripted, tmp_path):
    server = scripted()
    client = make_client(server.url)
    sink = ElasticsearchSink(client, IndexNames("h-"), Counters(), spool_dir=tmp_path / "spool",
                             dead_letter_path=tmp_path / "dead.ndjson")
    with pytest.raises(ValueError, match="_id/_ts"):
        sink.submit({"mmsi": "1"})
    sink.close()
    client.close()


def test_an_action_the_response_does_not_answer_is_sent_again(scripted, tmp_path):
    server = scripted("short")
    counters = run(server, tmp_path, n=4)
    first = server.bulk_bodies[0]
    # one request of 4 raw documents and their ships-seen updates, every action line parsed
    assert [a["index"]["_id"] for a in first[:4]] == ["id0", "id1", "id2", "id3"]
    # the unanswered last action (a ships-seen update) sends its vessel's messages again, via the spool
    sent_again = [a["index"]["_id"] for body in server.bulk_bodies[1:] for a in body if "version" not in a["index"]]
    assert sent_again and set(sent_again) <= {"id0", "id1", "id2", "id3"}
    assert counters.get("spool_depth") == 0 and counters.get("dead_letters") == 0
    assert counters.get("documents_indexed") >= 4
