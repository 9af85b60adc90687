"""Where a simulated vessel is at any time: the tracks (their composition: ``simulation.compose``).

A track is any object with ``state(t) -> TrackState | None``: the vessel's position and motion at
unix time ``t``, or None when its transponder is silent (not yet sailing, gone dark, left the area).
Tracks are pure functions of ``t`` (no hidden state advanced by calls), so the simulator, tests and
behaviour scenarios may ask any time in any order and always get the same answer for the same seed.

Building blocks:

- ``RouteTrack``: great-circle legs through waypoints at a speed, with small smooth wobble on speed,
  course and heading; the wobble is *integrated* into the position, so reported speed and course
  agree with the positions (implied speed == reported speed within a few tenths of a knot).
- ``AnchoredTrack`` (nav status 1), ``MooredTrack`` (nav status 5), ``LoiterTrack`` (slow figure of
  eight that starts at its centre), ``Alongside`` (keeps a fixed offset from another track: a pair
  meeting at sea, two ships moored side by side).
"""
from __future__ import annotations

import bisect
import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Protocol, Sequence

from aiswatch.common.geodesy import (EARTH_RADIUS_M, MS_PER_KNOT, bearing_deg, haversine_m, offset,
                                   to_vector)

LatLon = tuple[float, float]

# ITU-R M.1371 navigational status codes used by the tracks
UNDER_WAY_USING_ENGINE = 0
AT_ANCHOR = 1
MOORED = 5
ENGAGED_IN_FISHING = 7
UNDER_WAY_SAILING = 8


@dataclass(frozen=True, slots=True)
class TrackState:
    """A vessel's reported kinematics at one instant.

    lat, lon: degrees (WGS84). sog: knots, cog: degrees true, heading: whole degrees, rot: degrees
    per minute. None for sog/cog/heading/rot means "not available" (sent as the AIS sentinel).
    nav_status: ITU navigational status (0 under way using engine, 1 at anchor, 5 moored, ...).
    """

    lat: float
    lon: float
    sog: float | None
    cog: float | None
    heading: int | None
    nav_status: int = UNDER_WAY_USING_ENGINE
    rot: float | None = 0.0


class Track(Protocol):
    """Anything with ``state(t)``: the vessel's TrackState at unix time t, or None if silent."""

    def state(self, t: float) -> TrackState | None: ...


class _Wobble:
    """A smooth, deterministic, zero-mean signal: the sum of two sines with seeded periods and phases.

    Used as a position offset (metres) whose derivative is the matching speed change, so the
    reported speed/course noise and the positions stay consistent with each other.
    (Two terms, unrolled: this is the simulator's innermost loop.)
    """

    __slots__ = ("a1", "w1", "p1", "a2", "w2", "p2")

    def __init__(self, rng: random.Random, amplitude: float, periods: tuple[float, float]):
        lo, hi = periods
        self.a1, self.w1, self.p1 = amplitude * 0.6, 2 * math.pi / rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi)
        self.a2, self.w2, self.p2 = amplitude * 0.4, 2 * math.pi / rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi)

    def value(self, t: float) -> float:
        return self.a1 * math.sin(self.w1 * t + self.p1) + self.a2 * math.sin(self.w2 * t + self.p2)

    def rate(self, t: float) -> float:
        return (self.a1 * self.w1 * math.cos(self.w1 * t + self.p1)
                + self.a2 * self.w2 * math.cos(self.w2 * t + self.p2))

    def accel(self, t: float) -> float:
        return -(self.a1 * self.w1 * self.w1 * math.sin(self.w1 * t + self.p1)
                 + self.a2 * self.w2 * self.w2 * math.sin(self.w2 * t + self.p2))


def _heading(deg: float) -> int:
    return int(round(deg)) % 360


