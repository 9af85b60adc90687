"""``aiswatch simulate``: write simulated AIS traffic (``aiswatch.ingest.simulation``) as NMEA to a
file, standard output or UDP, optionally with a behaviour scenario (``aiswatch.behavior.scenarios``)."""
from __future__ import annotations

import os
import sys
import time

import click

from aiswatch.common.durations import parse_duration
from aiswatch.common.hostport import parse_hostport
from aiswatch.common.times import iso_from_seconds, parse_time
from aiswatch.ingest.simulation import BASE_STATIONS, DEFAULT_BBOX, Simulator, random_fleet, send_udp, write_file, write_stream


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
    """``SCENARIOS[name]`` of ``aiswatch.behavior.scenarios``: a function (start, seed) -> list[(VesselSpec, Track)]."""
    from aiswatch.behavior.scenarios import SCENARIOS as scenarios

    if name not in scenarios:
        raise LookupError(f"unknown scenario {name!r}; known: {', '.join(sorted(scenarios)) or '(none)'}")
    return scenarios[name]


def _fmt_time(t: float | None) -> str:
    return "-" if t is None else iso_from_seconds(t)[:19] + "Z"


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
@click.option("--scenario", default=None, metavar="NAME",
              help="Add a behaviour scenario: 'planted' (an event of every detector, and traps that must not "
                   "fire) or 'port' (ships at anchor and moored).")
@click.option("--base-stations", "n_base", type=click.IntRange(0, len(BASE_STATIONS)), default=0, show_default=True,
              help="Shore base stations (North Sea coast stations) sending type 4 every 10 s.")
@click.option("--loss", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Fraction of messages randomly lost in reception.")
@click.option("--group-tags", is_flag=True, help="Tag multi-sentence messages with NMEA 4.10 g:part-total-id.")
@click.option("--anchored", "anchored_fraction", type=click.FloatRange(0.0, 1.0), default=0.15, show_default=True,
              help="Fraction of the random class A vessels lying at anchor (a position every 3 min).")
@click.option("--class-b", "class_b_fraction", type=click.FloatRange(0.0, 1.0), default=0.25, show_default=True,
              help="Fraction of the random vessels that are class B.")
@click.option("--static-jitter", "static_jitter_s", type=click.IntRange(0, 179), default=0, show_default=True,
              help="Send static messages up to this many seconds off their 6-minute schedule (as transponders "
                   "pick a free slot), so their order and sequence ids vary.")
def simulate_command(n_vessels, duration, start_text, seed, bbox_text, out, udp, rate, station, scenario, n_base,
                     loss, group_tags, anchored_fraction, class_b_fraction, static_jitter_s):
    """Generate realistic AIS traffic as NMEA lines with tag blocks (file, stdout or UDP)."""
    from aiswatch.ingest.simulation.output import parse_rate

    try:
        duration_s = parse_duration(duration, "--duration")
        start = float(int(time.time())) if start_text.lower() == "now" else parse_time(start_text, what="--start")
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
    vessels.extend(random_fleet(n, bbox=bbox, seed=seed, start=start, anchored_fraction=anchored_fraction,
                                class_b_fraction=class_b_fraction))
    if not vessels:
        raise click.UsageError("no vessels: give --vessels N and/or --scenario NAME")
    sim = Simulator(vessels, start=start, seed=seed, station=station, base_stations=BASE_STATIONS[:n_base],
                    loss=loss, group_tags=group_tags, static_jitter_s=static_jitter_s)
    messages = sim.messages(duration_s)
    wall = time.perf_counter()
    if udp:
        try:
            host, port = parse_hostport(udp)
        except ValueError as exc:
            raise click.BadParameter(f"--udp: {exc}") from None
        stats = send_udp(host, port, messages, rate=pace)
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
