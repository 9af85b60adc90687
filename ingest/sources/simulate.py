"""The traffic simulator as a live source (``type: simulate``; ``aiswatch run`` plays it when no
source is configured): a fleet that sails from now on, its messages at real time (or faster)."""
from __future__ import annotations

import threading
import time

from pydantic import Field, field_validator

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.simulation import Simulator, random_fleet
from aiswatch.ingest.sources import SourceSettings, SourceType


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


class SimulateSettings(SourceSettings):
    vessels: int = Field(60, ge=0, description="Random vessels in the fleet.")
    seed: int = Field(1, description="Random seed: same seed, same traffic.")
    bbox: tuple[float, float, float, float] | None = Field(None, description="Area lat1,lon1,lat2,lon2 "
                                                           "(default: the North Sea).")
    station: str = Field("sim", description="Station id of the tag blocks (s:).")
    duration_s: float = Field(30 * 86400, gt=0, description="How long the fleet sails, seconds.",
                              json_schema_extra={"cli": None})
    speedup: float = Field(1.0, gt=0, description="Faster than real time by this factor.")

    @field_validator("bbox", mode="before")
    @classmethod
    def _bbox(cls, value):
        return [float(v) for v in value.split(",")] if isinstance(value, str) else value


SOURCE = SourceType("simulate", SimulateSettings,
                    lambda s, counters: SimulatedTrafficSource(vessels=s.vessels, seed=s.seed, bbox=s.bbox,
                                                               station=s.station, duration_s=s.duration_s,
                                                               speedup=s.speedup, counters=counters))