class RouteTrack:
    """A vessel under way along great-circle legs through ``waypoints`` at ``speed_kn``.

    It is at ``waypoints[0]`` at ``start_time``, silent (None) before it and, unless ``loop``,
    silent after ``end_time`` (arrived / left the area). With ``loop`` it sails back to the first
    waypoint and round again for ever (use ``waypoints + waypoints[-2::-1]`` to shuttle).
    ``wobble`` adds realistic small variation (about ±0.2 kn, ±1-2° course, ±10 m cross-track, a
    fixed per-vessel leeway of heading vs course), deterministic by ``seed``; ``wobble=False``
    gives the exact geometric track.
    """

    def __init__(self, waypoints: Sequence[LatLon], speed_kn: float, start_time: float, loop: bool = False,
                 seed: int = 0, nav_status: int = UNDER_WAY_USING_ENGINE, wobble: bool = True):
        points = [(float(a), float(b)) for a, b in waypoints]
        if len(points) < 2:
            raise ValueError("RouteTrack needs at least two waypoints")
        if speed_kn <= 0:
            raise ValueError("RouteTrack speed must be > 0 kn (use AnchoredTrack/MooredTrack for a ship at rest)")
        if loop and points[0] != points[-1]:
            points.append(points[0])
        self.waypoints = points
        self.speed_kn = float(speed_kn)
        self.start_time = float(start_time)
        self.loop = loop
        self.nav_status = nav_status
        self._v = self.speed_kn * MS_PER_KNOT
        # per leg: start vector, end vector, angular length, sin(angular length), start distance (m)
        self._legs = []
        self._cum = []
        total = 0.0
        for a, b in zip(points, points[1:]):
            va, vb = to_vector(*a), to_vector(*b)
            dot = max(-1.0, min(1.0, sum(x * y for x, y in zip(va, vb))))
            ang = math.acos(dot)
            if ang < 1e-9:
                continue  # repeated waypoint
            self._legs.append((va, vb, ang, math.sin(ang)))
            self._cum.append(total)
            total += ang * EARTH_RADIUS_M
        if not self._legs:
            raise ValueError("RouteTrack waypoints are all the same point")
        self.length_m = total
        rng = random.Random(seed)
        self._wobble = wobble
        # along-track: ±~4 m at 2-8 min periods -> ±0.1-0.2 kn; cross-track: ±~12 m at 5-15 min -> ±1-2°;
        # scaled down below 6 kn so a slow ship never appears to stop or go astern
        scale = min(1.0, self.speed_kn / 6.0) if wobble else 0.0
        self._along = _Wobble(rng, 4.0 * scale, (120.0, 480.0))
        self._cross = _Wobble(rng, 12.0 * scale, (300.0, 900.0))
        self._yaw = _Wobble(rng, 1.0 if wobble else 0.0, (40.0, 200.0))
        self._leeway = rng.uniform(-3.0, 3.0) if wobble else 0.0

    @property
    def duration_s(self) -> float:
        """Time to sail the whole route once."""
        return self.length_m / self._v

    @property
    def end_time(self) -> float:
        """When the last waypoint is reached (infinite for a looping route)."""
        return math.inf if self.loop else self.start_time + self.duration_s

    def state(self, t: float) -> TrackState | None:
        elapsed = t - self.start_time
        if elapsed < 0 or (not self.loop and t > self.end_time):
            return None
        d = self._v * elapsed + (self._along.value(t) if self._wobble else 0.0)
        if self.loop:
            d %= self.length_m
        else:
            d = min(max(d, 0.0), self.length_m)
        i = bisect.bisect_right(self._cum, d) - 1
        va, vb, ang, s = self._legs[i]
        f = (d - self._cum[i]) / (ang * EARTH_RADIUS_M)
        ca, cb = math.sin((1 - f) * ang) / s, math.sin(f * ang) / s
        x, y, z = ca * va[0] + cb * vb[0], ca * va[1] + cb * vb[1], ca * va[2] + cb * vb[2]
        # direction of travel = derivative of the slerp, projected on local east / north
        ta, tb = -math.cos((1 - f) * ang), math.cos(f * ang)
        dx, dy, dz = ta * va[0] + tb * vb[0], ta * va[1] + tb * vb[1], ta * va[2] + tb * vb[2]
        lon = math.atan2(y, x)
        lat = math.atan2(z, math.hypot(x, y))
        sl, cl, sp, cp = math.sin(lon), math.cos(lon), math.sin(lat), math.cos(lat)
        east = -sl * dx + cl * dy
        north = -sp * cl * dx - sp * sl * dy + cp * dz
        brg = math.atan2(east, north)
        lat_d, lon_d = math.degrees(lat), math.degrees(lon)
        if not self._wobble:
            cog = math.degrees(brg) % 360.0
            return TrackState(lat_d, lon_d, self.speed_kn, cog, _heading(cog), self.nav_status, 0.0)
        c = self._cross.value(t)
        lat_d, lon_d = offset(lat_d, lon_d, c * math.cos(brg), -c * math.sin(brg))
        along_v = self._v + self._along.rate(t)
        cross_v = self._cross.rate(t)
        cog = math.degrees(brg + math.atan2(cross_v, along_v)) % 360.0
        sog = math.hypot(along_v, cross_v) / MS_PER_KNOT
        rot = math.degrees(self._cross.accel(t) / along_v) * 60.0
        heading = _heading(cog + self._leeway + self._yaw.value(t))
        return TrackState(lat_d, lon_d, sog, cog, heading, self.nav_status, rot)


