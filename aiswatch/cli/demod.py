"""``aiswatch demod``: the software AIS receiver on the command line.

    aiswatch demod capture.cu8 --format cu8 --rate 288000 [--center 162000000]
    rtl_sdr -f 162e6 -s 288000 - | aiswatch demod - --format cu8 --rate 288000
    aiswatch demod --sdr [--device-index 0 --gain auto --ppm 0 --rate 288000] --udp 127.0.0.1:10110

prints !AIVDM sentences (or sends them over UDP like rtl_ais: CRLF-terminated, one datagram per
sentence). Every sentence carries a tag block with the reception time and, as our own fields,
the signal level (L:, dB full scale) and carrier offset (F:, Hz); ``--no-tags`` prints bare
sentences. Exit status: 0 on success, 1 for an unreadable file (or one whose header the
receiver cannot use), 2 for a bad option or when no SDR can be opened or it stops delivering.
"""
from __future__ import annotations

import os
import socket
import sys

import click

from aiswatch.demod import settings
from aiswatch.demod.iqfile import FORMATS


def _parse_hostport(value: str) -> tuple[int, tuple]:
    """(address family, socket address) of HOST:PORT ([v6]:PORT too), resolved once, here, so a
    name that does not resolve is an option error instead of a traceback at the first sentence."""
    from aiswatch.common.hostport import parse_hostport

    try:
        host, number = parse_hostport(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    try:
        family, _, _, _, address = socket.getaddrinfo(host, number, type=socket.SOCK_DGRAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise click.BadParameter(f"cannot resolve {host!r}: {getattr(err, 'strerror', None) or err}") from None
    return family, address


def _checked(check):
    """A click callback that runs one of demod.settings' checks (None passes: the default applies)."""
    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return check(value)
        except settings.SettingError as err:
            raise click.BadParameter(str(err)) from None
    return callback


@click.command("demod")
@click.argument("path", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Sample format (default: from the file extension).")
@click.option("--rate", type=float, callback=_checked(lambda v: settings.check_rate(v, audio=None)),
              help="Sample rate in S/s (required for raw files; WAV has it in the header; SDR default 288000; at most 20 MS/s).")
@click.option("--center", type=float, callback=_checked(settings.check_center), help=f"Tuned centre frequency in Hz (default {settings.CENTER_HZ:.0f}).")
@click.option("--ppm", type=float, default=0.0, show_default=True, callback=_checked(settings.check_ppm),
              help="Known receiver frequency error (ppm, within +-1000).")
@click.option("--start-time", type=float, callback=_checked(settings.check_start_time),
              help="Unix time of the first sample (default: file mtime minus duration; a pipe: now).")
@click.option("--station", help="Station name for the s: tag.")
@click.option("--tags/--no-tags", default=True, show_default=True, help="Prefix each sentence with a tag block (c:, L:, F:).")
@click.option("--udp", "udp_target", callback=lambda ctx, param, value: value and (value, *_parse_hostport(value)),
              help="Send sentences to HOST:PORT over UDP instead of printing them.")
@click.option("--sdr", is_flag=True, help="Receive live from an RTL-SDR instead of a file.")
@click.option("--device-index", type=int, default=0, show_default=True, help="RTL-SDR device index.")
@click.option("--gain", default="auto", show_default=True, help="RTL-SDR gain in dB, or 'auto' (AGC).")
@click.option("--stats", is_flag=True, help="Print frame counts to stderr at the end.")
def demod(path, fmt, rate, center, ppm, start_time, station, tags, udp_target, sdr, device_index, gain, stats):
    """Software AIS receiver: IQ recording, pipe ('-' = stdin) or RTL-SDR in, NMEA out."""
    from aiswatch.demod.decode import FrameDecoder, SDRUnavailable, open_sdr, sdr_blocks
    from aiswatch.demod.iqfile import IQFormatError

    if bool(path) == bool(sdr):
        raise click.UsageError("give either a recording PATH (- for standard input) or --sdr")
    send = None
    if udp_target:
        target, family, address = udp_target
        sock = socket.socket(family, socket.SOCK_DGRAM)

        def send(text):
            try:
                sock.sendto((text + "\r\n").encode("ascii"), address)
            except OSError as err:  # e.g. no route to the host
                raise click.ClickException(f"cannot send to {target} over UDP: {err.strerror or err}") from None

    try:
        if sdr:
            try:
                gain_value = gain if gain == "auto" else float(gain)
            except ValueError:
                raise click.BadParameter(f"gain must be a number of dB or 'auto', got {gain!r}") from None
            try:
                device = open_sdr(device_index=device_index, rate=rate or settings.SDR_RATE, center=center or settings.CENTER_HZ,
                                  gain=gain_value, ppm=ppm)
            except SDRUnavailable as err:
                click.echo(f"Error: {err}", err=True)
                sys.exit(2)
            decoder = FrameDecoder.for_stream(rate=device.sample_rate, center=center or settings.CENTER_HZ,
                                              station=station, tags=tags)
            lines = decoder.nmea_lines(sdr_blocks(device, name=f"RTL-SDR {device_index}"))
        else:
            decoder = FrameDecoder.for_file(path, fmt=fmt, rate=rate, center=center, ppm=ppm,
                                            start_time=start_time, station=station, tags=tags)
            lines = decoder.nmea_lines()
        for text in lines:
            if send:
                send(text)
            else:
                click.echo(text)
    except IQFormatError as err:
        raise click.ClickException(str(err)) from None
    except SDRUnavailable as err:  # the dongle went away while reading: what was decoded is out
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        # the reader of our output went away (| head): stop quietly, as command-line tools do
        sys.stdout = open(os.devnull, "w")
        sys.exit(0)
    except OSError as err:  # a read error on the recording or pipe
        raise click.ClickException(f"{path}: {err.strerror or err}") from None
    except KeyboardInterrupt:
        pass
    if stats:
        click.echo(" ".join(f"{k}={v}" for k, v in decoder.stats().items()), err=True)
