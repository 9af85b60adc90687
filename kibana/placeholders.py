"""Kibana's placeholders in a Vega spec's Elasticsearch queries, filled as Kibana 8 fills them.

A port of Kibana's ``EsQueryParser`` (``KibanaContext``): every data entry whose ``url`` is an object
``{index, body}`` is a search. In ``body.query`` and ``body.aggs`` only, ``{"%timefilter%": true}``
inside a range becomes ``gte``/``lte`` of the time picker, ``{"%timefilter%": "min"|"max"}`` a bound
(``shift`` in ``unit``, default days), ``"%dashboard_context-must_clause%"`` (and ``-filter_clause``,
``-must_not_clause``; there is no ``-should_clause``) array elements are replaced by the dashboard's
clauses (removed when there are none), ``"%context%": true`` + ``"%timefield%"`` builds the whole
query, and a date_histogram's ``{"%autointerval%": true|n}`` becomes Kibana's rounded interval for
~50 (or n) buckets (``calendar_interval`` for 1m/1h/1d, else ``fixed_interval``). ``resolve_data``
runs the searches and inlines the rows found at ``format.property`` as ``values``.
"""
from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from aiswatch.common.times import iso_from_ms

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

    exit_status = 1   # one Error: line on the command line (aiswatch.cli.errors)


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
