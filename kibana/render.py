"""Render a Kibana Vega spec outside Kibana: ``aiswatch map --out ships.png``.

Kibana does three things to a Vega spec before Vega sees it, and this module does the same so the
picture matches what the dashboard shows:

1. Every data entry whose ``url`` is an object ``{index, body}`` is an Elasticsearch search. Kibana
   fills the placeholders first (``KibanaContext.query_url``, a port of Kibana 8's ``EsQueryParser``),
   in ``body.query`` and ``body.aggs`` only: ``{"%timefilter%": true}`` inside a range becomes
   ``gte``/``lte`` of the time picker, ``{"%timefilter%": "min"|"max"}`` a bound (``shift`` in
   ``unit``, default days), ``"%dashboard_context-must_clause%"`` (and ``-filter_clause``,
   ``-must_not_clause``; there is no ``-should_clause``) array elements are replaced by the
   dashboard's clauses (removed when there are none), ``"%context%": true`` + ``"%timefield%"``
   builds the whole query, and a date_histogram's ``{"%autointerval%": true|n}`` becomes Kibana's
   rounded interval for ~50 (or n) buckets (``calendar_interval`` for 1m/1h/1d, else ``fixed_interval``).
2. The response value at ``format.property`` (``hits.hits``, ``aggregations.x.buckets``) becomes the
   data's rows; here they are inlined as ``values``, so Vega never touches the network.
3. In map mode (``config.kibana.type == "map"``) Kibana supplies a Mercator projection named
   ``projection`` that follows the map view; here it is fitted to the data's bounds. Kibana's base
   map needs the internet, so here the land comes from Natural Earth's 1:10m polygons shipped with
   the package (``kibana.land``; only in the rendered copy, the specs stay Kibana's), with a graticule.

The result is rendered by the real Vega library (vl-convert-python) to SVG, PNG or a self-contained
HTML page (inline SVG plus the source spec).
"""
from __future__ import annotations

import copy
import datetime as dt
import html
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiswatch.common.times import iso_from_ms

log = logging.getLogger(__name__)

CLAUSES = {
    "%dashboard_context-must_clause%": "must",
    "%dashboard_context-filter_clause%": "filter",
    "%dashboard_context-must_not_clause%": "must_not",
}
# Kibana 8 has no should placeholder; a spec using it would send the string to Elasticsearch
NOT_A_CLAUSE = "%dashboard_context-should_clause%"
TIMEFILTER = "%timefilter%"
AUTOINTERVAL = "%autointerval%"
CONTEXT, TIMEFIELD, LEGACY_CONTEXT = "%context%", "%timefield%", "%context_query%"
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
# %timefilter% "unit": the names EsQueryParser._getTimeBound accepts (no plurals, no ms); default "d"
SHIFT_UNITS = {"w": UNIT_MS["w"], "week": UNIT_MS["w"], "d": UNIT_MS["d"], "day": UNIT_MS["d"],
               "h": UNIT_MS["h"], "hour": UNIT_MS["h"], "m": UNIT_MS["m"], "minute": UNIT_MS["m"],
               "s": UNIT_MS["s"], "second": UNIT_MS["s"]}
# EsQueryParser._roundInterval: (largest raw interval in ms, the interval it becomes)
ROUND_INTERVAL = [(500, "100ms"), (5_000, "1s"), (7_500, "5s"), (15_000, "10s"), (45_000, "30s"), (180_000, "1m"),
                  (450_000, "5m"), (1_200_000, "10m"), (2_700_000, "30m"), (7_200_000, "1h"), (21_600_000, "3h"),
                  (86_400_000, "12h"), (604_800_000, "24h"), (1_814_400_000, "1w")]
# @kbn/datemath unit types: a single "mixed" unit (1m, 1h, 1d) is a calendar interval, several are fixed
INTERVAL_UNIT_TYPE = {"ms": "fixed", "s": "fixed", "m": "mixed", "h": "mixed", "d": "mixed",
                      "w": "calendar", "M": "calendar", "y": "calendar"}
