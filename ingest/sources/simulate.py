"""The traffic simulator as a live source (``type: simulate``; ``aiswatch run`` plays it when no
source is configured): a fleet that sails from now on, its messages at real time (or faster)."""
from __future__ import annotations

import threading
import time

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.simulation import Simulator, random_fleet


class SimulatedTrafficSource:
    """The traffic simulator as a live source: a fleet that sails from now on, messages at real time."""

    def __init__(self, vessels: int = 60, seed: int = 1, bbox=None, station: str = "sim",
                 duration_s: float = 30 * 86400, speedup: float = 1.0, counters: Counters | None = None):
        self.id = f"simulate:{station}"
        self._start = time.time()
        kwargs = {"seed": seed, "start": self._start}
        if bbox:
            kwargs["bbox"] = bbox
        fleet = random_fleet(vessels, **kwargs)
        self._sim = Simulator(fleet, start=self._start, seed=seed, station=station)
        self._duration = duration_s
        self._speedup = speedup
        self._closed = threading.Event()

    def lines(self):
        for msg_time, texts in self._sim.messages(self._duration):
            delay = self._start + (msg_time - self._start) / self._speedup - time.time()
            if delay > 0 and self._closed.wait(delay):
                return
            if self._closed.is_set():
                return
            now = time.time()
            for text in texts:
                yield Line(text, now, self.id)

    def close(self) -> None:
        self._closed.set()
