"""Sources for the ingest pipeline: the software receiver's NMEA as :class:`ingest.lines.Line`.

``IQFileSource`` decodes a recording; ``SDRSource`` an RTL-SDR dongle via pyrtlsdr. Both follow
the Source protocol (``id``, ``lines()``, ``close()``), so ``aiswatch ingest iq FILE`` and
``aiswatch ingest sdr`` feed the pipeline in-process, with no rtl_ais/AIS-catcher in between.
Each line carries a tag block with the reception time (``c:``), level (``L:``) and carrier offset
(``F:``).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Iterator

from aiswatch.demod.decode import FrameDecoder, SDRUnavailable, open_sdr, sdr_blocks
from aiswatch.demod.iqfile import STDIN
from aiswatch.ingest.lines import Line

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
        for number, text in enumerate(self.decoder.nmea_lines(stop=self._closed)):
            yield Line(text, time.time(), self.id, number)

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

    def __init__(self, *, device_index: int = 0, rate: float = 288_000, center: float = 162_000_000,
                 gain="auto", ppm: int = 0, station: str | None = None):
        self.device = open_sdr(device_index=device_index, rate=rate, center=center, gain=gain, ppm=ppm)
        self.decoder = FrameDecoder.for_stream(rate=self.device.sample_rate, center=center, station=station)
        self.id = f"sdr:{device_index}"
        self._closed = threading.Event()

    def lines(self) -> Iterator[Line]:
        blocks = self.device_blocks()
        for text in self.decoder.nmea_lines(blocks=blocks, stop=self._closed):
            yield Line(text, time.time(), self.id)

    def device_blocks(self):
        return sdr_blocks(self.device, name=f"RTL-SDR {self.id}", stop=self._closed)

    def close(self) -> None:
        self._closed.set()


__all__ = ["IQFileSource", "SDRSource", "SDRUnavailable"]