class AnchoredTrack:
    """A ship at anchor: swings slowly on its chain around (lat, lon), bow towards the anchor.

    nav_status 1, speed of a few hundredths of a knot, positions within ``swing_radius_m`` of the
    anchor. ``start``/``end`` bound when it transmits (None = always).
    """

    def __init__(self, lat: float, lon: float, swing_radius_m: float = 30.0, seed: int = 0,
                 start: float | None = None, end: float | None = None):
        self.lat, self.lon = float(lat), float(lon)
        self.swing_radius_m = float(swing_radius_m)
        self.start, self.end = start, end
        rng = random.Random(seed)
        self._base = rng.uniform(0, 2 * math.pi)
        self._amp = rng.uniform(0.6, 1.4)  # radians of swing either side
        self._w = 2 * math.pi / rng.uniform(2 * 3600.0, 6 * 3600.0)  # tide/wind turns over hours
        self._phase = rng.uniform(0, 2 * math.pi)
        self._jitter_e = _Wobble(rng, 2.0, (60.0, 400.0))
        self._jitter_n = _Wobble(rng, 2.0, (60.0, 400.0))

    def state(self, t: float) -> TrackState | None:
        if (self.start is not None and t < self.start) or (self.end is not None and t >= self.end):
            return None
        theta = self._base + self._amp * math.sin(self._w * t + self._phase)
        dtheta = self._amp * self._w * math.cos(self._w * t + self._phase)
        r = self.swing_radius_m
        lat, lon = offset(self.lat, self.lon, r * math.sin(theta) + self._jitter_e.value(t),
                          r * math.cos(theta) + self._jitter_n.value(t))
        # the swing itself is ~0.02 kn; GPS noise makes real anchored ships report 0.0-0.3 kn
        speed = abs(r * dtheta) / MS_PER_KNOT + 0.1 * (1.0 + math.sin(self._w * 37.0 * t + self._phase))
        cog = (math.degrees(theta) + (90.0 if dtheta >= 0 else -90.0)) % 360.0
        heading = _heading(math.degrees(theta) + 180.0)
        return TrackState(lat, lon, round(speed, 1), cog, heading, AT_ANCHOR, 0.0)


class MooredTrack:
    """A ship alongside a berth at (lat, lon): nav_status 5, speed 0, a couple of metres of GPS jitter.

    ``heading`` is the berth's orientation (random by seed if None); course is reported unavailable.
    """

    def __init__(self, lat: float, lon: float, heading: float | None = None, seed: int = 0,
                 start: float | None = None, end: float | None = None):
        self.lat, self.lon = float(lat), float(lon)
        rng = random.Random(seed)
        self.heading = _heading(heading if heading is not None else rng.uniform(0, 360))
        self.start, self.end = start, end
        self._jitter_e = _Wobble(rng, 2.0, (60.0, 400.0))
        self._jitter_n = _Wobble(rng, 2.0, (60.0, 400.0))

    def state(self, t: float) -> TrackState | None:
        if (self.start is not None and t < self.start) or (self.end is not None and t >= self.end):
            return None
        lat, lon = offset(self.lat, self.lon, self._jitter_e.value(t), self._jitter_n.value(t))
        return TrackState(lat, lon, 0.0, None, self.heading, MOORED, 0.0)