MAX_HITS = 10_000  # Elasticsearch's default index.max_result_window; specs ask for at most this


class RenderError(RuntimeError):
    """A spec that cannot be resolved (unknown placeholder, failed query, bad format.property)."""


def round_interval(ms: float) -> str:
    """Kibana's automatic date-histogram interval for a raw interval of ``ms`` (EsQueryParser._roundInterval)."""
    for limit, name in ROUND_INTERVAL:
        if ms <= limit:
            return name
    return "30d" if ms < 3_628_800_000 else "1y"


def date_histogram_interval(interval: str) -> dict[str, str]:
    """``{"fixed_interval": ...}`` or ``{"calendar_interval": ...}``, as Kibana's dateHistogramInterval decides."""
    m = re.fullmatch(r"([1-9][0-9]*)\s*(ms|s|m|h|d|w|M|y)", str(interval).strip())
    if not m:
        raise RenderError(f"invalid date_histogram interval {interval!r} (e.g. 30s, 5m, 1h)")
    kind = INTERVAL_UNIT_TYPE[m.group(2)]
    if kind == "calendar" and m.group(1) != "1":
        raise RenderError(f"invalid calendar interval {interval!r}: w, M and y take only 1")
    calendar = kind == "calendar" or (kind == "mixed" and m.group(1) == "1")
    return {"calendar_interval" if calendar else "fixed_interval": str(interval)}


def _js_falsy(value: Any) -> bool:
    # what `if (!subObj) continue` skips in Kibana: JS objects and arrays are truthy even when empty
    return value is None or value is False or value == "" or (type(value) in (int, float) and value == 0)


