"""Simulator scenarios with planted behaviours and traps, and the events each must (not) produce.

``SCENARIOS[name](start, seed) -> list[(VesselSpec, Track)]`` (``aiswatch simulate --scenario NAME``);
``expected_events(name, start)`` is the ground truth the tests check the detectors against, and
``TRAPS[name]`` the MMSIs that must produce no event at all.

``port`` is a port-heavy fleet for the bench (40 class A ships at anchor or moored: nothing to find).

``planted`` (24 h, North Sea, everything far offshore is > 50 nm from shore by the land grid):
- DARK HORSE goes dark for 14 h while sailing north far offshore (a ``gap`` of 14 h).
- COLD STAR, a reefer under a flag of convenience, loiters 6 h at ~1 kn (``loitering``).
- NORD KAPP and HAI FENG 8 meet 150 m apart for 3 h, slow (``encounter``).
- MIRAGE's position jumps 40 nm at once (``spoofing``/jump).
- PHANTOM reports speed 0 for 4 h while sailing on at 8 kn (``spoofing``/stationary_moving).
- GHOST sails with the fake MMSI 123456789 (``identity``).
- NET HAULER hauls its nets for 3 h at ~1 kn with two net buoys 40 m and 80 m off, one a craft of
  a parent ship (982191001), one a number outside every class like real net buoys (941191002, an
  ``identity`` event of its own): two ``gear`` events, no encounter, no loitering.
- Two boats 8 nm apart share the MMSI 227123030 and are heard in alternate minutes for 4 h
  (``spoofing``/``shared_mmsi``: the slot means stand still, the slots' boxes span both places;
  slot-level times).
Traps, which must produce nothing: two ships at anchor ~370 m apart inside Rotterdam's anchorage
(close and slow enough for an encounter: only the port filter stops it), two ships moored side by
side in Hamburg, a coaster that stops transmitting for 14 h a few miles off the Dutch coast (only
the shore filter stops that gap), two ships crossing each other's path at 14 kn, and two boats
rafted at a dock in Harlingen, a harbour outside the port list, where two more boats moor for
part of the day (the shore distance stops that encounter, and so does the anchorage the four
boats make: the test switches both off to see it fire).
``TRAP_FILTERS`` says which filter stops each trap; the tests switch it off and see it fire.

Vessels are class B so that slow ships report every 3 min and fast ones every 30 s: the detectors
do not care about the class, and it keeps a scenario at ~35k documents (fast tests on the test
engine). Every vessel far out transmits until the end, so nothing is "dark now" at the end but the
planted gap (a boat that leaves the Harlingen dock's radio range is at the shore). ``slack_s`` of
an expected event: how much coarser than one reporting interval its edges are by definition.
``edge_interval_s`` gives the reporting interval of a vessel around a time, from the simulator's
own rule: the tests allow one such interval on each event edge.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aiswatch.ingest.simulation.simulator import report_interval
from aiswatch.ingest.simulation import (AnchoredTrack, Alongside, Itinerary, Jump, LoiterTrack, MooredTrack, RouteTrack,
                             Override, Segments, VesselSpec, destination, haversine_m, MS_PER_KNOT)

HOUR = 3600.0
PLANTED_HOURS = 24.0


@dataclass(frozen=True)
class ExpectedEvent:
    type: str
    mmsi: tuple[str, ...]
    start: float          # unix seconds
    end: float
    subtype: str | None = None
    slack_s: float = 0.0  # edges known to the slot, not to the report (shared MMSI)


def _spec(mmsi: int, name: str, ship_type: int = 70, length: int = 120) -> VesselSpec:
    return VesselSpec(mmsi=mmsi, name=name, ship_type=ship_type, length=length, beam=max(length // 6, 4), cls="B",
                      callsign=f"X{mmsi % 100000:05d}")


def _route(a, b, start: float, end: float, seed: int) -> RouteTrack:
    """A straight leg from a to b timed to take [start, end)."""
    speed = haversine_m(a[0], a[1], b[0], b[1]) / (end - start) / MS_PER_KNOT
    return RouteTrack([a, b], speed, start, seed=seed)


def planted(start: float, seed: int = 0) -> list:
    t = lambda h: start + h * HOUR  # noqa: E731
    end = t(PLANTED_HOURS)
    vessels = []

    # going dark for 14 h while sailing north at 10 kn, 90-110 nm offshore
    dark = Itinerary(t(0), (54.3, 3.0), seed=seed + 1)
    dark.sail_for(3 * HOUR, 0.0, 10.0).sail_for(14 * HOUR, 0.0, 10.0, dark=True).sail_for(7 * HOUR, 0.0, 10.0)
    vessels.append((_spec(244123001, "DARK HORSE"), dark.track()))

    # a reefer (Liberian flag) that loiters 6 h at ~1 kn
    carrier = Itinerary(t(0), (55.2, 2.9), seed=seed + 2)
    carrier.sail_for(2 * HOUR, 90.0, 11.0).loiter(6 * HOUR, radius_m=800, speed_kn=1.0).sail_for(16 * HOUR, 90.0, 6.0)
    vessels.append((_spec(636123002, "COLD STAR", ship_type=79, length=140), carrier.track()))

    # an encounter: 3 h side by side, 150 m apart
    meet = (55.6, 5.5)
    a_from, a_to = destination(meet[0], meet[1], 270.0, 45_000), destination(meet[0], meet[1], 250.0, 150_000)
    a_loiter = LoiterTrack(meet, radius_m=300, speed_kn=0.8, start=t(5), end=t(8), seed=seed + 3)
    a = Segments([(t(0), t(5), _route(a_from, meet, t(0), t(5), seed + 4)), (t(5), t(8), a_loiter),
                  (t(8), end, _route(meet, a_to, t(8), end, seed + 5))])
    b_meet = destination(meet[0], meet[1], 90.0, 150)
    b_from, b_to = destination(meet[0], meet[1], 0.0, 50_000), destination(meet[0], meet[1], 330.0, 140_000)
    b = Segments([(t(0), t(5), _route(b_from, b_meet, t(0), t(5), seed + 6)),
                  (t(5), t(8), Alongside(a_loiter, 150, 90.0)),
                  (t(8), end, _route(b_meet, b_to, t(8), end, seed + 7))])
    vessels.append((_spec(273123003, "NORD KAPP", ship_type=80, length=180), a))
    vessels.append((_spec(412123004, "HAI FENG 8", ship_type=30, length=60), b))

    # a position jump of 40 nm to the west at hour 5
    base = RouteTrack([(54.5, 5.8), (56.3, 5.8)], 4.5, t(0), seed=seed + 8)
    s5 = base.state(t(5))
    jumped = Jump(base, t(5), destination(s5.lat, s5.lon, 270.0, 40 * 1852.0))
    vessels.append((_spec(219123005, "MIRAGE"), jumped))

    # reports speed 0 for 4 h while it keeps sailing at 8 kn
    phantom = Override(RouteTrack([(54.0, 1.2), (57.3, 1.2)], 8.0, t(0), seed=seed + 18), start=t(10), end=t(14),
                       sog=0.0)
    vessels.append((_spec(538123006, "PHANTOM"), phantom))

    # a fake MMSI
    vessels.append((_spec(123456789, "GHOST", ship_type=30, length=40),
                    RouteTrack([(55.0, 2.0), (56.3, 2.5)], 3.0, t(0), seed=seed + 9)))

    # traps: anchored in port, moored side by side in port, silent near the coast, crossing at speed
    anchor1 = AnchoredTrack(51.985, 3.93, swing_radius_m=40, seed=seed + 10)
    anchor2 = AnchoredTrack(51.9875, 3.9335, swing_radius_m=40, seed=seed + 11)   # ~370 m from anchor1
    vessels.append((_spec(244123010, "WAITING ONE"), anchor1))
    vessels.append((_spec(244123011, "WAITING TWO"), anchor2))
    moored = MooredTrack(53.540, 9.960, heading=90, seed=seed + 12)
    vessels.append((_spec(211123012, "QUAY SIDE"), moored))
    vessels.append((_spec(211123013, "QUAY OUTSIDE"), Alongside(moored, 25, 0.0)))
    coast = Itinerary(t(0), (52.45, 4.45), seed=seed + 13)
    coast.sail_for(4 * HOUR, 10.0, 5.0).sail_for(14 * HOUR, 190.0, 4.0, dark=True).sail_for(6 * HOUR, 10.0, 4.0)
    vessels.append((_spec(244123014, "COASTER", length=80), coast.track()))
    cross = (55.0, 6.0)   # both reach it at hour 4 at 14 kn, then go their ways at 8 kn
    c1_from, c1_to = destination(*cross, 270.0, 4 * 14 * 1852.0), destination(*cross, 300.0, 20 * 8 * 1852.0)
    c2_from, c2_to = destination(*cross, 180.0, 4 * 14 * 1852.0), destination(*cross, 350.0, 20 * 8 * 1852.0)
    vessels.append((_spec(244123015, "CROSSER EAST"), Segments([
        (t(0), t(4), _route(c1_from, cross, t(0), t(4), seed + 14)), (t(4), end, _route(cross, c1_to, t(4), end, seed + 15))])))
    vessels.append((_spec(244123016, "CROSSER NORTH"), Segments([
        (t(0), t(4), _route(c2_from, cross, t(0), t(4), seed + 16)), (t(4), end, _route(cross, c2_to, t(4), end, seed + 17))])))
    # a fishing vessel hauling its nets for 3 h with two net buoys beside it (gear, not an encounter)
    grounds = (56.8, 7.0)
    hauling = LoiterTrack(grounds, radius_m=250, speed_kn=1.0, start=t(2), end=t(5.5), seed=seed + 19)
    hauler = Segments([(t(0), t(2), _route(destination(*grounds, 270.0, 2 * 9 * 1852.0), grounds, t(0), t(2), seed + 20)),
                       (t(2), t(5.5), hauling),
                       (t(5.5), end, _route(grounds, destination(*grounds, 250.0, 120_000), t(5.5), end, seed + 21))])
    vessels.append((_spec(219123020, "NET HAULER", ship_type=30, length=24), hauler))
    # net buoys send positions only (a 98MID number's static report would need its parent's MMSI)
    buoy = lambda mmsi, name: dataclasses.replace(_spec(mmsi, name, ship_type=0, length=2), send_static=False)  # noqa: E731
    vessels.append((buoy(982191001, "NET BUOY 1"), Segments([(t(2.25), t(5.25), Alongside(hauling, 40, 90.0))])))
    vessels.append((buoy(941191002, "NET BUOY 2"), Segments([(t(2.25), t(5.25), Alongside(hauling, 80, 270.0))])))

    # two boats 8 nm apart with one MMSI, heard in alternate minutes from hour 6 to hour 10
    one = RouteTrack([(57.6, 4.60), (59.0, 4.60)], 3.5, t(0), seed=seed + 22)
    two = RouteTrack([(57.6, 4.85), (59.0, 4.85)], 3.5, t(0), seed=seed + 23)
    minutes = [(t(6) + 60 * k, t(6) + 60 * (k + 1)) for k in range(240)]
    vessels.append((_spec(227123030, "TWIN ONE"), Segments(
        [(t(0), t(6), one)] + [(a, b, one) for a, b in minutes[0::2]] + [(t(10), end, one)])))
    vessels.append((_spec(227123030, "TWIN TWO"), Segments((a, b, two) for a, b in minutes[1::2])))

    # rafted at a dock in Harlingen (not in the port list): two boats all day side by side, one
    # more moored along the dock until hour 9, another from hour 12
    dock = MooredTrack(53.1750, 5.4150, heading=0, seed=seed + 24)
    vessels.append((_spec(244123040, "RAFT INSIDE", length=20), dock))
    vessels.append((_spec(244123041, "RAFT OUTSIDE", length=18), Alongside(dock, 8, 90.0)))
    vessels.append((_spec(244123042, "DOCK EARLY", length=22),
                    Segments([(t(0), t(9), MooredTrack(53.1762, 5.4150, heading=0, seed=seed + 25))])))
    vessels.append((_spec(244123043, "DOCK LATE", length=22),
                    Segments([(t(12), end, MooredTrack(53.1738, 5.4150, heading=0, seed=seed + 26))])))
    return vessels


def planted_expected(start: float) -> list[ExpectedEvent]:
    t = lambda h: start + h * HOUR  # noqa: E731
    return [
        ExpectedEvent("gap", ("244123001",), t(3), t(17), "gap"),
        ExpectedEvent("loitering", ("636123002",), t(2), t(8)),
        ExpectedEvent("encounter", ("273123003", "412123004"), t(5), t(8)),
        ExpectedEvent("spoofing", ("219123005",), t(5), t(5), "jump"),
        ExpectedEvent("spoofing", ("538123006",), t(10), t(14), "stationary_moving"),
        ExpectedEvent("identity", ("123456789",), t(0), t(PLANTED_HOURS), "test_number"),
        ExpectedEvent("gear", ("219123020", "982191001"), t(2.25), t(5.25), "with_vessel"),
        ExpectedEvent("gear", ("219123020", "941191002"), t(2.25), t(5.25), "with_vessel"),
        ExpectedEvent("identity", ("941191002",), t(2.25), t(5.25), "mid_unallocated"),
        ExpectedEvent("spoofing", ("227123030",), t(6), t(10), "shared_mmsi", slack_s=600.0),
    ]


def port_heavy(start: float, seed: int = 0) -> list:
    """A port-heavy fleet (bench/detect.py): 24 class A ships at anchor off Rotterdam and 16 moored in
    Hamburg, all day. Class A at anchor or moored reports every 3 min (ITU-R M.1371), the slowest
    rate there is, so each 10-minute slot summarises only ~3 positions. Nothing to detect."""
    vessels = []
    for k in range(24):
        lat, lon = 51.96 + 0.01 * (k // 6), 3.86 + 0.015 * (k % 6)
        spec = VesselSpec(mmsi=244200000 + k, name=f"ANCHOR {k}", ship_type=80, length=180, beam=30, cls="A",
                          callsign=f"PA{k:04d}")
        vessels.append((spec, AnchoredTrack(lat, lon, swing_radius_m=60, seed=seed + 100 + k)))
    for k in range(16):
        spec = VesselSpec(mmsi=211200000 + k, name=f"QUAY {k}", ship_type=70, length=150, beam=25, cls="A",
                          callsign=f"DQ{k:04d}")
        vessels.append((spec, MooredTrack(53.535 + 0.002 * k, 9.95, heading=0, seed=seed + 200 + k)))
    return vessels


SCENARIOS = {"planted": planted, "port": port_heavy}
EXPECTED = {"planted": planted_expected, "port": lambda start: []}
DURATION_HOURS = {"planted": PLANTED_HOURS, "port": 24.0}
TRAPS = {"planted": ("244123010", "244123011", "211123012", "211123013", "244123014", "244123015", "244123016",
                     "244123040", "244123041", "244123042", "244123043"),
         "port": ()}


def expected_events(name: str, start: float) -> list[ExpectedEvent]:
    """The events scenario ``name`` started at ``start`` must produce (and no others)."""
    return EXPECTED[name](start)


# which filter keeps each trap from firing: (vessels, detector settings that switch it off, the
# event type it then fires as)
TRAP_FILTERS = {"planted": {
    "anchored in Rotterdam": (("244123010", "244123011"), {"encounter": {"min_port_km": 0.0}}, "encounter"),
    "moored in Hamburg": (("211123012", "211123013"), {"encounter": {"min_port_km": 0.0, "min_shore_nm": 0.0}},
                          "encounter"),
    "coaster silent near the coast": (("244123014",), {"gap": {"min_shore_nm": 0.0}}, "gap"),
    "rafted at a dock outside the port list": (
        ("244123040", "244123041"), {"encounter": {"min_shore_nm": 0.0}, "anchorages": {"learn": False}}, "encounter"),
    "net buoy beside its fishing vessel": (("219123020", "982191001"), {"encounter": {"ships_only": False}}, "encounter"),
}}


def edge_interval_s(name: str, start: float, mmsi: str, t: float) -> int:
    """Vessel ``mmsi``'s reporting interval just before time ``t`` (just after it if silent before).

    The last report before a change at t was sent less than this before t and scheduled the next
    one less than this after t, so an edge found from the reports is within this interval of the
    truth: the accuracy a detector can reach (the simulator's rule, ITU-R M.1371).
    """
    for spec, track in SCENARIOS[name](start, 0):
        if str(spec.mmsi) == mmsi:
            state = track.state(t - 1) or track.state(t + 1)
            return report_interval(spec.cls, state)
    raise KeyError(mmsi)
