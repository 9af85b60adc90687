"""Tracks composed from tracks (``simulation.tracks``): time windows, silences, jumps, overrides.

``Segments`` (one track per time window), ``Silence`` (transponder off in windows), ``Jump`` (a
planted position jump / spoofed position), ``Override`` (replace fields, e.g. a nav status or an
unavailable speed), and ``Itinerary``, a builder that chains sail / loiter / anchor / moor segments
from wherever the previous one ended, so positions stay continuous. Each is itself a track: a pure
function ``state(t)`` of the time.
"""
from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Iterable, Sequence

from aiswatch.common.geodesy import MS_PER_KNOT, destination
from aiswatch.ingest.simulation.tracks import (UNDER_WAY_USING_ENGINE, AnchoredTrack,
                                               LatLon, LoiterTrack, MooredTrack, RouteTrack, Track, TrackState)


class Segments:
    """One track per time window: ``[(t_start, t_end, track), ...]``, windows half-open [start, end).

    Outside every window the vessel is silent. Windows must not overlap. Each track is asked with
    absolute time, so build them with matching start times (``Itinerary`` does that for you).
    """

    def __init__(self, segments: Iterable[tuple[float, float, Track]]):
        self.segments = sorted(((float(a), float(b), tr) for a, b, tr in segments), key=lambda s: s[0])
        for (a1, b1, _), (a2, _, _) in zip(self.segments, self.segments[1:]):
            if a2 < b1:
                raise ValueError(f"Segments overlap: one ends at {b1}, the next starts at {a2}")
        self._starts = [s[0] for s in self.segments]

    def state(self, t: float) -> TrackState | None:
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0:
            return None
        a, b, track = self.segments[i]
        return track.state(t) if t < b else None


class Silence:
    """``track`` with its transponder off during ``windows`` ([(t1, t2), ...], half-open): the ship goes dark.

    The ship keeps moving while dark: it reappears where the underlying track is by then.
    """

    def __init__(self, track: Track, windows: Iterable[tuple[float, float]]):
        self.track = track
        self.windows = sorted((float(a), float(b)) for a, b in windows)

    def silent(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.windows)

    def state(self, t: float) -> TrackState | None:
        return None if self.silent(t) else self.track.state(t)


class Jump:
    """A planted position jump / spoofed position on ``track`` from ``at`` until ``until`` (None = for good).

    follow=True: the reported positions are the true ones shifted so that at ``at`` the ship
    appears at ``to`` and then keeps moving as it really does (a spoofed parallel track).
    follow=False: the ship reports the fixed position ``to`` (speed/course as it really has).
    The true position at ``at`` must exist (the track must not be silent then).
    """

    def __init__(self, track: Track, at: float, to: LatLon, until: float | None = None, follow: bool = True):
        self.track, self.at, self.to, self.until, self.follow = track, float(at), (float(to[0]), float(to[1])), until, follow
        self._delta: tuple[float, float] | None = None

    def _shift(self) -> tuple[float, float]:
        if self._delta is None:
            base = self.track.state(self.at)
            if base is None:
                raise ValueError(f"Jump at {self.at}: the underlying track is silent then, nothing to shift")
            self._delta = (self.to[0] - base.lat, self.to[1] - base.lon)
        return self._delta

    def state(self, t: float) -> TrackState | None:
        s = self.track.state(t)
        if s is None or t < self.at or (self.until is not None and t >= self.until):
            return s
        if not self.follow:
            return dataclasses.replace(s, lat=self.to[0], lon=self.to[1])
        dlat, dlon = self._shift()
        return dataclasses.replace(s, lat=s.lat + dlat, lon=(s.lon + dlon + 540.0) % 360.0 - 180.0)


class Override:
    """``track`` with some TrackState fields replaced, optionally only in [start, end).

    E.g. ``Override(track, nav_status=7)`` (engaged in fishing) or ``Override(track, sog=None)``
    (speed not available). Fields: lat, lon, sog, cog, heading, nav_status, rot.
    """

    def __init__(self, track: Track, start: float | None = None, end: float | None = None, **fields):
        unknown = set(fields) - {f.name for f in dataclasses.fields(TrackState)}
        if unknown:
            raise ValueError(f"Override: unknown TrackState fields {sorted(unknown)}")
        self.track, self.start, self.end, self.fields = track, start, end, fields

    def state(self, t: float) -> TrackState | None:
        s = self.track.state(t)
        if s is None or (self.start is not None and t < self.start) or (self.end is not None and t >= self.end):
            return s
        return dataclasses.replace(s, **self.fields)


