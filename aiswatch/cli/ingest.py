"""``aiswatch ingest SOURCE``: run one source through the pipeline into Elasticsearch.

udp (rtl_ais / AIS-catcher), tcp (NMEA feeds), file (log replay), aisstream (aisstream.io websocket),
sdr (RTL-SDR through aiswatch's own demodulator), iq (an IQ recording through it).
"""
from __future__ import annotations

import functools
import sys

import click

from aiswatch.demod.iqfile import FORMATS as IQ_FORMATS
from aiswatch.runner import IngestOptions, exit_on_failure, run_sources, summary_lines


def common_options(fn):
    """--es, --namespace, --spool-dir, --dead-letter, --batch-size, --no-setup for every ingest command."""
    @click.option("--es", "es_url", envvar="ES_URL", default=None,
                  help="Elasticsearch URL (default: config, else the embedded server).")
    @click.option("--namespace", default=None, help="Prefix for every index name.")
    @click.option("--spool-dir", default=None,
                  help="Disk spool for documents while Elasticsearch is slow or down (default: one of this "
                       "process's own under sink.spool_dir).")
    @click.option("--dead-letter", default=None, help="NDJSON file for documents Elasticsearch rejected.")
    @click.option("--batch-size", type=int, default=None, help="Documents per bulk request at most.")
    @click.option("--no-setup", is_flag=True, help="Do not install index templates first.")
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx, es_url, namespace, spool_dir, dead_letter, batch_size, no_setup, *args, **kwargs):
        opts = IngestOptions(es_url=es_url, namespace=namespace, spool_dir=spool_dir, dead_letter=dead_letter,
                             batch_size=batch_size, setup=not no_setup)
        return fn(ctx, opts, *args, **kwargs)
    return wrapper


def replay_options(fn):
    """--max-wait for the commands that replay a finite input (file, iq)."""
    return click.option("--max-wait", default=None, metavar="DURATION",
                        help="How long to wait for Elasticsearch while it is down (retrying with backoff) before "
                             "giving up with exit status 1, the documents kept in the spool (default: "
                             "sink.max_wait, 10m).")(fn)


def _max_wait(text: str | None) -> float | None:
    from aiswatch.common.durations import parse_duration

    return None if text is None else parse_duration(text, "--max-wait")


def _run(ctx, opts: IngestOptions, make_sources, quiet: bool = False, report=None):
    """Run the sources; print the summary (and ``report()``'s lines), exit 1 on a failure."""
    from aiswatch.cli import load_config_from

    # a ConfigError from here on is one Error: line (ingest.cli.LazyGroup.invoke)
    counters = run_sources(load_config_from(ctx), make_sources, opts)
    if not quiet:
        click.echo("\n".join(summary_lines(counters)), err=True)
    if report is not None:
        click.echo(report(), err=True)
    exit_on_failure(counters, opts)
    return counters


@click.group()
def ingest():
    """Ingest from one source: udp, tcp, file, aisstream, sdr, iq."""


@ingest.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=10110, show_default=True, type=click.IntRange(0, 65535),
              help="UDP port (rtl_ais and AIS-catcher send to 10110).")
@common_options
def udp(ctx, opts, host, port):
    """Receive NMEA datagrams from rtl_ais / AIS-catcher."""
    from aiswatch.ingest.sources.udp import UDPSource

    _run(ctx, opts, lambda counters: [UDPSource(host=host, port=port, counters=counters)])


@ingest.command()
@click.argument("address")
@common_options
def tcp(ctx, opts, address):
    """Read NMEA from a TCP feed at HOST:PORT (reconnects with backoff)."""
    from aiswatch.common.hostport import parse_hostport
    from aiswatch.ingest.sources.tcp import TCPSource

    try:
        host, port = parse_hostport(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDRESS") from None
    _run(ctx, opts, lambda counters: [TCPSource(host=host, port=port, counters=counters)])


@ingest.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--rate", type=click.Choice(["max", "realtime"]), default="max", show_default=True,
              help="Replay as fast as possible, or at the pace of the message times.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--parallel/--no-parallel", default=True, show_default=True,
              help="At --rate max, read and decode in a second process while this one indexes (two cores).")
@replay_options
@common_options
def file(ctx, opts, paths, rate, progress, parallel, max_wait):
    """Replay NMEA log files (plain or .gz); stops at the end and prints a summary."""
    from aiswatch.ingest.sources.file import FileSource

    if progress is None:
        progress = sys.stderr.isatty()
    opts.replay = True
    opts.max_wait = _max_wait(max_wait)
    opts.progress = progress
    opts.decode_process = parallel and rate == "max"
    _run(ctx, opts, lambda counters: [FileSource(list(paths), rate=rate, counters=counters, progress=progress)])


