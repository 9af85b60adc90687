"""Render a Kibana Vega spec outside Kibana: ``aiswatch map --out ships.png``.

Kibana does three things to a Vega spec before Vega sees it, and so does this:

1. and 2. Every ``{index, body}`` data URL becomes an Elasticsearch search with Kibana's
   placeholders filled, and its response rows are inlined as ``values`` (``kibana.placeholders``,
   a port of Kibana 8's ``EsQueryParser``), so Vega never touches the network.
3. In map mode (``config.kibana.type == "map"``) Kibana supplies a Mercator projection named
   ``projection`` that follows the map view; here it is fitted to the data's bounds. Kibana's base
   map needs the internet, so here the land comes from Natural Earth's 1:10m polygons shipped with
   the package (``kibana.land``; only in the rendered copy, the specs stay Kibana's), with a graticule.

The result is rendered by the real Vega library (vl-convert-python) to SVG, PNG or a self-contained
HTML page (inline SVG plus the source spec).
"""
from __future__ import annotations

import copy
import html
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

from aiswatch.kibana.placeholders import KibanaContext, RenderError, resolve_data

log = logging.getLogger(__name__)

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
