"""Random but realistic fleets: ``random_fleet(n, bbox, seed, start)``.

Vessels sail shuttle routes along a small graph of North Sea / English Channel sea lanes whose
nodes and edges were chosen to stay over water, so simulated tracks do not cross land (checked
with global_land_mask's 1 km mask: every point within 3 km either side of every lane is sea, and
every node is >= 10 km from land, which bounds the class B craft's local hops below). Some ships lie at anchor
in the anchorages off the big ports. With a ``bbox`` that contains too few lane nodes the routes
fall back to random points inside the bbox, which is then assumed to be open sea.
"""
from __future__ import annotations

import random
from typing import Sequence

from aiswatch.common.geodesy import haversine_m, offset
from aiswatch.ingest.simulation.simulator import BaseStation
from aiswatch.ingest.simulation.tracks import AnchoredTrack, RouteTrack, Track
from aiswatch.ingest.simulation.vessels import VesselSpec, random_vessel

DEFAULT_BBOX = (50.0, -2.0, 56.0, 8.0)  # lat1, lon1, lat2, lon2: English Channel to the German Bight

# Sea-lane nodes (lat, lon), all offshore
SEA_NODES = {
    "channel_w": (50.10, -1.90), "channel_mid": (50.20, -1.00), "channel_e": (50.45, 0.30),
    "dover": (51.05, 1.45), "thames_outer": (51.50, 1.70), "north_hinder": (51.60, 2.30),
    "scheldt_app": (51.50, 3.00), "maas_app": (52.00, 3.60), "ijmuiden_app": (52.50, 4.30),
    "texel": (53.20, 4.40), "terschelling": (53.60, 5.50), "borkum": (53.80, 6.50),
    "german_bight": (54.00, 7.50), "esbjerg_off": (55.50, 7.00), "denmark_w": (56.00, 7.50),
    "norfolk": (53.00, 2.00), "humber": (53.60, 0.60), "flamborough": (54.10, 0.40),
    "tyne": (55.00, -1.00), "forth": (56.00, -1.60), "dogger": (54.80, 2.00), "central": (55.50, 4.00),
}
SEA_LANES = [
    ("channel_w", "channel_mid"), ("channel_mid", "channel_e"), ("channel_e", "dover"),
    ("dover", "thames_outer"), ("dover", "north_hinder"), ("dover", "scheldt_app"),
    ("thames_outer", "north_hinder"), ("north_hinder", "scheldt_app"), ("north_hinder", "maas_app"),
    ("north_hinder", "norfolk"), ("scheldt_app", "maas_app"), ("maas_app", "ijmuiden_app"),
    ("ijmuiden_app", "texel"), ("texel", "terschelling"), ("terschelling", "borkum"),
    ("borkum", "german_bight"), ("german_bight", "esbjerg_off"), ("esbjerg_off", "denmark_w"),
    ("norfolk", "humber"), ("humber", "flamborough"), ("flamborough", "tyne"), ("tyne", "forth"),
    ("dogger", "flamborough"), ("dogger", "norfolk"), ("dogger", "central"), ("dogger", "tyne"),
    ("central", "esbjerg_off"), ("central", "texel"), ("central", "forth"), ("central", "german_bight"),
    ("texel", "norfolk"), ("maas_app", "norfolk"),
]
# Anchorages off major ports (lat, lon): where ships wait at anchor
ANCHORAGES = {
    "maas": (52.05, 3.75), "ijmuiden": (52.50, 4.35), "elbe": (54.00, 8.00), "thames": (51.50, 1.55),
    "humber": (53.60, 0.45), "tyne": (55.02, -1.30), "scheldt": (51.45, 3.20), "forth": (56.00, -2.00),
}
# Shore base stations near the big ports (on land, as real ones are); MMSI 00MIDxxxx
BASE_STATIONS = [
    BaseStation(2442001, 51.978, 4.118),   # Hoek van Holland (NL)
    BaseStation(2320001, 51.127, 1.337),   # Dover (GB)
    BaseStation(2111002, 54.180, 7.885),   # Helgoland (DE)
    BaseStation(2442002, 52.463, 4.575),   # IJmuiden (NL)
    BaseStation(2190001, 55.466, 8.440),   # Esbjerg (DK)
    BaseStation(2320002, 55.015, -1.420),  # Tynemouth (GB)
    BaseStation(2050001, 51.335, 3.205),   # Zeebrugge (BE)
    BaseStation(2320003, 53.585, 0.100),   # Spurn Point / Humber (GB)
]


def _in_bbox(p: tuple[float, float], bbox: Sequence[float]) -> bool:
    lat1, lon1, lat2, lon2 = bbox
    return min(lat1, lat2) <= p[0] <= max(lat1, lat2) and min(lon1, lon2) <= p[1] <= max(lon1, lon2)