@dataclass
class KibanaContext:
    """What Kibana knows when it runs a spec's queries: the time picker and the dashboard's filters.

    filters: the dashboard's query as a bool query's clause lists, e.g. ``{"filter": [{"term": ...}]}``;
    with none, the must clause is ``match_all`` (as in Kibana) and the others are removed.

    The replacement follows Kibana 8's ``EsQueryParser`` (vis_types/vega/public/data_model/es_query_parser.ts):
    placeholders are replaced in ``body.query`` and ``body.aggs`` only; anything left elsewhere is an error
    here (Kibana would send it to Elasticsearch as it is).
    """

    start: dt.datetime
    end: dt.datetime
    filters: dict[str, list] = field(default_factory=dict)

    def clauses(self, kind: str) -> list:
        if kind in self.filters:
            return copy.deepcopy(list(self.filters[kind]))
        return [{"match_all": {}}] if kind == "must" else []

    def _bound(self, spec: dict, which: str) -> int | float:
        t = self.start if which == "min" else self.end
        ms: int | float = int(t.timestamp() * 1000)
        shift = spec.get("shift")
        if not _js_falsy(shift):
            if type(shift) not in (int, float):
                raise RenderError(f'{TIMEFILTER} "shift" must be a number, not {shift!r}')
            unit = spec.get("unit")
            unit = "d" if _js_falsy(unit) else unit
            if unit not in SHIFT_UNITS:
                raise RenderError(f'unknown {TIMEFILTER} "unit" {unit!r}: Kibana accepts '
                                  "w/week, d/day, h/hour, m/minute, s/second (default d)")
            ms += shift * SHIFT_UNITS[unit]
            if float(ms).is_integer():
                ms = int(ms)
        return ms

    def _range(self, sub: dict) -> dict:
        """``{"%timefilter%": true, ...}`` in place of itself, as Kibana's _createRangeFilter."""
        gte, lte = iso_from_ms(self._bound(sub, "min")), iso_from_ms(self._bound(sub, "max"))
        for key in (TIMEFILTER, "shift", "unit"):
            sub.pop(key, None)
        sub.update(gte=gte, lte=lte, format="strict_date_optional_time")
        return sub

    def interval(self, buckets: float) -> str:
        """The interval ``{"%autointerval%": buckets}`` becomes for this time range."""
        span = (self.end - self.start).total_seconds() * 1000
        return round_interval(span / buckets)

    def apply(self, node: Any, is_query: bool = True) -> Any:
        """A copy of a query (``is_query``) or aggregations fragment with its placeholders replaced."""
        node = copy.deepcopy(node)
        self._inject(node, is_query)
        return node

    def _inject(self, node: Any, is_query: bool, key: str | None = None) -> None:
        if isinstance(node, list):
            pos = 0
            while pos < len(node):
                item = node[pos]
                if item == NOT_A_CLAUSE:
                    raise RenderError(f"{NOT_A_CLAUSE} does not exist in Kibana 8: use "
                                      + ", ".join(CLAUSES) + " (Kibana would send the string to Elasticsearch)")
                if is_query and isinstance(item, str) and item in CLAUSES:
                    values = self.clauses(CLAUSES[item])
                    node[pos:pos + 1] = values  # one placeholder -> zero or more clauses
                    pos += len(values)
                else:
                    self._inject(item, is_query)
                    pos += 1
        elif isinstance(node, dict):
            for prop in list(node):
                sub = node[prop]
                if _js_falsy(sub):
                    continue
                if prop == "interval" and key == "date_histogram":
                    if isinstance(sub, str):
                        text = sub
                    elif isinstance(sub, dict) and not _js_falsy(sub.get(AUTOINTERVAL)):
                        size = sub[AUTOINTERVAL]
                        if size is True:
                            size = 50
                        elif type(size) not in (int, float):
                            raise RenderError(f"{AUTOINTERVAL} must be true or a number, not {size!r}")
                        text = self.interval(size)
                    else:
                        raise RenderError(f"date_histogram interval {sub!r}: use a string or {{\"{AUTOINTERVAL}\": true}}")
                    del node[prop]
                    # ES 8 has no plain 'interval' on date_histogram
                    node.update(date_histogram_interval(text))
                    continue
                if isinstance(sub, dict) and TIMEFILTER in sub:
                    mode = sub[TIMEFILTER]
                    if mode in ("min", "max"):
                        node[prop] = self._bound(sub, mode)
                    elif mode is True:
                        self._range(sub)
                    else:
                        raise RenderError(f"{TIMEFILTER} must be true, 'min' or 'max', not {mode!r}")
                    continue
                self._inject(sub, is_query, prop)

    def query_url(self, url: dict) -> dict:
        """The search body Kibana sends for a data ``url`` object (EsQueryParser.parseUrl)."""
        body = url.get("body")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise RenderError("url.body must be an object")
        body = copy.deepcopy(body)
        if LEGACY_CONTEXT in url:
            raise RenderError(f'legacy "{LEGACY_CONTEXT}": use "{CONTEXT}": true and "{TIMEFIELD}": "<time field>"')
        context, timefield = url.get(CONTEXT), url.get(TIMEFIELD)
        uses_context = CONTEXT in url or TIMEFIELD in url
        if "query" in body:
            if uses_context:
                raise RenderError(f"{CONTEXT} and {TIMEFIELD} cannot be combined with a custom body.query "
                                  "(use the %dashboard_context-*_clause% placeholders instead)")
            self._inject(body["query"], True)
        elif uses_context:
            if timefield:
                body["query"] = {"range": {timefield: self._range({TIMEFILTER: True})}}
            if context:
                query = {"bool": {"must": self.clauses("must"), "filter": self.clauses("filter"),
                                  "should": self.clauses("should"), "must_not": self.clauses("must_not")}}
                if timefield:
                    query["bool"]["must"].append(body["query"])
                body["query"] = query
        if "aggs" in body:
            self._inject(body["aggs"], False)
        left = _leftover_placeholder(body)
        if left:
            raise RenderError(f"{left}: Kibana replaces placeholders only inside body.query and body.aggs "
                              "(dashboard clauses only in body.query)")
        return body


