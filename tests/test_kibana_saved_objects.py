"""Kibana saved objects: the committed NDJSON is what the generator makes from the spec files, every
reference resolves, and ``import_saved_objects`` speaks Kibana's import protocol.

The import tests run a small HTTP server that implements the two Kibana endpoints aiswatch uses
(``GET /api/status`` and ``POST /api/saved_objects/_import``) strictly enough to reject a request
without ``kbn-xsrf``, without credentials, without ``overwrite=true`` or with a malformed multipart
body: a protocol peer over real HTTP, not a stand-in for our own code.
"""
from __future__ import annotations

import base64
import email.parser
import fnmatch
import email.policy
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

import es_templates
from es_templates import IndexNames
from kibana import SPEC_NAMES, spec_text
from kibana.saved_objects import (KIBANA_VERSION, MIN_KIBANA_VERSION, NDJSON_PATH, KibanaError, build_saved_objects,
                                  generate, import_saved_objects)


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [json.loads(line) for line in NDJSON_PATH.read_text().splitlines()]


def test_committed_ndjson_is_generated_from_the_specs():
    assert NDJSON_PATH.read_text() == generate(), \
        "kibana/saved_objects.ndjson is stale: run python -m kibana.saved_objects > kibana/saved_objects.ndjson"


def test_every_object_is_unique_and_every_reference_resolves(objects):
    keys = [(o["type"], o["id"]) for o in objects]
    assert len(keys) == len(set(keys))
    known = set(keys)
    for obj in objects:
        for ref in obj.get("references", []):
            assert (ref["type"], ref["id"]) in known, f"{obj['id']} -> {ref} does not resolve"
        if obj["type"] == "search":
            source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert source["indexRefName"] in {r["name"] for r in obj["references"]}


def test_what_the_issue_asks_for_is_there(objects):
    by_type: dict[str, list[dict]] = {}
    for obj in objects:
        by_type.setdefault(obj["type"], []).append(obj)
    assert len(by_type["index-pattern"]) == 4
    assert len([o for o in by_type["visualization"] if '"type": "vega"' in o["attributes"]["visState"]]) == 3
    lens_titles = " | ".join(o["attributes"]["title"] for o in by_type["lens"])
    for words in ("Messages per minute", "Vessels by type", "Events by type", "messages per minute by source",
                  "errors", "spool depth"):
        assert words in lens_titles
    search_titles = {o["attributes"]["title"] for o in by_type["search"]}
    assert search_titles == {"Vessels by name", "Vessels by MMSI", "Vessels by destination", "Vessels by type"}
    assert len(by_type["dashboard"]) == 1


