"""Kibana saved objects for aiswatch, generated from the spec files so they never drift, and their import.

``python -m kibana.saved_objects > kibana/saved_objects.ndjson`` writes the committed file (a test
checks that the file equals what this module generates). It holds, for Kibana 8.9 or later
(``MIN_KIBANA_VERSION``, see ``TYPE_MIGRATION_VERSIONS``):

- data views for the raw daily indices (``ais-*``), ``ships-seen``, ``aiswatch-events`` and
  ``aiswatch-metrics`` (patterns taken from ``es_templates``);
- the three Vega maps, each embedding its ``kibana/specs/*.json`` file verbatim;
- Lens charts: messages per minute, vessels by type, events by type over time, and station health
  (messages per minute by source, errors, spool depth);
- saved searches for vessels by name, MMSI, destination and type;
- one dashboard combining them ("what is out there, what happened, is my station healthy").

Ids are fixed strings (``aiswatch-…``), so importing with ``overwrite=true`` is idempotent.
``import_saved_objects`` waits for Kibana's status API, then posts the NDJSON to
``/api/saved_objects/_import?overwrite=true`` and reports every object.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid

from aiswatch import es_templates
from aiswatch.kibana import HERE, SPEC_NAMES, spec_text

log = logging.getLogger(__name__)

NDJSON_PATH = HERE / "saved_objects.ndjson"
KIBANA_VERSION = "8.15.3"  # the version docker-compose.yml runs; panels carry it
# Kibana's import runs every migration of a type newer than an object's typeMigrationVersion, and every
# migration there is when an object has neither typeMigrationVersion nor migrationVersion
# (collect_saved_objects.ts sets it to ''): the 7.x Lens migrations then read
# state.datasourceStates.indexpattern, which our 8.x "formBased" state does not have. So each object
# says which shape it already is, with the values Kibana 8.x exports carry. Kibana refuses a version newer
# than the newest it knows, so these objects need Kibana 8.9 or later (lens and dashboard 8.9.0).
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSIONS = {
    "index-pattern": "8.0.0",
    "visualization": "8.5.0",
    "lens": "8.9.0",
    # search: 8.0.0 is its conversion to multiple namespaces (convertToMultiNamespaceTypeVersion), the newest
    # version every 8.x knows; later changes are model versions that run on import as they should
    "search": "8.0.0",
    "dashboard": "8.9.0",
}
MIN_KIBANA_VERSION = "8.9.0"
DEFAULT_TIME = ("now-1h", "now")
EMPTY_SEARCH = json.dumps({"query": {"query": "", "language": "kuery"}, "filter": []})

# data view id -> (template key, display name); the title (pattern) comes from es_templates
DATA_VIEWS = {
    "aiswatch-dv-ais": ("ais", "AIS messages (ais-*)"),
    "aiswatch-dv-ships": ("ships-seen", "Ships seen (latest state)"),
    "aiswatch-dv-events": ("events", "aiswatch events"),
    "aiswatch-dv-metrics": ("metrics", "aiswatch station health"),
}

VEGA_VIS = {
    "vessel_map": ("aiswatch-vis-vessel-map", "Vessel map", "Latest position of every ship seen in the time range."),
    "tracks_map": ("aiswatch-vis-tracks-map", "Vessel tracks", "Recent trails per vessel (at most 200 vessels x 100 positions)."),
    "events_map": ("aiswatch-vis-events-map", "Behaviour events map", "Gaps, loitering, encounters, spoofing and identity events."),
}


def _pattern(template_key: str, namespace: str) -> str:
    patterns = es_templates.load(template_key, namespace)["index_patterns"]
    return ",".join(patterns)


def data_view(dv_id: str, namespace: str = "") -> dict:
    key, name = DATA_VIEWS[dv_id]
    return {"type": "index-pattern", "id": dv_id,
            "attributes": {"title": _pattern(key, namespace), "name": name, "timeFieldName": "@timestamp"},
            "references": []}


def _namespaced_spec(name: str, namespace: str) -> str:
    text = spec_text(name)
    if not namespace:
        return text  # verbatim: the committed objects embed the file exactly
    spec = json.loads(text)
    for data in spec.get("data", []):
        url = data.get("url")
        if isinstance(url, dict) and "index" in url:
            url["index"] = ",".join(namespace + p for p in url["index"].split(","))
    return json.dumps(spec, indent=2)


def vega_visualization(spec_name: str, namespace: str = "") -> dict:
    vis_id, title, description = VEGA_VIS[spec_name]
    vis_state = {"title": title, "type": "vega", "aggs": [], "params": {"spec": _namespaced_spec(spec_name, namespace)}}
    return {"type": "visualization", "id": vis_id,
            "attributes": {"title": title, "description": description, "visState": json.dumps(vis_state),
                           "uiStateJSON": "{}", "version": 1,
                           "kibanaSavedObjectMeta": {"searchSourceJSON": EMPTY_SEARCH}},
            "references": []}


# --- Lens -------------------------------------------------------------------------------------------

def _col_id(lens_id: str, name: str) -> str:
    # stable ids so the generated file does not change from run to run
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aiswatch/{lens_id}/{name}"))


def _date_histogram(field: str = "@timestamp", interval: str = "auto") -> dict:
    return {"label": field, "dataType": "date", "operationType": "date_histogram", "sourceField": field,
            "isBucketed": True, "scale": "interval",
            "params": {"interval": interval, "includeEmptyRows": True, "dropPartials": False}}


def _count(label: str, per: str | None = None) -> dict:
    """A document count; ``per`` ('s', 'm', 'h', 'd') normalises it to a rate whatever the bucket size."""
    col = {"label": label, "dataType": "number", "operationType": "count", "isBucketed": False,
           "scale": "ratio", "sourceField": "___records___", "params": {"emptyAsNull": True}, "customLabel": True}
    if per:
        col["timeScale"] = per
    return col


def _metric(op: str, field: str, label: str) -> dict:
    return {"label": label, "dataType": "number", "operationType": op, "sourceField": field, "isBucketed": False,
            "scale": "ratio", "params": {"emptyAsNull": True}, "customLabel": True}


def _terms(field: str, order_by: str, size: int = 10, label: str | None = None) -> dict:
    return {"label": label or f"Top {size} values of {field}", "dataType": "string", "operationType": "terms",
            "sourceField": field, "isBucketed": True, "scale": "ordinal", "customLabel": label is not None,
            "params": {"size": size, "orderBy": {"type": "column", "columnId": order_by}, "orderDirection": "desc",
                       "otherBucket": True, "missingBucket": False, "parentFormat": {"id": "terms"}}}


def lens_xy(lens_id: str, title: str, description: str, dv_id: str, series_type: str,
            x: tuple[str, dict], ys: list[tuple[str, dict]], split: tuple[str, dict] | None = None) -> dict:
    """A Lens XY chart with one data layer on ``dv_id`` (x, y columns and an optional breakdown)."""
    layer_id = _col_id(lens_id, "layer")
    columns: dict[str, dict] = {}
    order = []
    for name, col in [x] + ([split] if split else []) + ys:
        cid = _col_id(lens_id, name)
        col = dict(col)
        if col.get("operationType") == "terms":
            col["params"] = dict(col["params"], orderBy={"type": "column", "columnId": _col_id(lens_id, col["params"]["orderBy"]["columnId"])})
        columns[cid] = col
        order.append(cid)
    layer = {"layerId": layer_id, "layerType": "data", "seriesType": series_type,
             "xAccessor": _col_id(lens_id, x[0]), "accessors": [_col_id(lens_id, y[0]) for y in ys],
             "palette": {"type": "palette", "name": "default"}}
    if split:
        layer["splitAccessor"] = _col_id(lens_id, split[0])
    visualization = {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide",
                     "preferredSeriesType": series_type, "fittingFunction": "None",
                     "axisTitlesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
                     "layers": [layer]}
    state = {"visualization": visualization, "query": {"query": "", "language": "kuery"}, "filters": [],
             "datasourceStates": {"formBased": {"layers": {layer_id: {
                 "columns": columns, "columnOrder": order, "incompleteColumns": {}}}}},
             "internalReferences": [], "adHocDataViews": {}}
    return {"type": "lens", "id": lens_id,
            "attributes": {"title": title, "description": description, "visualizationType": "lnsXY",
                           "state": state},
            "references": [{"type": "index-pattern", "id": dv_id, "name": f"indexpattern-datasource-layer-{layer_id}"}]}


def lens_charts() -> list[dict]:
    return [
        lens_xy("aiswatch-lens-messages-per-minute", "Messages per minute",
                "Decoded AIS messages indexed per minute, by kind (position, static, ...).", "aiswatch-dv-ais",
                "bar_stacked", ("time", _date_histogram()), [("count", _count("Messages per minute", per="m"))],
                split=("kind", _terms("msg_kind", "count", 6, "Message kind"))),
        lens_xy("aiswatch-lens-vessels-by-type", "Vessels by type",
                "Distinct vessels seen in the time range per ship-type category.", "aiswatch-dv-ships",
                "bar_horizontal", ("category", _terms("ship_category", "vessels", 15, "Ship type")),
                [("vessels", _metric("unique_count", "mmsi", "Vessels"))]),
        lens_xy("aiswatch-lens-events-by-type", "Events by type over time",
                "Behaviour events per type over time.", "aiswatch-dv-events",
                "bar_stacked", ("time", _date_histogram()), [("count", _count("Events"))],
                split=("type", _terms("type", "count", 10, "Event type"))),
        lens_xy("aiswatch-lens-station-messages", "Station health: messages per minute by source",
                "Pipeline throughput per source (rate_per_min of the metrics documents).", "aiswatch-dv-metrics",
                "line", ("time", _date_histogram()), [("rate", _metric("average", "rate_per_min", "Messages per minute"))],
                split=("source", _terms("source", "rate", 10, "Source"))),
        lens_xy("aiswatch-lens-station-errors", "Station health: errors",
                "Rejected lines, bad checksums, expired fragments and bulk errors (counter values).",
                "aiswatch-dv-metrics", "line", ("time", _date_histogram()),
                [("rejected", _metric("max", "rejected", "Rejected lines")),
                 ("bad_checksum", _metric("max", "bad_checksum", "Bad checksums")),
                 ("expired", _metric("max", "fragments_expired", "Expired fragments")),
                 ("bulk", _metric("max", "bulk_errors", "Bulk errors"))]),
        lens_xy("aiswatch-lens-station-spool", "Station health: spool depth",
                "Documents waiting on disk because Elasticsearch was slow or down (0 when healthy).",
                "aiswatch-dv-metrics", "area", ("time", _date_histogram()),
                [("spool", _metric("max", "spool_depth", "Spool depth"))]),
        lens_xy("aiswatch-lens-station-losses", "Station health: losses",
                "UDP datagrams dropped by the receiver and by the kernel, documents neither delivered nor "
                "spooled (counter values; flat when nothing is lost).",
                "aiswatch-dv-metrics", "line", ("time", _date_histogram()),
                [("dropped", _metric("max", "datagrams_dropped", "Datagrams dropped (receiver)")),
                 ("kernel", _metric("max", "kernel_drops", "Datagrams dropped (kernel)")),
                 ("lost", _metric("max", "documents_lost", "Documents lost"))]),
    ]


# --- saved searches -----------------------------------------------------------------------------------

SEARCH_COLUMNS = ["name", "mmsi", "ship_type_text", "identity.flag", "destination", "sog", "nav_status_text"]


def saved_search(search_id: str, title: str, description: str, query: str, sort: list, dv_id: str = "aiswatch-dv-ships",
                 columns: list[str] = SEARCH_COLUMNS) -> dict:
    source = {"query": {"query": query, "language": "kuery"}, "filter": [],
              "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
    return {"type": "search", "id": search_id,
            "attributes": {"title": title, "description": description, "columns": list(columns), "sort": sort,
                           "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)}},
            "references": [{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": dv_id}]}


def saved_searches() -> list[dict]:
    return [
        saved_search("aiswatch-search-vessels-by-name", "Vessels by name",
                     "Ships with a reported name, A to Z. Type e.g. name:*FERRY* to search.", "name:*",
                     [["name.keyword", "asc"]]),
        saved_search("aiswatch-search-vessels-by-mmsi", "Vessels by MMSI",
                     "Every ship seen, by MMSI. Type e.g. mmsi:257* for a flag's MID.", "",
                     [["mmsi", "asc"]], columns=["mmsi"] + [c for c in SEARCH_COLUMNS if c != "mmsi"]),
        saved_search("aiswatch-search-vessels-by-destination", "Vessels by destination",
                     "Ships with a reported destination. Type e.g. destination:OSLO.", "destination:*",
                     [["destination.keyword", "asc"]],
                     columns=["destination", "name", "mmsi", "eta", "ship_type_text", "sog"]),
        saved_search("aiswatch-search-vessels-by-type", "Vessels by type",
                     "Ships by ship-type category. Type e.g. ship_category:tanker.", "ship_category:*",
                     [["ship_category", "asc"], ["name.keyword", "asc"]],
                     columns=["ship_category", "ship_type_text", "name", "mmsi", "length", "sog"]),
    ]


# --- dashboard --------------------------------------------------------------------------------------

# (type, id, x, y, w, h) on Kibana's 48-column grid
DASHBOARD_PANELS = [
    ("visualization", "aiswatch-vis-vessel-map", 0, 0, 32, 22),
    ("lens", "aiswatch-lens-vessels-by-type", 32, 0, 16, 11),
    ("lens", "aiswatch-lens-messages-per-minute", 32, 11, 16, 11),
    ("visualization", "aiswatch-vis-tracks-map", 0, 22, 24, 18),
    ("visualization", "aiswatch-vis-events-map", 24, 22, 24, 18),
    ("lens", "aiswatch-lens-events-by-type", 0, 40, 24, 12),
    ("search", "aiswatch-search-vessels-by-name", 24, 40, 24, 12),
    ("lens", "aiswatch-lens-station-messages", 0, 52, 24, 10),
    ("lens", "aiswatch-lens-station-errors", 24, 52, 24, 10),
    ("lens", "aiswatch-lens-station-spool", 0, 62, 24, 10),
    ("lens", "aiswatch-lens-station-losses", 24, 62, 24, 10),
]


def dashboard() -> dict:
    panels, references = [], []
    for i, (kind, obj_id, x, y, w, h) in enumerate(DASHBOARD_PANELS, start=1):
        index = str(i)
        panels.append({"version": KIBANA_VERSION, "type": kind, "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
                       "panelIndex": index, "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{index}"})
        references.append({"name": f"{index}:panel_{index}", "type": kind, "id": obj_id})
    return {"type": "dashboard", "id": "aiswatch-dashboard",
            "attributes": {"title": "aiswatch: ships, events, station health",
                           "description": "What is out there (vessel map, tracks, types), what happened (events), "
                                          "is my station healthy (throughput, errors, spool, losses).",
                           "panelsJSON": json.dumps(panels),
                           "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "syncCursor": True,
                                                      "syncTooltips": False, "hidePanelTitles": False}),
                           "timeRestore": True, "timeFrom": DEFAULT_TIME[0], "timeTo": DEFAULT_TIME[1],
                           "refreshInterval": {"pause": False, "value": 30000}, "version": 1,
                           "kibanaSavedObjectMeta": {"searchSourceJSON": EMPTY_SEARCH}},
            "references": references}


def build_saved_objects(namespace: str = "") -> list[dict]:
    """Every saved object, referenced objects before the objects that use them."""
    objects = [data_view(dv, namespace) for dv in DATA_VIEWS]
    objects += [vega_visualization(name, namespace) for name in SPEC_NAMES]
    objects += lens_charts()
    objects += saved_searches()
    objects.append(dashboard())
    for obj in objects:
        obj["coreMigrationVersion"] = CORE_MIGRATION_VERSION
        obj["typeMigrationVersion"] = TYPE_MIGRATION_VERSIONS[obj["type"]]
    return objects


def to_ndjson(objects: list[dict]) -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in objects)


def generate(namespace: str = "") -> str:
    return to_ndjson(build_saved_objects(namespace))


# --- import -----------------------------------------------------------------------------------------

class KibanaError(RuntimeError):
    pass


def _auth_headers(username: str | None, password: str | None, api_key: str | None) -> dict[str, str]:
    import urllib3

    api_key = api_key or os.environ.get("KIBANA_API_KEY") or os.environ.get("ES_API_KEY") or None
    username = username or os.environ.get("KIBANA_USERNAME") or os.environ.get("ES_USERNAME") or None
    password = password or os.environ.get("KIBANA_PASSWORD") or os.environ.get("ES_PASSWORD") or None
    if api_key:
        return {"authorization": f"ApiKey {api_key}"}
    if username:
        return urllib3.make_headers(basic_auth=f"{username}:{password or ''}")
    return {}


def wait_for_kibana(http, base: str, headers: dict, wait_seconds: float) -> None:
    """Poll ``/api/status`` until Kibana says it is available (8.x level, 7.x state) or time runs out."""
    deadline = time.monotonic() + wait_seconds
    last = "no answer"
    delay = 1.0
    while True:
        try:
            resp = http.request("GET", base + "/api/status", headers=headers, timeout=10.0, retries=False)
            if resp.status == 200:
                overall = (json.loads(resp.data or b"{}").get("status") or {}).get("overall") or {}
                if overall.get("level", overall.get("state")) in ("available", "green"):
                    return
                last = f"status {overall.get('level') or overall.get('state')}"
            elif resp.status in (401, 403):
                raise KibanaError(f"Kibana at {base} refused the credentials (HTTP {resp.status}); "
                                  "set KIBANA_USERNAME/KIBANA_PASSWORD or KIBANA_API_KEY")
            else:
                last = f"HTTP {resp.status}"
        except KibanaError:
            raise
        except Exception as exc:  # connection refused while Kibana starts
            last = type(exc).__name__
        if time.monotonic() + delay > deadline:
            raise KibanaError(f"Kibana at {base} not ready after {wait_seconds:.0f}s (last: {last})")
        log.info("waiting for Kibana at %s (%s)", base, last)
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def import_saved_objects(kibana_url: str, ndjson: str | None = None, *, username: str | None = None,
                         password: str | None = None, api_key: str | None = None, wait_seconds: float = 300.0,
                         ca_certs: str | None = None, space: str | None = None, namespace: str = "") -> list[dict]:
    """Import ``ndjson`` (default: the committed saved objects) into Kibana, overwriting; idempotent.

    namespace: with no ``ndjson`` given, import the objects generated for this index-name prefix.
    space: a Kibana space id (default: the default space).

    Credentials: arguments, else KIBANA_API_KEY / KIBANA_USERNAME + KIBANA_PASSWORD, else the ES_*
    ones. Waits up to ``wait_seconds`` for Kibana. Returns one row per object in file order:
    ``{"type", "id", "title", "success": bool, "error": ...}``.
    """
    import urllib3

    if ndjson is None:
        ndjson = generate(namespace) if namespace else NDJSON_PATH.read_text()
    objects = [json.loads(line) for line in ndjson.splitlines() if line.strip()]
    base = kibana_url.rstrip("/") + (f"/s/{space}" if space else "")
    headers = _auth_headers(username, password, api_key)
    ca_certs = ca_certs or os.environ.get("KIBANA_CA_CERTS") or None
    http = urllib3.PoolManager(ca_certs=ca_certs) if ca_certs else urllib3.PoolManager()
    wait_for_kibana(http, kibana_url.rstrip("/"), headers, wait_seconds)
    body, content_type = urllib3.encode_multipart_formdata(
        {"file": ("aiswatch.ndjson", ndjson.encode(), "application/ndjson")})
    resp = http.request("POST", base + "/api/saved_objects/_import?overwrite=true", body=body,
                        headers={**headers, "kbn-xsrf": "aiswatch", "content-type": content_type},
                        timeout=120.0, retries=False)
    if resp.status != 200:
        raise KibanaError(f"saved-objects import failed: HTTP {resp.status}: {resp.data[:500].decode(errors='replace')}")
    answer = json.loads(resp.data)
    ok = {(r["type"], r["id"]) for r in answer.get("successResults", [])}
    errors = {(e["type"], e["id"]): e.get("error") for e in answer.get("errors", [])}
    rows = []
    for obj in objects:
        key = (obj["type"], obj["id"])
        row = {"type": obj["type"], "id": obj["id"], "title": obj.get("attributes", {}).get("title"),
               "success": key in ok and key not in errors}
        if not row["success"]:
            row["error"] = errors.get(key, "not reported by Kibana")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Print aiswatch's Kibana saved objects as NDJSON.")
    parser.add_argument("--namespace", default="", help="index-name prefix (as in aiswatch --namespace)")
    args = parser.parse_args(argv)
    sys.stdout.write(generate(args.namespace))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