def _parse_bbox(text: str) -> list:
    try:
        lat1, lon1, lat2, lon2 = (float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected LAT1,LON1,LAT2,LON2") from None
    if not (-90 <= lat1 <= 90 and -90 <= lat2 <= 90 and -180 <= lon1 <= 180 and -180 <= lon2 <= 180):
        raise click.BadParameter(f"{text!r}: latitude must be within ±90 and longitude within ±180")
    return [[lat1, lon1], [lat2, lon2]]


@ingest.command()
@click.option("--bbox", "bboxes", multiple=True, required=True,
              help="Bounding box LAT1,LON1,LAT2,LON2 (latitude first, as aisstream wants); repeatable.")
@click.option("--types", default=None, help="Comma-separated aisstream message types, e.g. PositionReport,ShipStaticData.")
@click.option("--mmsi", "mmsis", multiple=True, help="Only these MMSIs; repeatable.")
@click.option("--api-key-file", default=None, help="File holding the API key (else env AISSTREAM_API_KEY).")
@click.option("--url", default="wss://stream.aisstream.io/v0/stream", show_default=True)
@common_options
def aisstream(ctx, opts, bboxes, types, mmsis, api_key_file, url):
    """Subscribe to the aisstream.io websocket (key from AISSTREAM_API_KEY or --api-key-file)."""
    from aiswatch.config import read_secret
    from aiswatch.ingest.sources.aisstream import AisstreamSource

    key = read_secret("AISSTREAM_API_KEY", api_key_file)   # a missing key file: one Error: line
    if not key:
        raise click.ClickException("no aisstream API key: set AISSTREAM_API_KEY or pass --api-key-file")
    boxes = [_parse_bbox(b) for b in bboxes]
    type_list = [t.strip() for t in types.split(",")] if types else None
    _run(ctx, opts, lambda counters: [AisstreamSource(api_key=key, bboxes=boxes, message_types=type_list,
                                                      mmsis=[int(m) for m in mmsis] or None, url=url,
                                                      counters=counters)])


def _open_demod_source(make):
    """Build a demod source before anything starts: a missing dongle or a bad file is a clear error."""
    from aiswatch.demod.decode import SDRUnavailable
    from aiswatch.demod.iqfile import IQFormatError

    try:
        return make()
    except SDRUnavailable as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except (IQFormatError, OSError) as err:
        raise click.ClickException(str(err)) from None


@ingest.command()
@click.option("--device-index", type=int, default=0, show_default=True, help="RTL-SDR device index.")
@click.option("--rate", type=float, default=288_000, show_default=True, help="Sample rate in S/s.")
@click.option("--center", type=float, default=162_000_000, show_default=True,
              help="Tuned frequency in Hz (between the two AIS channels).")
@click.option("--gain", default="auto", show_default=True, help="Tuner gain in dB, or 'auto' (AGC).")
@click.option("--ppm", type=int, default=0, show_default=True, help="Frequency correction of the dongle (ppm).")
@click.option("--station", default=None, help="Station name for the s: tag (the receiver field of documents).")
@common_options
def sdr(ctx, opts, device_index, rate, center, gain, ppm, station):
    """Receive live from an RTL-SDR with aiswatch's own demodulator (no rtl_ais needed)."""
    from aiswatch.demod.sources import SDRSource

    try:
        gain_value = gain if gain == "auto" else float(gain)
    except ValueError:
        raise click.BadParameter(f"gain must be a number of dB or 'auto', got {gain!r}") from None
    source = _open_demod_source(lambda: SDRSource(device_index=device_index, rate=rate, center=center,
                                                  gain=gain_value, ppm=ppm, station=station))
    _run(ctx, opts, lambda counters: [source])


@ingest.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(IQ_FORMATS), default=None,
              help="Sample format (default: from the file extension).")
@click.option("--rate", type=float, default=None, help="Sample rate in S/s (WAV: from the header).")
@click.option("--center", type=float, default=None, help="Centre frequency in Hz (default 162000000).")
@click.option("--ppm", type=float, default=0.0, show_default=True, help="Known receiver frequency error (ppm).")
@click.option("--start-time", type=float, default=None,
              help="Unix time of the first sample (default: file modification time minus its duration).")
@click.option("--station", default=None, help="Station name for the s: tag.")
@replay_options
@common_options
def iq(ctx, opts, path, fmt, rate, center, ppm, start_time, station, max_wait):
    """Demodulate an IQ recording (or discriminator audio) into Elasticsearch; stops at the end."""
    from aiswatch.demod.sources import IQFileSource

    source = _open_demod_source(lambda: IQFileSource(path, fmt=fmt, rate=rate, center=center, ppm=ppm,
                                                     start_time=start_time, station=station))
    opts.replay = True
    opts.max_wait = _max_wait(max_wait)
    return _run(ctx, opts, lambda counters: [source],
                report=lambda: " ".join(f"{k}={v}" for k, v in source.stats.items()))