def _leftover_placeholder(node: Any, path: str = "body") -> str | None:
    """Where a placeholder survived the replacement (say, %timefilter% outside query/aggs), or None."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in (TIMEFILTER, AUTOINTERVAL) or _is_placeholder(key):
                return f"{path}.{key}"
            found = _leftover_placeholder(value, f"{path}.{key}")
            if found:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _leftover_placeholder(value, f"{path}[{i}]")
            if found:
                return found
    elif _is_placeholder(node):
        return f"{path} = {node!r} (unknown Kibana placeholder)"
    return None


def _is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and len(value) > 2 and value.startswith("%") and value.endswith("%")


def _get_path(obj: Any, path: str | None) -> Any:
    if not path:
        return obj
    for part in path.split("."):
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return None
    return obj


def _namespaced(index: str, namespace: str) -> str:
    return ",".join(namespace + part.strip() for part in index.split(",")) if namespace else index


def resolve_data(spec: dict, client, ctx: KibanaContext, namespace: str = "") -> tuple[dict, dict[str, int]]:
    """A copy of ``spec`` whose Elasticsearch ``url`` data are replaced by the rows they return.

    Returns (spec, {data name: number of rows}).
    """
    spec = copy.deepcopy(spec)
    counts: dict[str, int] = {}
    for data in spec.get("data", []):
        url = data.get("url")
        if not isinstance(url, dict):
            continue
        if "index" not in url:
            raise RenderError(f"data {data.get('name')!r}: a url object needs 'index' and 'body'")
        index = _namespaced(url["index"], namespace)
        body = ctx.query_url(url)
        if int(body.get("size", 10)) > MAX_HITS:
            raise RenderError(f"data {data.get('name')!r}: size {body['size']} exceeds {MAX_HITS}")
        try:
            response = client.search(index=index, body=body, ignore_unavailable=True, allow_no_indices=True)
        except Exception as exc:  # a failed query is the user's problem to see, not a blank map
            raise RenderError(f"data {data.get('name')!r}: search on {index} failed: {exc}") from exc
        fmt = dict(data.pop("format", None) or {})
        rows = _get_path(response.body, fmt.pop("property", None))
        if rows is None:
            rows = []
        if not isinstance(rows, list):
            raise RenderError(f"data {data.get('name')!r}: format.property does not select a list")
        del data["url"]
        data["values"] = rows
        if fmt and fmt.get("type", "json") != "json":
            data["format"] = fmt
        counts[data.get("name", "?")] = len(rows)
    return spec, counts


def _points(node: Any, out: list[tuple[float, float]]) -> None:
    """Every {lat, lon} pair anywhere in the rows (geo_point objects in _source, top_hits, ...)."""
    if isinstance(node, dict):
        lat, lon = node.get("lat"), node.get("lon")
        if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and -90 <= lat <= 90 and -180 <= lon <= 180:
            out.append((float(lon), float(lat)))
        for value in node.values():
            if isinstance(value, (dict, list)):
                _points(value, out)
    elif isinstance(node, list):
        for value in node:
            _points(value, out)


def data_bounds(spec: dict) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) over every inlined row, or None without points."""
    pts: list[tuple[float, float]] = []
    for data in spec.get("data", []):
        _points(data.get("values"), pts)
    if not pts:
        return None
    lons, lats = [p[0] for p in pts], [p[1] for p in pts]
    return min(lons), min(lats), max(lons), max(lats)


def _nice_step(span: float) -> float:
    raw = span / 6
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30):
        if step >= raw:
            return step
    return 30


