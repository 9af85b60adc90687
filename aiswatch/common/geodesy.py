"""Geodesy on a spherical earth, for everything: distances, bearings, destinations, small offsets.

One radius and one haversine for the simulator and the detectors, so a planted "500 m apart" stays
500 m apart when measured; a sphere is accurate to ~0.5 %, far below AIS's own noise.
``haversine_km`` takes numpy arrays as well as floats (the detectors measure many at once).
"""
from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
EARTH_RADIUS_KM = EARTH_RADIUS_M / 1000.0
METERS_PER_NM = 1852.0
KM_PER_NM = METERS_PER_NM / 1000.0
MS_PER_KNOT = METERS_PER_NM / 3600.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km, of floats or element-wise of numpy arrays."""
    import numpy as np

    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat = p2 - p1
    dlon = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    """The point reached from (lat, lon) after distance_m along the great circle with the given initial bearing."""
    d = distance_m / EARTH_RADIUS_M
    b = math.radians(bearing)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) moved by a small east/north offset in metres (flat-earth; fine below a few km)."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def to_vector(lat: float, lon: float) -> tuple[float, float, float]:
    """Unit vector of a point on the sphere."""
    p, l = math.radians(lat), math.radians(lon)
    c = math.cos(p)
    return (c * math.cos(l), c * math.sin(l), math.sin(p))