def test_data_view_patterns_match_the_index_templates(objects):
    titles = {o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    for key in ("ais", "ships-seen", "events", "metrics"):
        assert ",".join(es_templates.load(key)["index_patterns"]) in titles
    names = IndexNames()
    for obj in objects:
        if obj["type"] == "index-pattern":
            assert obj["attributes"]["timeFieldName"] == "@timestamp"
    # the raw data view must not catch the helper indices, nor they each other
    for helper in (names.ships, names.events, names.metrics, names.state):
        assert not fnmatch.fnmatchcase(helper, names.messages_pattern)
        assert [t for t in titles if fnmatch.fnmatchcase(helper, t)] in ([], [helper])
    assert fnmatch.fnmatchcase(names.messages("2026.03.14"), names.messages_pattern)


def test_every_embedded_vega_spec_equals_its_file(objects):
    embedded = {}
    for obj in objects:
        if obj["type"] == "visualization":
            state = json.loads(obj["attributes"]["visState"])
            if state["type"] == "vega":
                embedded[state["title"]] = state["params"]["spec"]
                assert isinstance(state["params"]["spec"], str)
    assert sorted(embedded.values()) == sorted(spec_text(n) for n in SPEC_NAMES)


def test_lens_layers_reference_their_data_view(objects):
    for obj in (o for o in objects if o["type"] == "lens"):
        layers = obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
        refs = {r["name"]: r for r in obj["references"]}
        for layer_id, layer in layers.items():
            ref = refs[f"indexpattern-datasource-layer-{layer_id}"]
            assert ref["type"] == "index-pattern"
            assert set(layer["columnOrder"]) == set(layer["columns"])
        vis = obj["attributes"]["state"]["visualization"]
        for vlayer in vis["layers"]:
            columns = layers[vlayer["layerId"]]["columns"]
            for accessor in [vlayer["xAccessor"], *vlayer["accessors"], vlayer.get("splitAccessor")]:
                assert accessor is None or accessor in columns
        for col in (c for layer in layers.values() for c in layer["columns"].values()):
            if col["operationType"] == "terms":
                assert col["params"]["orderBy"]["columnId"] in next(iter(layers.values()))["columns"]


def test_lens_fields_exist_in_their_data_views_templates(objects):
    views = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    key_of = {",".join(es_templates.load(k)["index_patterns"]): k for k in es_templates.TEMPLATE_FILES}
    for obj in (o for o in objects if o["type"] == "lens"):
        dv = obj["references"][0]["id"]
        props = es_templates.load(key_of[views[dv]])["template"]["mappings"]["properties"]
        for layer in obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values():
            for col in layer["columns"].values():
                field = col.get("sourceField")
                if field and field != "___records___":
                    assert field in props, f"{obj['id']}: {field} is not mapped in {views[dv]}"


def test_dashboard_panels_match_their_references(objects):
    dash = next(o for o in objects if o["type"] == "dashboard")
    panels = json.loads(dash["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dash["references"]}
    assert len(panels) == len(refs) >= 10
    for p in panels:
        ref = refs[f"{p['panelIndex']}:{p['panelRefName']}"]
        assert ref["type"] == p["type"]
        g = p["gridData"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 48
    assert {r["id"] for r in dash["references"]} >= {"aiswatch-vis-vessel-map", "aiswatch-vis-tracks-map",
                                                     "aiswatch-vis-events-map"}


def test_namespace_moves_every_index_name():
    objs = build_saved_objects("lab-")
    titles = {o["attributes"]["title"] for o in objs if o["type"] == "index-pattern"}
    assert titles == {"lab-ais-*", "lab-ships-seen", "lab-aiswatch-events", "lab-aiswatch-metrics"}
    specs = [json.loads(json.loads(o["attributes"]["visState"])["params"]["spec"]) for o in objs
             if o["type"] == "visualization"]
    assert sorted(s["data"][0]["url"]["index"] for s in specs) == ["lab-ais-*", "lab-aiswatch-events", "lab-ships-seen"]


# what public Kibana 8.x exports carry; Kibana 8.9 knows them all (lens and dashboard 8.9.0 are the newest)
MIGRATION_VERSIONS = {"index-pattern": "8.0.0", "visualization": "8.5.0", "lens": "8.9.0", "search": "8.0.0",
                      "dashboard": "8.9.0"}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@pytest.mark.parametrize("namespace", ["", "lab-"])
def test_every_object_says_which_migrations_it_is_past(objects, namespace):
    """Without typeMigrationVersion Kibana's import runs every migration, 7.x Lens ones included, on 8.x state."""
    for obj in (objects if not namespace else build_saved_objects(namespace)):
        assert obj.get("coreMigrationVersion") == "8.8.0", obj["id"]
        assert obj.get("typeMigrationVersion") == MIGRATION_VERSIONS[obj["type"]], obj["id"]
    assert {o["type"] for o in objects} == set(MIGRATION_VERSIONS)
    # Kibana refuses a version newer than it knows: the documented minimum covers every object,
    # and the Kibana the compose file runs is at least that
    assert version(MIN_KIBANA_VERSION) == max(version(v) for v in MIGRATION_VERSIONS.values()) == (8, 9, 0)
    assert version(KIBANA_VERSION) >= version(MIN_KIBANA_VERSION)


# -- import against a Kibana protocol peer ----------------------------------------------------------------

class FakeKibana(ThreadingHTTPServer):
    """Kibana's status and saved-objects import endpoints, with an in-memory store keyed by (type, id)."""

    daemon_threads = True

    def __init__(self, user="elastic", password="s3cret-for-test", not_ready=2, fail_ids=()):
        super().__init__(("127.0.0.1", 0), KibanaHandler)
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.not_ready = not_ready
        self.fail_ids = set(fail_ids)
        self.store: dict[tuple[str, str], dict] = {}
        self.imports = 0
        self.status_calls = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class KibanaHandler(BaseHTTPRequestHandler):
    server: FakeKibana

    def log_message(self, *args):
        pass

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self) -> bool:
        if self.headers.get("authorization") != self.server.auth:
            self.reply(401, {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"})
            return False
        return True

    def do_GET(self):
        if urlparse(self.path).path != "/api/status":
            return self.reply(404, {"statusCode": 404})
        if not self.authorised():
            return
        self.server.status_calls += 1
        if self.server.status_calls <= self.server.not_ready:
            return self.reply(503, {"status": {"overall": {"level": "unavailable"}}})
        self.reply(200, {"name": "kibana", "version": {"number": "8.15.3"},
                         "status": {"overall": {"level": "available", "summary": "All services are available"}}})

    def do_POST(self):
        url = urlparse(self.path)
        if url.path != "/api/saved_objects/_import":
            return self.reply(404, {"statusCode": 404})
        if not self.authorised():
            return
        if not self.headers.get("kbn-xsrf"):
            return self.reply(400, {"statusCode": 400, "message": "Request must contain a kbn-xsrf header."})
        if parse_qs(url.query).get("overwrite") != ["true"]:
            return self.reply(409, {"statusCode": 409, "message": "test peer requires overwrite=true"})
        length = int(self.headers["content-length"])
        raw = self.rfile.read(length)
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + raw)
        parts = list(msg.iter_parts()) if msg.is_multipart() else []
        files = [p for p in parts if p.get_param("name", header="content-disposition") == "file"]
        if len(files) != 1 or not (files[0].get_filename() or "").endswith(".ndjson"):
            return self.reply(415, {"statusCode": 415, "message": "Unsupported Media Type"})
        success, errors = [], []
        for line in files[0].get_payload(decode=True).decode().splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            meta = {"title": obj["attributes"].get("title")}
            if obj["id"] in self.server.fail_ids:
                errors.append({"type": obj["type"], "id": obj["id"], "meta": meta,
                               "error": {"type": "missing_references", "references": obj.get("references", [])}})
                continue
            overwrite = (obj["type"], obj["id"]) in self.server.store
            self.server.store[(obj["type"], obj["id"])] = obj
            success.append({"type": obj["type"], "id": obj["id"], "meta": meta, **({"overwrite": True} if overwrite else {})})
        self.server.imports += 1
        self.reply(200, {"success": not errors, "successCount": len(success), "successResults": success,
                         "errors": errors})


@pytest.fixture
def kibana():
    servers = []

    def start(**kw) -> FakeKibana:
        server = FakeKibana(**kw)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_import_waits_for_kibana_and_is_idempotent(kibana, monkeypatch, caplog):
    server = kibana(not_ready=2)
    monkeypatch.setenv("KIBANA_USERNAME", "elastic")
    monkeypatch.setenv("KIBANA_PASSWORD", "s3cret-for-test")
    caplog.set_level(logging.DEBUG)
    ndjson = NDJSON_PATH.read_text()
    n = len(ndjson.splitlines())
    rows = import_saved_objects(server.url, wait_seconds=30)
    assert server.status_calls == 3  # two "not ready" answers, then available
    assert len(rows) == n and all(r["success"] for r in rows)
    assert [(r["type"], r["id"]) for r in rows] == [(json.loads(l)["type"], json.loads(l)["id"]) for l in ndjson.splitlines()]
    assert server.store[("dashboard", "aiswatch-dashboard")] == json.loads(ndjson.splitlines()[-1])
    again = import_saved_objects(server.url, wait_seconds=30)
    assert all(r["success"] for r in again) and len(server.store) == n and server.imports == 2
    assert "s3cret-for-test" not in caplog.text


def test_import_reports_each_failed_object(kibana):
    server = kibana(not_ready=0, fail_ids={"aiswatch-lens-station-spool"})
    rows = import_saved_objects(server.url, username="elastic", password="s3cret-for-test", wait_seconds=10)
    failed = [r for r in rows if not r["success"]]
    assert [r["id"] for r in failed] == ["aiswatch-lens-station-spool"]
    assert failed[0]["error"]["type"] == "missing_references"


def test_import_with_wrong_credentials_is_a_clear_error(kibana):
    server = kibana(not_ready=0)
    with pytest.raises(KibanaError, match="refused the credentials"):
        import_saved_objects(server.url, username="elastic", password="wrong", wait_seconds=5)


def test_import_gives_up_when_kibana_never_gets_ready(kibana):
    server = kibana(not_ready=10**6)
    with pytest.raises(KibanaError, match="not ready after"):
        import_saved_objects(server.url, username="elastic", password="s3cret-for-test", wait_seconds=2)
    assert server.imports == 0


def test_aiswatch_setup_imports_into_kibana(kibana, es_url, names, monkeypatch):
    """``aiswatch setup --kibana URL``: templates into Elasticsearch, then every saved object reported."""
    from click.testing import CliRunner

    from ingest.cli import main

    server = kibana(not_ready=1)
    monkeypatch.setenv("KIBANA_USERNAME", "elastic")
    monkeypatch.setenv("KIBANA_PASSWORD", "s3cret-for-test")
    result = CliRunner().invoke(main, ["setup", "--es", es_url, "--namespace", names.namespace,
                                       "--kibana", server.url, "--kibana-wait", "20"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    n = len(NDJSON_PATH.read_text().splitlines())
    assert result.output.count(": ok") == n and len(server.store) == n
    assert "kibana dashboard aiswatch-dashboard: ok" in result.output
    assert "s3cret-for-test" not in result.output
    # the data views and Vega queries point at this namespace's indices
    patterns = {obj["attributes"]["title"] for (kind, _), obj in server.store.items() if kind == "index-pattern"}
    assert patterns and all(p.startswith(names.namespace) for p in patterns), patterns
    vega = [obj for (kind, _), obj in server.store.items() if kind == "visualization"
            and '"type": "vega"' in obj["attributes"]["visState"]]
    assert vega and all(names.namespace in obj["attributes"]["visState"] for obj in vega)