# the offline base map: sea, land, coastline and the graticule over both
SEA, LAND, COAST, GRATICULE, GRATICULE_LABEL = "#d6e6f2", "#f4f1e8", "#8a9ba8", "#9fb3c2", "#5f7482"
LEGEND_OFFSET = 18  # Vega's default distance of a legend from the view's edge


def legend_room(spec: dict) -> float:
    """Pixels the spec's right-hand legends take from the right edge of the view (0 without any).

    Estimated from the legend's title and its scale's domain (labels at ~0.62 em a character), so
    the data can be fitted to the rest of the view and no ship hides under a legend.
    """
    domains = {s.get("name"): s.get("domain") for s in spec.get("scales", [])}
    width = 0.0
    for legend in spec.get("legends", []):
        if legend.get("orient", "right") not in ("right", "top-right", "bottom-right"):
            continue
        scale = next((legend[k] for k in ("fill", "shape", "stroke", "size", "symbol") if k in legend), None)
        labels = domains.get(scale) if isinstance(domains.get(scale), list) else ["x" * 12]
        font = legend.get("labelFontSize", 10)
        label_w = max(len(str(v)) for v in labels) * 0.62 * font + 16 + 4  # symbol and its gap
        title_w = len(str(legend.get("title", ""))) * 0.68 * legend.get("titleFontSize", 11)
        width = max(width, max(label_w, title_w) + 2 * legend.get("padding", 5))
    return LEGEND_OFFSET + width + 8 if width else 0.0


