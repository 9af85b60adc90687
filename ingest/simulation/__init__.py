"""The AIS traffic simulator's parts; ``ingest.simulate`` is the public face (import from there).

    vessels.py   VesselSpec and random identities (MIDs, names, IMO numbers)
    geo.py       spherical distances, bearings, offsets
    tracks.py    TrackState, RouteTrack, AnchoredTrack, MooredTrack, LoiterTrack, Alongside,
                 Segments, Silence, Jump, Override, Itinerary
    encoding.py  AIS payloads and NMEA lines with tag blocks
    simulator.py Simulator: vessels -> time-ordered messages at ITU report intervals
    fleet.py     random_fleet over North Sea sea lanes
    output.py    file / stream / UDP writers
"""
