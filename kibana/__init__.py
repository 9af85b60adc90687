"""Kibana content for aiswatch: the Vega map specs, the saved objects built from them, and a renderer.

- ``kibana/specs/*.json``: one Vega 5 spec per map (vessel map over ``ships-seen``, tracks over the
  raw ``ais-*`` indices, events over ``aiswatch-events``), written for Kibana's map mode and its
  query placeholders. They are the single source of truth: the saved objects embed them verbatim
  and ``aiswatch map`` renders them outside Kibana.
- ``kibana.saved_objects``: builds ``saved_objects.ndjson`` (data views, the Vega visualizations,
  Lens charts, saved searches, one dashboard) and imports it through Kibana's saved-objects API.
- ``kibana.render``: runs a spec's Elasticsearch queries the way Kibana would and renders it with
  the real Vega library (vl-convert) to SVG/PNG/HTML.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
SPEC_DIR = HERE / "specs"
SPEC_NAMES = ("vessel_map", "tracks_map", "events_map")


def spec_path(name: str) -> Path:
    if name not in SPEC_NAMES:
        raise KeyError(f"unknown spec {name!r}; known: {', '.join(SPEC_NAMES)}")
    return SPEC_DIR / f"{name}.json"


def spec_text(name: str) -> str:
    """The spec file exactly as committed (what the saved objects embed)."""
    return spec_path(name).read_text()


def load_spec(name: str) -> dict:
    return json.loads(spec_text(name))