def add_map_projection(spec: dict, width: int = 960, height: int = 640, padding: int = 30, land: bool = True) -> dict:
    """What Kibana's map mode provides: a Mercator projection named ``projection``, here fitted to the data.

    Without data the view comes from ``config.kibana`` (latitude, longitude, zoom) as in Kibana. The
    data are fitted beside any right-hand legend. In place of Kibana's base map, under the spec's own
    marks: the sea (rect mark ``basemap-sea``), the view's land from Natural Earth (path mark
    ``basemap-land``, data ``land-polygons``; ``land=False`` leaves it out) and a graticule over
    them (shape mark ``basemap-graticule``).
    """
    spec = copy.deepcopy(spec)
    kib = (spec.get("config") or {}).pop("kibana", {}) or {}
    spec["width"], spec["height"] = width, height
    spec["autosize"] = "none"
    spec.setdefault("background", "#ffffff")
    spec.setdefault("padding", 0)
    if any(p.get("name") == "projection" for p in spec.get("projections", [])):
        return spec
    from aiswatch.kibana.land import LandDataError, Mercator, land_paths, load_land

    bounds = data_bounds(spec)
    if bounds is None:
        view = Mercator.centred(float(kib.get("longitude", 0)), float(kib.get("latitude", 0)),
                                float(kib.get("zoom", 2)), width, height)
    else:
        min_lon, min_lat, max_lon, max_lat = bounds
        # a lone ship still gets a few kilometres of sea around it
        if max_lon - min_lon < 0.05:
            min_lon, max_lon = min_lon - 0.025, max_lon + 0.025
        if max_lat - min_lat < 0.03:
            min_lat, max_lat = min_lat - 0.015, max_lat + 0.015
        right = max(width - padding - legend_room(spec), width / 2)
        view = Mercator.fit((min_lon, min_lat, max_lon, max_lat), padding, padding, right, height - padding)
    spec["projections"] = [view.vega()] + list(spec.get("projections", []))
    (west, east), (north, south) = view.invert([0, width], [0, height])
    west, east, south, north = max(-180.0, float(west)), min(180.0, float(east)), float(south), float(north)
    step = max(_nice_step(min(east - west, north - south)), _nice_step(max(east - west, north - south) / 8))
    extent = [[max(-180, west - step), max(-85, south - step)], [min(180, east + step), min(85, north + step)]]
    basemap_data = [{"name": "graticule-lines",
                     "transform": [{"type": "graticule", "extent": extent, "step": [step, step],
                                    "precision": min(2.5, step / 4)}]}]
    basemap_marks: list[dict] = [{"name": "basemap-sea", "type": "rect", "interactive": False, "encode": {"update": {
        "x": {"value": 0}, "y": {"value": 0}, "width": {"signal": "width"}, "height": {"signal": "height"},
        "fill": {"value": SEA}}}}]
    if land:
        try:
            paths = land_paths(load_land(), view, width, height)
        except LandDataError as exc:
            raise RenderError(str(exc)) from None
        basemap_data.append({"name": "land-polygons", "values": [{"path": path} for path in paths]})
        basemap_marks.append({"name": "basemap-land", "type": "path", "clip": True, "interactive": False,
                              "from": {"data": "land-polygons"},
                              "encode": {"update": {"path": {"field": "path"}, "fill": {"value": LAND},
                                                    "stroke": {"value": COAST}, "strokeWidth": {"value": 0.7},
                                                    "strokeJoin": {"value": "round"}}}})
    # degree labels where the grid lines leave the view: meridians along the bottom, parallels on the left
    first_lon = math.ceil(extent[0][0] / step) * step
    first_lat = math.ceil(extent[0][1] / step) * step
    ticks = [{"lon": round(first_lon + i * step, 6), "lat": south, "axis": "lon"}
             for i in range(int((extent[1][0] - first_lon) / step) + 1)]
    ticks += [{"lon": west, "lat": round(first_lat + i * step, 6), "axis": "lat"}
              for i in range(int((extent[1][1] - first_lat) / step) + 1)]
    basemap_data.append({"name": "graticule-ticks", "values": ticks, "transform": [
        {"type": "geopoint", "projection": "projection", "fields": ["lon", "lat"], "as": ["tx", "ty"]},
        {"type": "filter", "expr": "datum.axis === 'lon' ? (datum.tx > 20 && datum.tx < width - 20)"
                                   " : (datum.ty > 12 && datum.ty < height - 20)"}]})
    spec["data"] = basemap_data + spec.get("data", [])
    label = ("datum.axis === 'lon'"
             " ? format(abs(datum.lon), '~g') + '°' + (datum.lon < 0 ? 'W' : datum.lon > 0 ? 'E' : '')"
             " : format(abs(datum.lat), '~g') + '°' + (datum.lat < 0 ? 'S' : datum.lat > 0 ? 'N' : '')")
    spec["marks"] = basemap_marks + [
        {"name": "basemap-graticule", "type": "shape", "clip": True, "interactive": False,
         "from": {"data": "graticule-lines"},
         "encode": {"update": {"stroke": {"value": GRATICULE}, "strokeWidth": {"value": 0.5},
                               "strokeOpacity": {"value": 0.6}}},
         "transform": [{"type": "geoshape", "projection": "projection"}]},
        {"name": "basemap-labels", "type": "text", "from": {"data": "graticule-ticks"}, "interactive": False,
         "encode": {"update": {
             "x": {"signal": "datum.axis === 'lon' ? datum.tx + 3 : 3"},
             "y": {"signal": "datum.axis === 'lon' ? height - 4 : datum.ty - 3"},
             "text": {"signal": label}, "fill": {"value": GRATICULE_LABEL}, "fontSize": {"value": 10}}}},
    ] + spec.get("marks", [])
    return spec


def prepare(spec: dict, client, ctx: KibanaContext, namespace: str = "", width: int = 960,
            height: int = 640, title: str | None = None, land: bool = True) -> tuple[dict, dict[str, int]]:
    """The spec as Vega would see it inside Kibana: data fetched and inlined, map projection supplied
    (with Natural Earth land under it unless ``land`` is false)."""
    resolved, counts = resolve_data(spec, client, ctx, namespace)
    is_map = ((spec.get("config") or {}).get("kibana") or {}).get("type") == "map"
    if is_map:
        resolved = add_map_projection(resolved, width, height, land=land)
    else:
        resolved.setdefault("width", width)
        resolved.setdefault("height", height)
    if title:
        resolved["title"] = {"text": title, "anchor": "start", "fontSize": 13, "offset": 6}
        if is_map:  # autosize none: make room above the map for the title
            resolved["padding"] = {"top": 26, "left": 6, "right": 6, "bottom": 6}
    return resolved, counts