def _lane_route(rng: random.Random, bbox: Sequence[float], legs: int) -> list[tuple[float, float]] | None:
    """A random walk of ``legs`` edges on the sea-lane graph inside the bbox (None if the graph is too small)."""
    nodes = {k for k, p in SEA_NODES.items() if _in_bbox(p, bbox)}
    adj: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in SEA_LANES:
        if a in nodes and b in nodes:
            adj[a].append(b)
            adj[b].append(a)
    starts = sorted(k for k, v in adj.items() if v)
    if len(starts) < 2:
        return None
    node = rng.choice(starts)
    path = [node]
    for _ in range(legs):
        options = [n for n in adj[node] if n not in path[-2:]] or adj[node]
        node = rng.choice(sorted(options))
        path.append(node)
    # a few km of lateral spread so ships on the same lane are not on one line
    spread = [offset(*SEA_NODES[n], rng.uniform(-1500, 1500), rng.uniform(-1500, 1500)) for n in path]
    return spread


def _box_route(rng: random.Random, bbox: Sequence[float], legs: int) -> list[tuple[float, float]]:
    lat1, lon1, lat2, lon2 = bbox
    return [(rng.uniform(min(lat1, lat2), max(lat1, lat2)), rng.uniform(min(lon1, lon2), max(lon1, lon2)))
            for _ in range(legs + 1)]


def random_fleet(n: int, bbox: Sequence[float] = DEFAULT_BBOX, seed: int = 0, start: float = 0.0,
                 anchored_fraction: float = 0.15, class_b_fraction: float = 0.25,
                 ports: Sequence[tuple[float, float]] | None = None) -> list[tuple[VesselSpec, Track]]:
    """``n`` realistic vessels with tracks, deterministic by ``seed``.

    bbox: (lat1, lon1, lat2, lon2). start: unix seconds; moving ships are spread along their
    (looping, there-and-back) routes at ``start`` so traffic is steady from the first minute.
    anchored_fraction of the class A ships lie at anchor within ~2 km of an anchorage (``ports``:
    your own anchorage points, default the ones in ANCHORAGES inside the bbox, else random points).
    class_b_fraction of the fleet are class B (pleasure craft, sailing yachts, small fishing).
    MMSIs are unique and carry real MIDs; names are unique.
    """
    if n < 0:
        raise ValueError("random_fleet: n must be >= 0")
    rng = random.Random(seed)
    anchor_points = list(ports) if ports else [p for p in ANCHORAGES.values() if _in_bbox(p, bbox)]
    used_mmsi: set[int] = set()
    used_names: set[str] = set()
    fleet: list[tuple[VesselSpec, Track]] = []
    for k in range(n):
        vrng = random.Random(rng.getrandbits(64))
        cls = "B" if vrng.random() < class_b_fraction else "A"
        spec, speed = random_vessel(vrng, cls, used_mmsi, used_names)
        if cls == "A" and vrng.random() < anchored_fraction:
            if anchor_points:
                lat, lon = offset(*vrng.choice(anchor_points), vrng.uniform(-2000, 2000), vrng.uniform(-2000, 2000))
            else:
                lat, lon = _box_route(vrng, bbox, 0)[0]
            radius = min(80.0, max(20.0, spec.length * 0.4))
            track: Track = AnchoredTrack(lat, lon, swing_radius_m=radius, seed=vrng.getrandbits(32))
            fleet.append((spec, track))
            continue
        legs = vrng.randint(2, 4) if cls == "A" else vrng.randint(1, 2)
        route = _lane_route(vrng, bbox, legs) or _box_route(vrng, bbox, legs)
        if cls == "B":
            # small craft stay local: short hops around a lane node (nodes are >= 10 km offshore)
            route = [route[0]] + [offset(*route[0], vrng.uniform(-6000, 6000), vrng.uniform(-6000, 6000))
                                  for _ in range(legs)]
        if len(route) > 2 or route[0] != route[-1]:
            shuttle = route + route[-2::-1]
        else:
            shuttle = route
        if all(haversine_m(*shuttle[0], *p) < 1.0 for p in shuttle):
            shuttle = [shuttle[0], offset(*shuttle[0], 5000.0, 0.0), shuttle[0]]
        cycle = sum(haversine_m(*a, *b) for a, b in zip(shuttle, shuttle[1:])) / (speed * 1852.0 / 3600.0)
        track = RouteTrack(shuttle, speed, start_time=start - vrng.uniform(0, cycle), loop=True,
                           seed=vrng.getrandbits(32))
        fleet.append((spec, track))
    return fleet


def bbox_of(fleet_points: Sequence[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(lat1, lon1, lat2, lon2) around some points."""
    lats = [p[0] for p in fleet_points]
    lons = [p[1] for p in fleet_points]
    return (min(lats), min(lons), max(lats), max(lons))