class Itinerary:
    """Builds a continuous track from consecutive activities, each starting where the last one ended.

        it = Itinerary(start=t0, position=(54.0, 3.0), seed=7)
        it.sail([(55.0, 4.0)], speed_kn=12).loiter(hours(6), radius_m=800, speed_kn=1.2)
        it.sail([(56.0, 5.0)], speed_kn=12, dark=True)   # transponder off for the whole leg
        track = it.track()

    ``it.now`` is the end time so far and ``it.position`` the position there; ``it.windows`` lists
    (start, end, kind) of each activity, handy for a scenario's ground truth. ``dark=True`` on any
    activity silences it; ``silence(t1, t2)`` adds any other dark window.
    """

    def __init__(self, start: float, position: LatLon, seed: int = 0):
        self.start = self.now = float(start)
        self.position = (float(position[0]), float(position[1]))
        self.seed = seed
        self._segments: list[tuple[float, float, Track]] = []
        self._dark: list[tuple[float, float]] = []
        self.windows: list[tuple[float, float, str]] = []

    def _add(self, end: float, track: Track, kind: str, dark: bool) -> "Itinerary":
        self._segments.append((self.now, end, track))
        self.windows.append((self.now, end, kind))
        if dark:
            self._dark.append((self.now, end))
        last = track.state(math.nextafter(end, -math.inf)) or track.state(self.now)
        if last is not None:
            self.position = (last.lat, last.lon)
        self.now = end
        self.seed += 1
        return self

    def sail(self, waypoints: Sequence[LatLon], speed_kn: float, dark: bool = False,
             nav_status: int = UNDER_WAY_USING_ENGINE) -> "Itinerary":
        """Sail from the current position through ``waypoints``; ends on arrival at the last one."""
        route = RouteTrack([self.position, *waypoints], speed_kn, self.now, seed=self.seed, nav_status=nav_status)
        end = route.end_time
        self._add(end, route, "sail", dark)
        self.position = route.waypoints[-1]
        return self

    def sail_for(self, duration_s: float, bearing: float, speed_kn: float, dark: bool = False) -> "Itinerary":
        """Sail a straight course for ``duration_s``."""
        to = destination(*self.position, bearing, speed_kn * MS_PER_KNOT * duration_s)
        return self.sail([to], speed_kn, dark=dark)

    def loiter(self, duration_s: float, radius_m: float = 500.0, speed_kn: float = 1.0, dark: bool = False,
               nav_status: int = UNDER_WAY_USING_ENGINE) -> "Itinerary":
        """Loiter around the current position (figure of eight starting there)."""
        track = LoiterTrack(self.position, radius_m, speed_kn, start=self.now, end=self.now + duration_s,
                            seed=self.seed, nav_status=nav_status)
        return self._add(self.now + duration_s, track, "loiter", dark)

    def anchor(self, duration_s: float, swing_radius_m: float = 30.0, dark: bool = False) -> "Itinerary":
        """Drop anchor at the current position."""
        track = AnchoredTrack(*self.position, swing_radius_m=swing_radius_m, seed=self.seed)
        end = self.now + duration_s
        self._add(end, track, "anchor", dark)
        return self

    def moor(self, duration_s: float, heading: float | None = None, dark: bool = False) -> "Itinerary":
        """Lie alongside at the current position."""
        track = MooredTrack(*self.position, heading=heading, seed=self.seed)
        return self._add(self.now + duration_s, track, "moor", dark)

    def silence(self, t1: float, t2: float) -> "Itinerary":
        """Transponder off in [t1, t2) whatever the vessel is doing then."""
        self._dark.append((float(t1), float(t2)))
        return self

    def track(self) -> Track:
        """The composed track (silent before the first and after the last activity)."""
        if not self._segments:
            raise ValueError("Itinerary is empty: add sail/loiter/anchor/moor first")
        composed: Track = Segments(self._segments)
        return Silence(composed, self._dark) if self._dark else composed
