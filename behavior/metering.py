"""``ByteMeter``: what Elasticsearch sends the detector, counted (bytes, requests, the server's
``took``), through the client's node class; the benches and the byte-budget tests read it."""
from __future__ import annotations

import re
import threading

from aiswatch.ingest.esclient import PlainJsonNode


_TOOK = re.compile(rb'"took":(\d+)')


class ByteMeter:
    """Counts response bytes, requests and the server's ``took`` received from Elasticsearch (thread-safe)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.requests = 0
        self.took_ms = 0
        self.records: list[tuple[str, int, int | None]] = []   # (method and path, bytes, took ms)
        self._lock = threading.Lock()

    def add(self, n: int, target: str = "", took: int | None = None) -> None:
        with self._lock:
            self.bytes += n
            self.requests += 1
            self.took_ms += took or 0
            self.records.append((target, n, took))

    def reset(self) -> None:
        with self._lock:
            self.bytes = self.requests = self.took_ms = 0
            self.records = []

    def node_class(self) -> type:
        """A PlainJsonNode subclass that reports every response body to this meter."""
        meter = self

        class CountingNode(PlainJsonNode):
            def perform_request(self, method, target, *args, **kwargs):  # type: ignore[override]
                response = super().perform_request(method, target, *args, **kwargs)
                body = response.body or b""
                # "took" is the first key of a plain answer and the last of a filter_path one
                found = _TOOK.search(body[:64]) or _TOOK.search(body[-64:])
                meter.add(len(body), f"{method} {target.split('?')[0]}", int(found.group(1)) if found else None)
                return response

        return CountingNode