def vl_convert():
    """The vl_convert module (the Vega library), or a RenderError saying how to install it."""
    try:
        import vl_convert as module
    except ImportError as exc:
        raise RenderError("rendering needs the Vega library from the vl-convert-python package, which is not "
                          f"importable here ({exc}); install it with: pip install 'vl-convert-python>=1.6'") from None
    return module


def to_svg(vega_spec: dict) -> str:
    # allowed_base_urls=[]: every row is inlined, so nothing may be fetched
    return vl_convert().vega_to_svg(vega_spec, allowed_base_urls=[])


def to_png(vega_spec: dict, scale: float = 1.0) -> bytes:
    return vl_convert().vega_to_png(vega_spec, scale=scale, allowed_base_urls=[])


def to_html(vega_spec: dict, source_spec: dict, title: str, svg: str | None = None) -> str:
    """A self-contained page: the rendered SVG inline (no CDN needed) and the Kibana spec it came from."""
    svg = svg if svg is not None else to_svg(vega_spec)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:sans-serif;margin:1em}pre{background:#f4f4f4;padding:1em;overflow:auto}</style>"
            "</head><body>\n<h1>" + html.escape(title) + "</h1>\n" + svg +
            "\n<details><summary>Vega spec (as imported into Kibana)</summary><pre>" +
            html.escape(json.dumps(source_spec, indent=2)) + "</pre></details>\n"
            "<script type=\"application/json\" id=\"vega-spec\">" +
            json.dumps(source_spec).replace("</", "<\\/") + "</script>\n</body></html>\n")


def undrawn_marks(spec: dict, svg: str, counts: dict[str, int]) -> list[str]:
    """Top-level marks of ``spec`` whose data returned rows but that drew nothing.

    Vega reports a spec error at run time (a field that does not exist, say) on the console and
    still returns a picture; this turns "rows in, no marks out" into a message instead of a blank map.
    """
    problems = []
    for mark in spec.get("marks", []):
        source = (mark.get("from") or {}).get("data") or ((mark.get("from") or {}).get("facet") or {}).get("data")
        rows = counts.get(source)
        if not rows or not mark.get("name"):
            continue
        if not re.search(r'class="mark-\w+ role-(?:mark|scope) ' + re.escape(mark["name"]) + r'"[^>]*>\s*<(?:path|g|text)', svg):
            problems.append(f"mark {mark['name']!r} drew nothing although {source!r} returned {rows} rows "
                            "(a field name in the spec that the documents do not have?)")
    return problems


def render_spec(spec: dict, client, ctx: KibanaContext, out: str | Path, namespace: str = "",
                width: int = 960, height: int = 640, title: str | None = None,
                land: bool = True) -> tuple[dict[str, int], list[str]]:
    """Render ``spec`` with live data to ``out`` (.png, .svg or .html).

    Returns (rows per data entry, problems found in the picture, see ``undrawn_marks``)."""
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".png", ".svg", ".html", ".htm"):
        raise RenderError(f"{out}: the output must end in .png, .svg or .html")
    vega_spec, counts = prepare(spec, client, ctx, namespace, width, height, title, land)
    svg = to_svg(vega_spec)
    problems = undrawn_marks(spec, svg, counts)
    if kind == ".png":
        out.write_bytes(to_png(vega_spec))
    elif kind == ".svg":
        out.write_text(svg)
    else:
        out.write_text(to_html(vega_spec, spec, title or "aiswatch map", svg))
    return counts, problems
