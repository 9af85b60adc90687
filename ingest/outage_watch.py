"""A replay waiting for a cluster that is down: said, shown, and given up on after ``max_wait``.

A daemon waits for Elasticsearch for ever, spooling; a replay (``ingest file``, ``ingest iq``) waits
the way Filebeat does, retrying with backoff (the sink's probes), and says so: a log line every
``WAIT_REPORT_SECONDS`` while the cluster is down, and, while the spool is delivered at the end, a
progress bar whose state says it waits and for how long still. When the cluster has been down
for longer than ``max_wait`` the run is stopped (its documents stay in the spool).
"""
from __future__ import annotations

import logging
import sys
import threading
from typing import Callable

from aiswatch.common.durations import format_duration
from aiswatch.ingest.counters import Counters

log = logging.getLogger(__name__)

WAIT_REPORT_SECONDS = 30.0


class OutageWatch(threading.Thread):
    """For a replay into ``sink``: while Elasticsearch is down, says so every WAIT_REPORT_SECONDS
    (and in the progress bar while the spool is delivered at the end, ``draining``), and after
    ``max_wait`` gives up: one line, ``replay_gave_up`` counted, ``stop()`` called."""

    def __init__(self, sink, stop: Callable[[], None], url: str, max_wait: float, counters: Counters,
                 progress: bool = False) -> None:
        super().__init__(name="outage-watch", daemon=True)
        self.sink, self.stop_run, self.url, self.max_wait = sink, stop, url, max_wait
        self.counters = counters
        self.progress = progress
        self.draining = False
        self.gave_up = False
        self._done = threading.Event()
        self._said_at = -1.0
        self._bar = None

    def stop(self) -> None:
        self._done.set()
        self.join(2.0)

    def run(self) -> None:
        try:
            while not self._done.wait(1.0):
                self._tick()
        finally:
            if self._bar is not None:
                self._bar.close()

    def _tick(self) -> None:
        sink = self.sink
        down = sink.outage_seconds()
        if down <= 0:
            self._said_at = -1.0
        elif self._said_at < 0 or down - self._said_at >= WAIT_REPORT_SECONDS:
            self._said_at = down
            log.warning("waiting for Elasticsearch at %s: down for %s, %d documents spooled, %d in memory; "
                        "gives up %s after it went down (--max-wait)", self.url, format_duration(round(down)),
                        sink.spool.depth, sink.in_memory(), format_duration(self.max_wait))
        if self.draining and self.progress:
            self._show(down)
        if down > self.max_wait and not sink.interrupted:
            self.give_up()

    def give_up(self) -> None:
        """Elasticsearch has been down for longer than max_wait: say so (once) and stop the run."""
        if self.gave_up:
            return
        self.gave_up = True
        sink = self.sink
        log.error("Elasticsearch at %s has not answered for %s (--max-wait): giving up; %d documents stay in "
                  "the spool %s for the next run", self.url, format_duration(round(sink.outage_seconds())),
                  sink.spool.depth, sink.spool.dir)
        self.counters.incr("replay_gave_up")
        self.stop_run()

    def _show(self, down: float) -> None:
        from tqdm import tqdm

        left = self.sink.spool.depth + self.sink.in_memory()
        if self._bar is None:
            self._bar = tqdm(total=left, unit="doc", desc="delivering", file=sys.stderr)
        self._bar.n = max(0, self._bar.total - left)
        self._bar.set_postfix_str(f"waiting for Elasticsearch, down {format_duration(round(down))}, gives up in "
                                  f"{format_duration(max(0, round(self.max_wait - down)))}" if down > 0 else "es up")
