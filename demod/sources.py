"""Sources for the ingest pipeline: the software receiver's NMEA as :class:`ingest.lines.Line`.

``IQFileSource`` decodes a recording; ``SDRSource`` an RTL-SDR dongle via pyrtlsdr. Both follow
the Source protocol (``id``, ``lines()``, ``close()``), so ``aiswatch ingest iq FILE`` and
``aiswatch ingest sdr`` feed the pipeline in-process, with no rtl_ais/AIS-catcher in between.
Each line's reception time, level and carrier offset travel beside it as data (``Line.tags``),
not as tag-block text to be parsed back; ``aiswatch demod`` writes them as a tag block for NMEA
consumers over UDP or standard output.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Iterator, Literal, Union

from pydantic import Field, field_validator

from aiswatch.demod.decode import FrameDecoder, SDRUnavailable, open_sdr, sdr_blocks
from aiswatch.demod import settings as limits
from aiswatch.demod.iqfile import FORMATS, STDIN
from aiswatch.ingest.lines import Line
from aiswatch.ingest.sources import SourceSettings, SourceType

log = logging.getLogger(__name__)


class IQFileSource:
    """Decode an IQ recording (or discriminator audio) into NMEA lines.

    path (a file, a FIFO, or '-' for standard input), fmt ('cu8', 'cs8', 'cs16', 'cf32', 'wav',
    'disc'; None = from the extension), rate (samples/s; from the header for WAV), center (Hz,
    default 162e6), ppm (known receiver error), start_time (unix seconds of the first sample;
    default: the file's modification time minus its duration, so replays give the same times; for
    a stream, the time it was opened), station (``s:`` tag; default none).
    Raises demod.iqfile.IQFormatError at construction when the file cannot be read as ``fmt`` or
    a setting is out of range.
    """

    def __init__(self, path: str, *, fmt: str | None = None, rate: float | None = None,
                 center: float | None = None, ppm: float = 0.0, start_time: float | None = None,
                 station: str | None = None):
        self.decoder = FrameDecoder.for_file(path, fmt=fmt, rate=rate, center=center, ppm=ppm,
                                             start_time=start_time, station=station)
        self.id = "iq:stdin" if str(path) == STDIN else f"iq:{os.path.basename(str(path))}"
        self._closed = threading.Event()

    def lines(self) -> Iterator[Line]:
        for number, (text, tags) in enumerate(self.decoder.tagged_sentences(stop=self._closed)):
            yield Line(text, time.time(), self.id, number, tags)

    def close(self) -> None:
        self._closed.set()

    @property
    def stats(self) -> dict:
        return self.decoder.stats()


class SDRSource:
    """Live reception from an RTL-SDR.

    device_index (0), rate (288000 S/s), center (162.000 MHz, between the channels), gain ('auto'
    for AGC, or dB), ppm (frequency correction programmed into the tuner), station (``s:`` tag).
    Raises demod.decode.SDRUnavailable (a clear message) when librtlsdr or the device is missing.
    """

    def __init__(self, *, device_index: int = 0, rate: float = limits.SDR_RATE, center: float = limits.CENTER_HZ,
                 gain="auto", ppm: int = 0, station: str | None = None):
        self.device = open_sdr(device_index=device_index, rate=rate, center=center, gain=gain, ppm=ppm)
        self.decoder = FrameDecoder.for_stream(rate=self.device.sample_rate, center=center, station=station)
        self.id = f"sdr:{device_index}"
        self._closed = threading.Event()

    def lines(self) -> Iterator[Line]:
        blocks = self.device_blocks()
        for text, tags in self.decoder.tagged_sentences(blocks=blocks, stop=self._closed):
            yield Line(text, time.time(), self.id, None, tags)

    def device_blocks(self):
        return sdr_blocks(self.device, name=f"RTL-SDR {self.id}", stop=self._closed)

    def close(self) -> None:
        self._closed.set()


def _checked(check):
    """A before-validator from one of demod.settings' checks (None passes: the default applies)."""
    def validate(cls, value):
        return None if value is None else check(value)
    return classmethod(validate)


class IQSettings(SourceSettings):
    path: str = Field(description="The recording; '-' reads standard input.", json_schema_extra={"cli": "argument"})
    fmt: Literal[FORMATS] | None = Field(None, description="Sample format (default: from the file extension).",  # type: ignore[valid-type]
                                          json_schema_extra={"cli": "--format"})
    rate: float | None = Field(None, description="Sample rate in S/s (WAV: from the header).")
    center: float | None = Field(None, description=f"Centre frequency in Hz (default {limits.CENTER_HZ:.0f}).")
    ppm: float = Field(0.0, description="Known receiver frequency error (ppm).")
    start_time: float | None = Field(None, description="Unix time of the first sample (default: file modification "
                                     "time minus its duration).")
    station: str | None = Field(None, description="Station name for the s: tag.")

    _rate = field_validator("rate", mode="before")(_checked(lambda v: limits.check_rate(v, audio=None)))
    _center = field_validator("center", mode="before")(_checked(limits.check_center))
    _ppm = field_validator("ppm", mode="before")(_checked(limits.check_ppm))
    _start = field_validator("start_time", mode="before")(_checked(limits.check_start_time))


class SDRSettings(SourceSettings):
    device_index: int = Field(0, ge=0, description="RTL-SDR device index.")
    rate: float = Field(limits.SDR_RATE, description="Sample rate in S/s.")
    center: float = Field(limits.CENTER_HZ, description="Tuned frequency in Hz (between the two AIS channels).")
    gain: Union[Literal["auto"], float] = Field("auto", description="Tuner gain in dB, or 'auto' (AGC).")
    ppm: int = Field(0, description="Frequency correction of the dongle (ppm).")
    station: str | None = Field(None, description="Station name for the s: tag (the receiver field of documents).")

    _rate = field_validator("rate", mode="before")(_checked(lambda v: limits.check_rate(v, audio=False)))
    _center = field_validator("center", mode="before")(_checked(limits.check_center))
    _ppm = field_validator("ppm", mode="before")(_checked(limits.check_ppm))


IQ = SourceType("iq", IQSettings, lambda s, counters: IQFileSource(s.path, fmt=s.fmt, rate=s.rate, center=s.center,
                                                             ppm=s.ppm, start_time=s.start_time, station=s.station),
                finite=True)
SDR = SourceType("sdr", SDRSettings, lambda s, counters: SDRSource(device_index=s.device_index, rate=s.rate, center=s.center,
                                                            gain=s.gain, ppm=s.ppm, station=s.station))

__all__ = ["IQ", "IQFileSource", "SDR", "SDRSource", "SDRUnavailable"]
