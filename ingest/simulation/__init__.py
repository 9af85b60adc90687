"""The AIS traffic simulator: realistic vessels as NMEA, for the demo, the tests and the benchmarks.

Build a fleet from vessels (who: ``VesselSpec``) and tracks (where, when: ``RouteTrack``,
``AnchoredTrack``, ``MooredTrack``, ``LoiterTrack``, ``Alongside``, composed with ``Segments``,
``Silence``, ``Jump``, ``Override`` or the ``Itinerary`` builder), hand them to ``Simulator`` and
write ``messages(duration_s)`` to a file, a stream or UDP. ``random_fleet`` makes background
traffic; behaviour scenarios (``aiswatch.behavior.scenarios``) plant events with the same blocks.

    from aiswatch.ingest.simulation import Simulator, random_fleet, write_file
    sim = Simulator(random_fleet(50, seed=1, start=t0), start=t0, seed=1)
    write_file("traffic.nmea", sim.messages(3600))

Every line is ``\\s:<station>,c:<unix seconds>*hh\\!AIVDM,...``, so the message time survives.

    vessels.py   VesselSpec and random identities (MIDs, names, IMO numbers)
    geo.py       spherical distances, bearings, offsets
    tracks.py    TrackState, RouteTrack, AnchoredTrack, MooredTrack, LoiterTrack, Alongside
    compose.py   Segments, Silence, Jump, Override, Itinerary
    encoding.py  AIS payloads and NMEA lines with tag blocks
    simulator.py Simulator: vessels -> time-ordered messages at ITU report intervals
    fleet.py     random_fleet over North Sea sea lanes
    output.py    file / stream / UDP writers
"""
from aiswatch.ingest.simulation.compose import Itinerary, Jump, Override, Segments, Silence
from aiswatch.ingest.simulation.encoding import tag_block
from aiswatch.ingest.simulation.fleet import ANCHORAGES, BASE_STATIONS, DEFAULT_BBOX, SEA_LANES, SEA_NODES, random_fleet
from aiswatch.common.geodesy import MS_PER_KNOT, bearing_deg, destination, haversine_m, offset
from aiswatch.ingest.simulation.output import OutputStats, paced, send_udp, write_file, write_stream
from aiswatch.ingest.simulation.simulator import STATIC_INTERVAL_S, BaseStation, SimMessage, Simulator, report_interval
from aiswatch.ingest.simulation.tracks import (AT_ANCHOR, ENGAGED_IN_FISHING, MOORED, UNDER_WAY_SAILING,
                                               UNDER_WAY_USING_ENGINE, Alongside, AnchoredTrack, LoiterTrack,
                                               MooredTrack, RouteTrack, Track, TrackState, distance_between)
from aiswatch.ingest.simulation.vessels import MIDS, VesselSpec, imo_is_valid, random_mmsi, random_vessel

__all__ = [
    "VesselSpec", "TrackState", "Track", "RouteTrack", "AnchoredTrack", "MooredTrack", "LoiterTrack", "Alongside",
    "Segments", "Silence", "Jump", "Override", "Itinerary", "Simulator", "SimMessage", "BaseStation", "random_fleet",
    "random_vessel", "random_mmsi", "write_file", "write_stream", "send_udp", "paced", "OutputStats", "report_interval",
    "STATIC_INTERVAL_S", "DEFAULT_BBOX", "SEA_NODES", "SEA_LANES", "ANCHORAGES", "BASE_STATIONS", "MIDS", "imo_is_valid",
    "haversine_m", "bearing_deg", "destination", "offset", "distance_between", "MS_PER_KNOT", "tag_block",
    "UNDER_WAY_USING_ENGINE", "AT_ANCHOR", "MOORED", "ENGAGED_IN_FISHING", "UNDER_WAY_SAILING",
]
