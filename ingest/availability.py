"""Whether Elasticsearch takes requests, as the sink last found it, and when to ask again.

A failed delivery marks the cluster down (``es_up`` gauge 0, one ERROR line per outage); while it
is down the writer asks ``GET /`` (``probe``) with a backoff from 0.5 s doubling up to
``probe_max_seconds``; the first answer marks it up again. ``failures`` counts failed deliveries
and probes, so a waiter can tell "still down" from "was down".
"""
from __future__ import annotations

import logging
import time

from aiswatch.ingest.counters import Counters

log = logging.getLogger(__name__)

FIRST_PROBE_WAIT = 0.5


class ClusterAvailability:
    """The sink's view of one cluster: up, or down with a next probe time."""

    def __init__(self, client, counters: Counters, probe_max_seconds: float = 10.0) -> None:
        self.client = client
        self.counters = counters
        self.probe_max_seconds = probe_max_seconds
        self.up = True
        self.failures = 0
        self.next_probe = 0.0
        self._probe_wait = FIRST_PROBE_WAIT
        counters.gauge("es_up", 1)

    def seconds_to_probe(self) -> float:
        return self.next_probe - time.monotonic()

    def probe_now(self) -> None:
        """Make the next probe due at once (someone is waiting for the answer)."""
        self.next_probe = 0.0

    def probe(self, pending: int) -> bool:
        """Ask the cluster whether it answers; True (and up again) if it does. ``pending``:
        documents waiting in the spool, for the log line."""
        try:
            self.client.options(request_timeout=5).info()
        except Exception as exc:  # any failure means: not yet
            self.failures += 1
            self._probe_wait = min(self._probe_wait * 2, self.probe_max_seconds)
            self.next_probe = time.monotonic() + self._probe_wait
            log.debug("Elasticsearch still unreachable (%s); next probe in %.1f s", type(exc).__name__,
                      self._probe_wait)
            return False
        log.warning("Elasticsearch is reachable again; replaying %d spooled documents", pending)
        self.up = True
        self._probe_wait = FIRST_PROBE_WAIT
        self.counters.gauge("es_up", 1)
        return True

    def mark_down(self, reason: str, spool_dir: object) -> None:
        """A delivery failed for ``reason``: down until a probe answers."""
        self.failures += 1
        if self.up:
            log.error("Elasticsearch unavailable (%s); spooling documents to %s", reason, spool_dir)
        self.up = False
        self.counters.gauge("es_up", 0)
        self.next_probe = time.monotonic() + self._probe_wait
