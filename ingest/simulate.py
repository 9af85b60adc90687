"""Simulated AIS traffic (``aiswatch simulate``): realistic vessels as NMEA for the demo, tests and benchmarks.

Build a fleet from vessels (who: ``VesselSpec``) and tracks (where, when: ``RouteTrack``,
``AnchoredTrack``, ``MooredTrack``, ``LoiterTrack``, ``Alongside``, composed with ``Segments``,
``Silence``, ``Jump``, ``Override`` or the ``Itinerary`` builder), hand them to ``Simulator`` and
write ``messages(duration_s)`` to a file, a stream or UDP. ``random_fleet`` makes background
traffic; behaviour scenarios (``behavior.scenarios.SCENARIOS``) plant events with the same blocks.

    from aiswatch.ingest.simulate import Simulator, random_fleet, write_file
    sim = Simulator(random_fleet(50, seed=1, start=t0), start=t0, seed=1)
    write_file("traffic.nmea", sim.messages(3600))

Every line is ``\\s:<station>,c:<unix seconds>*hh\\!AIVDM,...``, so the message time survives.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
import time
from datetime import datetime, timezone

import click

from aiswatch.ingest.simulation.encoding import tag_block
from aiswatch.ingest.simulation.fleet import ANCHORAGES, BASE_STATIONS, DEFAULT_BBOX, SEA_LANES, SEA_NODES, random_fleet
from aiswatch.ingest.simulation.geo import MS_PER_KNOT, bearing_deg, destination, haversine_m, offset
from aiswatch.ingest.simulation.output import OutputStats, paced, send_udp, write_file, write_stream
from aiswatch.ingest.simulation.simulator import STATIC_INTERVAL_S, BaseStation, SimMessage, Simulator, report_interval
from aiswatch.ingest.simulation.tracks import (AT_ANCHOR, ENGAGED_IN_FISHING, MOORED, UNDER_WAY_SAILING, UNDER_WAY_USING_ENGINE,
                                      Alongside, AnchoredTrack, Itinerary, Jump, LoiterTrack, MooredTrack, Override,
                                      RouteTrack, Segments, Silence, Track, TrackState, distance_between)
from aiswatch.ingest.simulation.vessels import MIDS, VesselSpec, imo_is_valid, random_mmsi, random_vessel

__all__ = [
    "VesselSpec", "TrackState", "Track", "RouteTrack", "AnchoredTrack", "MooredTrack", "LoiterTrack", "Alongside",
    "Segments", "Silence", "Jump", "Override", "Itinerary", "Simulator", "SimMessage", "BaseStation", "random_fleet",
    "random_vessel", "random_mmsi", "write_file", "write_stream", "send_udp", "paced", "OutputStats", "report_interval",
    "STATIC_INTERVAL_S", "DEFAULT_BBOX", "SEA_NODES", "SEA_LANES", "ANCHORAGES", "BASE_STATIONS", "MIDS", "imo_is_valid",
    "haversine_m", "bearing_deg", "destination", "offset", "distance_between", "MS_PER_KNOT", "tag_block",
    "UNDER_WAY_USING_ENGINE", "AT_ANCHOR", "MOORED", "ENGAGED_IN_FISHING", "UNDER_WAY_SAILING",
    "parse_duration", "parse_start", "load_scenario", "simulate_command",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '10m', '1.5h', '2d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not m:
        raise ValueError(f"duration {text!r}: expected a number with an optional unit s, m, h or d (e.g. 1h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def parse_start(text: str) -> float:
    """'now' or an ISO-8601 time (naive = UTC) -> unix seconds."""
    if text.lower() == "now":
        return float(int(time.time()))
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"start {text!r}: expected 'now' or an ISO-8601 time such as 2026-11-22T06:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """'lat1,lon1,lat2,lon2' -> tuple, checked."""
    try:
        lat1, lon1, lat2, lon2 = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"bbox {text!r}: expected lat1,lon1,lat2,lon2") from None
    if not (-90 <= lat1 <= 90 and -90 <= lat2 <= 90 and -180 <= lon1 <= 180 and -180 <= lon2 <= 180):
        raise ValueError(f"bbox {text!r}: latitudes must be within ±90 and longitudes within ±180")
    if lat1 == lat2 or lon1 == lon2:
        raise ValueError(f"bbox {text!r} is empty")
    return lat1, lon1, lat2, lon2


def load_scenario(name: str):
    """``behavior.scenarios.SCENARIOS[name]``: a function (start, seed) -> list[(VesselSpec, Track)]."""
    try:
        module = importlib.import_module("aiswatch.behavior.scenarios")
    except ModuleNotFoundError as exc:
        if exc.name in ("aiswatch.behavior.scenarios", "behavior"):
            raise LookupError("scenarios are not available: behavior/scenarios.py (SCENARIOS) does not exist "
                              "in this installation yet") from None
        raise
    scenarios = getattr(module, "SCENARIOS", None)
    if not isinstance(scenarios, dict):
        raise LookupError("behavior.scenarios has no SCENARIOS dict")
    if name not in scenarios:
        raise LookupError(f"unknown scenario {name!r}; known: {', '.join(sorted(scenarios)) or '(none)'}")
    return scenarios[name]


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.command("simulate")
@click.option("--vessels", "n_vessels", type=click.IntRange(min=0), default=None,
              help="Random background vessels [default: 50, or 0 with --scenario].")
@click.option("--duration", default="1h", show_default=True, help="Simulated time span: 90s, 10m, 1h, 2d.")
@click.option("--start", "start_text", default="now", show_default=True, help="Start time: ISO-8601 (UTC) or 'now'.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same traffic.")
@click.option("--bbox", "bbox_text", default=",".join(map(str, DEFAULT_BBOX)), show_default=True,
              help="Area of the random fleet: lat1,lon1,lat2,lon2.")
@click.option("--out", "out", default=None, help="Output file, or '-' for stdout [default: stdout unless --udp].")
@click.option("--udp", "udp", default=None, metavar="HOST:PORT", help="Send as UDP datagrams to HOST:PORT.")
@click.option("--rate", default="max", show_default=True, help="Pacing: max, realtime or messages per second.")
@click.option("--station", default="sim", show_default=True, help="Tag block station id (s:).")
@click.option("--scenario", default=None, help="Add a named scenario from behavior.scenarios.SCENARIOS.")
@click.option("--base-stations", "n_base", type=click.IntRange(0, len(BASE_STATIONS)), default=0, show_default=True,
              help="Shore base stations sending type 4 every 10 s (from BASE_STATIONS).")
@click.option("--loss", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Fraction of messages randomly lost in reception.")
@click.option("--group-tags", is_flag=True, help="Tag multi-sentence messages with NMEA 4.10 g:part-total-id.")
def simulate_command(n_vessels, duration, start_text, seed, bbox_text, out, udp, rate, station, scenario, n_base,
                     loss, group_tags):
    """Generate realistic AIS traffic as NMEA lines with tag blocks (file, stdout or UDP)."""
    from aiswatch.ingest.simulation.output import parse_rate

    try:
        duration_s = parse_duration(duration)
        start = parse_start(start_text)
        bbox = parse_bbox(bbox_text)
        pace = parse_rate(rate)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if out and udp:
        raise click.UsageError("use either --out or --udp, not both")
    vessels = []
    if scenario:
        try:
            make = load_scenario(scenario)
        except LookupError as exc:
            raise click.UsageError(str(exc)) from None
        vessels.extend(make(start, seed))
    n = n_vessels if n_vessels is not None else (0 if scenario else 50)
    vessels.extend(random_fleet(n, bbox=bbox, seed=seed, start=start))
    if not vessels:
        raise click.UsageError("no vessels: give --vessels N and/or --scenario NAME")
    sim = Simulator(vessels, start=start, seed=seed, station=station, base_stations=BASE_STATIONS[:n_base],
                    loss=loss, group_tags=group_tags)
    messages = sim.messages(duration_s)
    wall = time.perf_counter()
    if udp:
        host, _, port = udp.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter(f"--udp {udp!r}: expected HOST:PORT")
        stats = send_udp(host.strip("[]"), int(port), messages, rate=pace)
        where = f"udp {udp} ({stats.datagrams} datagrams)"
    elif out and out != "-":
        stats = write_file(out, messages, rate=pace)
        where = out
    else:
        try:
            stats = write_stream(sys.stdout, messages, rate=pace)
        except BrokenPipeError:
            # the reader went away (e.g. `| head`): that ends the run, it is not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            click.echo("simulate: stdout closed by the reader, stopped", err=True)
            return
        where = "stdout"
    wall = time.perf_counter() - wall
    stations = f" + {n_base} base stations" if n_base else ""
    click.echo(f"simulated {len(vessels)} vessels{stations}: {stats.messages} messages, {stats.lines} lines, "
               f"{_fmt_time(stats.first_time)} .. {_fmt_time(stats.last_time)} ({stats.span_s:.0f} s) -> {where} "
               f"in {wall:.1f} s", err=True)
    if sim.duplicate_mmsis:
        click.echo(f"note: MMSIs shared by several vessels: {sim.duplicate_mmsis[:10]}", err=True)
