"""Whether Elasticsearch takes requests, as the sink last found it, and when to ask again.

Unknown at first: the writer's first step is a probe (``GET /``), which also tells the cluster's
UUID (``cluster_uuid``, for the spool's owner check). A failed delivery or probe marks the cluster
down (``es_up`` gauge 0, one ERROR line per outage, ``outage_seconds`` since when); while it is
down the writer probes with a backoff from 0.5 s doubling up to ``probe_max_seconds``; the first
answer marks it up again. ``failures`` counts failed deliveries and probes, so a waiter can tell
"still down" from "was down".
"""
from __future__ import annotations

import logging
import time

from aiswatch.ingest.counters import Counters

log = logging.getLogger(__name__)

FIRST_PROBE_WAIT = 0.5


class ClusterAvailability:
    """The sink's view of one cluster: up, or down with a next probe time."""

    def __init__(self, client, counters: Counters, probe_max_seconds: float = 10.0,
                 spool_dir: object = None) -> None:
        self.client = client
        self.spool_dir = spool_dir  # where documents go meanwhile, for the log line
        self.counters = counters
        self.probe_max_seconds = probe_max_seconds
        self.up = False          # until the first probe answers
        self.answered = False    # any probe ever answered
        self.cluster_uuid: str | None = None
        self.failures = 0
        self.next_probe = 0.0
        self._down_since: float | None = None
        self._probe_wait = FIRST_PROBE_WAIT
        counters.gauge("es_up", 1)

    def outage_seconds(self) -> float:
        """How long the cluster has been found down without a break (0 while up)."""
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def seconds_to_probe(self) -> float:
        return self.next_probe - time.monotonic()

    def probe_now(self) -> None:
        """Make the next probe due at once (someone is waiting for the answer)."""
        self.next_probe = 0.0

    def probe(self, pending: int) -> bool:
        """Ask the cluster whether it answers; True (and up again) if it does. ``pending``:
        documents waiting in the spool, for the log line."""
        try:
            info = self.client.options(request_timeout=5).info()
        except Exception as exc:  # any failure means: not yet
            self.failures += 1
            if self._down_since is None:
                self._went_down(type(exc).__name__)
            self._probe_wait = min(self._probe_wait * 2, self.probe_max_seconds)
            self.next_probe = time.monotonic() + self._probe_wait
            log.debug("Elasticsearch still unreachable (%s); next probe in %.1f s", type(exc).__name__,
                      self._probe_wait)
            return False
        try:
            self.cluster_uuid = str(info.get("cluster_uuid") or "") or None
        except AttributeError:
            self.cluster_uuid = None
        if self._down_since is not None:
            log.warning("Elasticsearch is reachable again after %.0f s; %d documents in the spool to replay",
                        self.outage_seconds(), pending)
        self.up = self.answered = True
        self._down_since = None
        self._probe_wait = FIRST_PROBE_WAIT
        self.counters.gauge("es_up", 1)
        return True

    def mark_down(self, reason: str) -> None:
        """A delivery failed for ``reason``: down until a probe answers."""
        self.failures += 1
        if self._down_since is None:
            self._went_down(reason)
        self.up = False
        self.counters.gauge("es_up", 0)
        self.next_probe = time.monotonic() + self._probe_wait

    def _went_down(self, reason: str) -> None:
        self._down_since = time.monotonic()
        self.up = False
        self.counters.gauge("es_up", 0)
        self.counters.incr("es_outages")
        log.error("Elasticsearch unavailable (%s); spooling documents to %s", reason, self.spool_dir)