class LoiterTrack:
    """Slow loitering around ``center``: a figure of eight of half-width ``radius_m`` at ``speed_kn`` (< 2 kn).

    The path starts at the centre at ``start`` (so it chains continuously after a transit that ended
    there) and stays within ``radius_m`` of it; speed varies along the figure around ``speed_kn``.
    Silent before ``start`` and from ``end`` on (None = unbounded).
    """

    def __init__(self, center: LatLon, radius_m: float = 500.0, speed_kn: float = 1.0, start: float | None = None,
                 end: float | None = None, seed: int = 0, nav_status: int = UNDER_WAY_USING_ENGINE):
        if speed_kn <= 0 or radius_m <= 0:
            raise ValueError("LoiterTrack needs speed_kn > 0 and radius_m > 0")
        self.center = (float(center[0]), float(center[1]))
        self.radius_m, self.speed_kn = float(radius_m), float(speed_kn)
        self.start, self.end = start, end
        self.nav_status = nav_status
        rng = random.Random(seed)
        self._rot = rng.uniform(0, 2 * math.pi)
        # lemniscate of Gerono x = r sin u, y = r/2 sin 2u: perimeter by numeric integration
        n = 720
        perim = sum(self.radius_m * math.hypot(math.cos(u), math.cos(2 * u)) * (2 * math.pi / n)
                    for u in (2 * math.pi * (k + 0.5) / n for k in range(n)))
        self._w = 2 * math.pi * self.speed_kn * MS_PER_KNOT / perim
        self._t0 = start if start is not None else 0.0

    def state(self, t: float) -> TrackState | None:
        if (self.start is not None and t < self.start) or (self.end is not None and t >= self.end):
            return None
        u = self._w * (t - self._t0)
        r = self.radius_m
        x, y = r * math.sin(u), 0.5 * r * math.sin(2 * u)
        vx, vy = r * self._w * math.cos(u), r * self._w * math.cos(2 * u)
        ax, ay = -r * self._w ** 2 * math.sin(u), -2 * r * self._w ** 2 * math.sin(2 * u)
        cr, sr = math.cos(self._rot), math.sin(self._rot)
        east, north = x * cr - y * sr, x * sr + y * cr
        ve, vn = vx * cr - vy * sr, vx * sr + vy * cr
        lat, lon = offset(self.center[0], self.center[1], east, north)
        speed = math.hypot(ve, vn)
        cog = math.degrees(math.atan2(ve, vn)) % 360.0
        rot = math.degrees((vx * ay - vy * ax) / max(speed * speed, 1e-9)) * -60.0
        return TrackState(lat, lon, speed / MS_PER_KNOT, cog, _heading(cog), self.nav_status, rot)


class Alongside:
    """Follows ``leader`` at ``distance_m`` in direction ``bearing_deg`` from it.

    With ``relative=True`` the bearing is relative to the leader's heading (90 = on its starboard
    beam, kept as the leader turns); else it is a fixed true bearing, so both move identically.
    Use it for a pair meeting at sea (LoiterTrack leader, 100-500 m) or two ships moored side by
    side (MooredTrack leader, ~25 m abeam). Silent whenever the leader is.
    ``nav_status`` overrides the leader's when given.
    """

    def __init__(self, leader: Track, distance_m: float, bearing_deg: float = 90.0, relative: bool = False,
                 nav_status: int | None = None):
        self.leader = leader
        self.distance_m, self.bearing_deg, self.relative = float(distance_m), float(bearing_deg), relative
        self.nav_status = nav_status

    def state(self, t: float) -> TrackState | None:
        s = self.leader.state(t)
        if s is None:
            return None
        brg = self.bearing_deg + ((s.heading or 0) if self.relative else 0.0)
        rad = math.radians(brg)
        lat, lon = offset(s.lat, s.lon, self.distance_m * math.sin(rad), self.distance_m * math.cos(rad))
        status = s.nav_status if self.nav_status is None else self.nav_status
        return dataclasses.replace(s, lat=lat, lon=lon, nav_status=status)


def distance_between(a: TrackState, b: TrackState) -> float:
    """Distance in metres between two states (handy in scenario tests)."""
    return haversine_m(a.lat, a.lon, b.lat, b.lon)


__all__ = ["TrackState", "Track", "RouteTrack", "AnchoredTrack", "MooredTrack", "LoiterTrack", "Alongside",
           "distance_between", "bearing_deg",
           "UNDER_WAY_USING_ENGINE", "AT_ANCHOR", "MOORED", "ENGAGED_IN_FISHING", "UNDER_WAY_SAILING"]
