"""Kibana saved objects: the committed NDJSON is what the generator makes from the spec files, every
reference resolves, every object says which migrations it is past, and ``import_saved_objects`` speaks
Kibana's import protocol.

The import tests run a small HTTP server that implements the Kibana endpoints aiswatch and these tests use
(``GET /api/status``, ``POST /api/saved_objects/_import``, ``POST /api/saved_objects/_bulk_get``, spaces)
strictly enough to reject a request without ``kbn-xsrf``, without credentials, without ``overwrite=true``
or with a malformed multipart body, and an object without migration versions (real Kibana would run every
migration since 6.x on it): a protocol peer over real HTTP, not a stand-in for our own code. With
``KIBANA_URL`` set (and KIBANA_USERNAME/KIBANA_PASSWORD or KIBANA_API_KEY), the same import and checks run
against that real Kibana (8.9 or later) in a temporary space.
"""
from __future__ import annotations

import base64
import email.parser
import email.policy
import fnmatch
import json
import logging
import os
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from aiswatch import es_templates
from aiswatch.es_templates import IndexNames
from aiswatch.kibana import SPEC_NAMES, spec_text
from aiswatch.kibana.saved_objects import (KIBANA_VERSION, MIN_KIBANA_VERSION, NDJSON_PATH, KibanaError, _auth_headers,
                                  build_saved_objects, generate, import_saved_objects)


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
    """Kibana's status, saved-objects import and bulk-get and spaces endpoints, with in-memory stores per space
    keyed by (type, id).

    accepts: the newest typeMigrationVersion per type this peer knows (as Kibana refuses a newer one); an
    object without typeMigrationVersion or coreMigrationVersion is refused, as the migrations real Kibana
    would then run (all of them) break on 8.x-shaped state.
    """

    daemon_threads = True

    def __init__(self, user="elastic", password="s3cret-for-test", not_ready=2, fail_ids=(), accepts=None):
        super().__init__(("127.0.0.1", 0), KibanaHandler)
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.not_ready = not_ready
        self.fail_ids = set(fail_ids)
        self.accepts = dict(MIGRATION_VERSIONS if accepts is None else accepts)
        self.spaces: dict[str, dict[tuple[str, str], dict]] = {"default": {}}
        self.imports = 0
        self.status_calls = 0

    @property
    def store(self) -> dict[tuple[str, str], dict]:
        return self.spaces["default"]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class KibanaHandler(BaseHTTPRequestHandler):
    server: FakeKibana

    def log_message(self, *args):
        pass

    def reply(self, status: int, body: dict | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
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

    def route(self) -> tuple[str | None, str]:
        """(space id or None when the space does not exist, API path)"""
        path = urlparse(self.path).path
        m = re.fullmatch(r"/s/([a-z0-9_-]+)(/.*)", path)
        space, path = (m.group(1), m.group(2)) if m else ("default", path)
        return (space if space in self.server.spaces else None), path

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

    def do_DELETE(self):
        m = re.fullmatch(r"/api/spaces/space/([a-z0-9_-]+)", urlparse(self.path).path)
        if not m or m.group(1) == "default" or m.group(1) not in self.server.spaces:
            return self.reply(404, {"statusCode": 404})
        if not self.authorised():
            return
        if not self.headers.get("kbn-xsrf"):
            return self.reply(400, {"statusCode": 400, "message": "Request must contain a kbn-xsrf header."})
        del self.server.spaces[m.group(1)]
        self.reply(204, None)

    def do_POST(self):
        url = urlparse(self.path)
        space, path = self.route()
        if space is None or path not in ("/api/saved_objects/_import", "/api/saved_objects/_bulk_get",
                                         "/api/spaces/space"):
            return self.reply(404, {"statusCode": 404})
        if not self.authorised():
            return
        if not self.headers.get("kbn-xsrf"):
            return self.reply(400, {"statusCode": 400, "message": "Request must contain a kbn-xsrf header."})
        raw = self.rfile.read(int(self.headers["content-length"]))
        if path == "/api/spaces/space":
            body = json.loads(raw)
            if body["id"] in self.server.spaces:
                return self.reply(409, {"statusCode": 409, "message": "space exists"})
            self.server.spaces[body["id"]] = {}
            return self.reply(200, {"id": body["id"], "name": body["name"], "disabledFeatures": []})
        store = self.server.spaces[space]
        if path == "/api/saved_objects/_bulk_get":
            found = []
            for want in json.loads(raw):
                key = (want["type"], want["id"])
                found.append(store[key] if key in store else {
                    "id": want["id"], "type": want["type"],
                    "error": {"statusCode": 404, "error": "Not Found", "message": "Saved object not found"}})
            return self.reply(200, {"saved_objects": found})
        if parse_qs(url.query).get("overwrite") != ["true"]:
            return self.reply(409, {"statusCode": 409, "message": "test peer requires overwrite=true"})
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
            problem = self.migration_problem(obj)
            if problem:
                errors.append({"type": obj["type"], "id": obj["id"], "meta": meta,
                               "error": {"type": "unknown", "statusCode": 400, "message": problem}})
                continue
            if obj["id"] in self.server.fail_ids:
                errors.append({"type": obj["type"], "id": obj["id"], "meta": meta,
                               "error": {"type": "missing_references", "references": obj.get("references", [])}})
                continue
            overwrite = (obj["type"], obj["id"]) in store
            store[(obj["type"], obj["id"])] = obj
            success.append({"type": obj["type"], "id": obj["id"], "meta": meta, **({"overwrite": True} if overwrite else {})})
        self.server.imports += 1
        self.reply(200, {"success": not errors, "successCount": len(success), "successResults": success,
                         "errors": errors})

    def migration_problem(self, obj: dict) -> str | None:
        tmv, core = obj.get("typeMigrationVersion"), obj.get("coreMigrationVersion")
        if not tmv or not core:
            return (f"{obj['type']}:{obj['id']} has no typeMigrationVersion/coreMigrationVersion: Kibana would run "
                    "every migration of its type on it (test peer refuses)")
        newest = self.server.accepts.get(obj["type"])
        if newest is None or version(tmv) > version(newest):
            return (f'Document "{obj["id"]}" belongs to a more recent version of Kibana [{tmv}] when the last '
                    f"known version is [{newest}].")
        if version(core) > version("8.15.3"):
            return f"coreMigrationVersion {core} is newer than this Kibana (8.15.3)"
        return None


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

    from aiswatch.cli import main

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


def test_aiswatch_setup_logs_in_to_kibana_with_the_password_file(kibana, es_url, names, monkeypatch, tmp_path):
    """The compose stack's setup user has its password in a file (elasticsearch.password_file): the
    Kibana import uses the same credentials as the cluster connection; KIBANA_* still come first."""
    from click.testing import CliRunner

    from aiswatch.cli import main

    server = kibana(not_ready=0)
    secret = tmp_path / "password"
    secret.write_text("s3cret-for-test\n")
    for name in ("KIBANA_API_KEY", "KIBANA_USERNAME", "KIBANA_PASSWORD", "ES_API_KEY", "ES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ES_USERNAME", "elastic")
    monkeypatch.setenv("AISWATCH_ELASTICSEARCH__PASSWORD_FILE", str(secret))
    args = ["setup", "--es", es_url, "--namespace", names.namespace, "--kibana", server.url, "--kibana-wait", "10"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "kibana dashboard aiswatch-dashboard: ok" in result.output and "s3cret-for-test" not in result.output
    monkeypatch.setenv("KIBANA_USERNAME", "elastic")
    monkeypatch.setenv("KIBANA_PASSWORD", "not-the-file")
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0 and "refused the credentials" in str(refused.exception)


def test_the_peer_refuses_objects_without_migration_versions(kibana):
    """The peer is strict where real Kibana's behaviour matters, so the import tests above can fail."""
    server = kibana(not_ready=0, accepts={**MIGRATION_VERSIONS, "lens": "8.6.0"})
    lines = NDJSON_PATH.read_text().splitlines()
    bare = []
    for line in lines:
        obj = json.loads(line)
        if obj["type"] == "search":
            del obj["typeMigrationVersion"]
        bare.append(json.dumps(obj))
    rows = import_saved_objects(server.url, "\n".join(bare) + "\n", username="elastic",
                                password="s3cret-for-test", wait_seconds=10)
    failed = {r["id"]: r["error"]["message"] for r in rows if not r["success"]}
    searches = {json.loads(l)["id"] for l in lines if json.loads(l)["type"] == "search"}
    lenses = {json.loads(l)["id"] for l in lines if json.loads(l)["type"] == "lens"}
    assert set(failed) == searches | lenses
    assert all("would run every migration" in failed[i] for i in searches)
    assert all("more recent version of Kibana [8.9.0]" in failed[i] for i in lenses)


def check_imported(base: str, headers: dict, space: str) -> None:
    """After an import into ``space``: every object is there without an error, the migrations kept our state,
    and every dashboard panel resolves to an object that is there."""
    import urllib3

    http = urllib3.PoolManager(ca_certs=os.environ.get("KIBANA_CA_CERTS") or None)
    mine = [json.loads(line) for line in NDJSON_PATH.read_text().splitlines()]
    resp = http.request("POST", f"{base}/s/{space}/api/saved_objects/_bulk_get",
                        body=json.dumps([{"type": o["type"], "id": o["id"]} for o in mine]).encode(),
                        headers={**headers, "kbn-xsrf": "aiswatch-test", "content-type": "application/json"},
                        retries=False, timeout=30.0)
    assert resp.status == 200, resp.data[:300]
    got = {(o["type"], o["id"]): o for o in json.loads(resp.data)["saved_objects"]}
    assert set(got) == {(o["type"], o["id"]) for o in mine}
    errors = {k: o["error"] for k, o in got.items() if "error" in o}
    assert not errors, f"objects Kibana cannot read back: {errors}"
    for obj in mine:
        back = got[(obj["type"], obj["id"])]
        assert version(back.get("typeMigrationVersion") or "0") >= version(obj["typeMigrationVersion"]), \
            f"{back['id']}: read back with typeMigrationVersion {back.get('typeMigrationVersion')!r}"
        if obj["type"] == "lens":  # no 7.x migration rewrote the 8.x datasource state
            assert set(back["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]) == \
                set(obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]), back["id"]
        if obj["type"] == "visualization":
            assert json.loads(back["attributes"]["visState"])["params"] == \
                json.loads(obj["attributes"]["visState"])["params"], back["id"]
    dash = got[("dashboard", "aiswatch-dashboard")]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dash["references"]}
    assert len(panels) == len(json.loads(mine[-1]["attributes"]["panelsJSON"]))
    for panel in panels:
        ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        target = got.get((ref["type"], ref["id"]))
        assert target is not None and "error" not in target, f"dashboard panel {panel['panelIndex']} -> {ref}"


def import_into_a_temporary_space(base: str, headers: dict, **kw) -> None:
    import urllib3

    http = urllib3.PoolManager(ca_certs=os.environ.get("KIBANA_CA_CERTS") or None)
    space = f"aiswatch-test-{uuid.uuid4().hex[:8]}"
    xsrf = {**headers, "kbn-xsrf": "aiswatch-test", "content-type": "application/json"}
    resp = http.request("POST", f"{base}/api/spaces/space", body=json.dumps({"id": space, "name": space}).encode(),
                        headers=xsrf, retries=False, timeout=30.0)
    assert resp.status == 200, f"cannot create a test space: HTTP {resp.status} {resp.data[:300]}"
    try:
        rows = import_saved_objects(base, space=space, **kw)
        assert [r for r in rows if not r["success"]] == []
        check_imported(base, headers, space)
    finally:
        http.request("DELETE", f"{base}/api/spaces/space/{space}", headers=xsrf, retries=False, timeout=30.0)


def test_import_and_read_back_from_the_peer(kibana):
    """The read-back checks, exercised on the peer (they run against a real Kibana below when there is one)."""
    server = kibana(not_ready=0)
    headers = _auth_headers("elastic", "s3cret-for-test", None)
    import_into_a_temporary_space(server.url, headers, username="elastic", password="s3cret-for-test", wait_seconds=10)
    assert list(server.spaces) == ["default"], "the test space was not deleted"
    # the checks can fail: a dashboard panel whose object is missing
    space = "broken"
    server.spaces[space] = {k: v for k, v in server.store.items()}
    import_saved_objects(server.url, username="elastic", password="s3cret-for-test", wait_seconds=10, space=space)
    del server.spaces[space][("lens", "aiswatch-lens-station-spool")]
    with pytest.raises(AssertionError, match="cannot read back"):
        check_imported(server.url, headers, space)


def test_import_into_a_real_kibana():
    url = os.environ.get("KIBANA_URL")
    if not url:
        pytest.skip("KIBANA_URL not set: the import was checked against the protocol peer only; set KIBANA_URL "
                    "(and KIBANA_USERNAME/KIBANA_PASSWORD or KIBANA_API_KEY) to a Kibana 8.9+ to run it for real")
    base = url.rstrip("/")
    import_into_a_temporary_space(base, _auth_headers(None, None, None), wait_seconds=120)
