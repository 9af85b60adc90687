"""Index templates for every index aiswatch writes, one JSON file each (the schema contract).

Index names (each optionally behind a namespace prefix, see ``IndexNames``):
- ``ais-YYYY.MM.DD``    raw decoded messages, daily by message time (UTC)      -> ais.json
- ``ships-seen``        latest state per MMSI                                 -> ships-seen.json
- ``aiswatch-events``   behaviour events                                      -> events.json
- ``aiswatch-metrics``  pipeline counters, one doc per minute                 -> metrics.json
- ``aiswatch-state``    detection watermarks                                  -> state.json
- ``aiswatch-anchorages`` anchorages learnt from the data                     -> anchorages.json

The helper indices start with ``aiswatch-`` so that the ``ais-*`` pattern never catches them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
TEMPLATE_FILES = {"ais": "ais.json", "ships-seen": "ships-seen.json", "events": "events.json",
                  "metrics": "metrics.json", "state": "state.json", "anchorages": "anchorages.json"}


@dataclass(frozen=True)
class IndexNames:
    """Every index name aiswatch uses, behind an optional namespace prefix (tests use one each)."""

    namespace: str = ""

    def messages(self, day: str) -> str:
        """Daily raw index for a UTC day given as 'YYYY.MM.DD'."""
        return f"{self.namespace}ais-{day}"

    @property
    def messages_pattern(self) -> str:
        return f"{self.namespace}ais-*"

    @property
    def ships(self) -> str:
        return f"{self.namespace}ships-seen"

    @property
    def events(self) -> str:
        return f"{self.namespace}aiswatch-events"

    @property
    def metrics(self) -> str:
        return f"{self.namespace}aiswatch-metrics"

    @property
    def state(self) -> str:
        return f"{self.namespace}aiswatch-state"

    @property
    def anchorages(self) -> str:
        return f"{self.namespace}aiswatch-anchorages"

    def template_name(self, key: str) -> str:
        return f"{self.namespace}aiswatch-{key}"


def load(key: str, namespace: str = "") -> dict:
    """The composable index template ``key`` with its patterns moved behind ``namespace``."""
    body = json.loads((HERE / TEMPLATE_FILES[key]).read_text())
    body["index_patterns"] = [namespace + p for p in body["index_patterns"]]
    return body


def all_templates(namespace: str = "") -> dict[str, dict]:
    names = IndexNames(namespace)
    return {names.template_name(k): load(k, namespace) for k in TEMPLATE_FILES}
