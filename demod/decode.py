"""Glue between sample sources and NMEA text: a recording or a live stream of blocks goes through
the :class:`~demod.receiver.Receiver` and comes out as !AIVDM lines with reception times.

Also the RTL-SDR opener and reader: pyrtlsdr loads librtlsdr when imported, so it is imported here,
lazily, and every way it can fail (no Python package, no shared library, no dongle, dongle busy,
settings it rejects, a dongle unplugged while reading) becomes one :class:`SDRUnavailable` with a
message that says what to install or plug in.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time

import numpy as np

from aiswatch.demod.iqfile import STDIN, IQFile, IQFormatError
from aiswatch.demod.nmea_out import NmeaFormatter
from aiswatch.demod.receiver import DiscriminatorReceiver, Receiver
from aiswatch.demod.settings import CENTER_HZ, SDR_RATE, SettingError, check_center, check_ppm, check_rate, check_start_time

log = logging.getLogger(__name__)


class SDRUnavailable(RuntimeError):
    """No usable RTL-SDR: the message says why (library missing, no device, device busy)."""

    exit_status = 2  # the command line's status for it: the hardware, not the input, is missing


def sdr_block_samples(rate: float) -> int:
    """Samples per RTL-SDR read: a power of two (librtlsdr wants multiples of 512 bytes) of about
    half a second, so the receiver's per-block overhead stays small."""
    return 1 << max(14, int(math.ceil(math.log2(rate / 2))))


def open_sdr(*, device_index: int = 0, rate: float = SDR_RATE, center: float = CENTER_HZ, gain="auto", ppm: int = 0):
    """An opened, configured ``rtlsdr.RtlSdr``; raises SDRUnavailable with the reason."""
    try:
        rate, center, ppm = check_rate(rate), check_center(center), check_ppm(ppm)
    except SettingError as err:
        raise SDRUnavailable(f"cannot set up the RTL-SDR: {err}") from None
    try:
        from rtlsdr import RtlSdr  # imports librtlsdr
    except (ImportError, OSError, AttributeError) as err:
        if "dithering" in str(err):
            raise SDRUnavailable(
                f"this librtlsdr is older than the installed pyrtlsdr expects ({err}); "
                f"install pyrtlsdr<0.3 (pip install 'pyrtlsdr<0.3') or a newer librtlsdr") from None
        raise SDRUnavailable(
            f"cannot load librtlsdr ({err}); install it (Debian/Ubuntu: apt-get install librtlsdr0, "
            f"macOS: brew install librtlsdr) and the pyrtlsdr package") from None
    try:
        sdr = RtlSdr(device_index=device_index)
    except Exception as err:  # pyrtlsdr raises LibUSBError/IOError with varied texts
        raise SDRUnavailable(f"no RTL-SDR at device index {device_index} ({err}); is the dongle plugged in "
                             f"and not used by another program (rtl_ais, dump1090)?") from None
    try:
        sdr.sample_rate = rate
        sdr.center_freq = center
        if ppm:
            sdr.freq_correction = int(round(ppm))  # librtlsdr takes whole ppm
        sdr.gain = gain  # 'auto' = the tuner's automatic gain (pyrtlsdr turns manual gain off)
    except Exception as err:
        sdr.close()
        raise SDRUnavailable(f"RTL-SDR rejected the settings (rate {rate:g}, centre {center:g} Hz, gain {gain}, "
                             f"ppm {ppm}): {err}") from None
    return sdr


def sdr_blocks(device, *, name: str = "RTL-SDR", stop: threading.Event | None = None):
    """Blocks of complex64 samples from an opened RTL-SDR until ``stop`` is set; closes the device
    at the end. A read that fails (dongle unplugged, USB error) raises SDRUnavailable saying so,
    instead of a libusb traceback. ``aiswatch demod --sdr`` and the ingest SDRSource both read here."""
    n = sdr_block_samples(device.sample_rate)
    try:
        while stop is None or not stop.is_set():
            try:
                samples = device.read_samples(n)
            except Exception as err:  # pyrtlsdr raises LibUSBError/IOError with varied texts
                raise SDRUnavailable(f"{name} stopped delivering samples ({err}); was it unplugged?") from None
            yield np.asarray(samples, dtype=np.complex64)
    finally:
        try:
            device.close()
        except Exception as err:  # closing a dongle that is gone can fail too; the read error is the news
            log.debug("closing %s: %s", name, err)


class FrameDecoder:
    """Blocks of samples -> Frames -> NMEA lines, with timestamps and counts.

    Build with :meth:`for_file` (reads an :class:`~demod.iqfile.IQFile`) or :meth:`for_stream`
    (blocks handed to :meth:`nmea_lines`). ``start_time`` is the unix time of the first sample.
    """

    def __init__(self, receiver, start_time: float, formatter: NmeaFormatter, iqfile: IQFile | None = None):
        self.receiver = receiver
        self.start_time = start_time
        self.formatter = formatter
        self.iqfile = iqfile
        self.frames = 0
        self.sentences = 0
        self.samples = 0

    @classmethod
    def for_file(cls, path, *, fmt=None, rate=None, center=None, ppm=0.0, start_time=None, station=None,
                 tags=True, block_samples: int | None = None, **receiver_options):
        """receiver_options: passed to :class:`~demod.receiver.Receiver` (afc, n_phases, tracked, repair).
        Raises IQFormatError (with the path) for anything about the file or the settings that the
        receiver cannot use."""
        if start_time is not None:
            try:
                start_time = check_start_time(start_time)
            except SettingError as err:
                raise IQFormatError(f"{'standard input' if str(path) == STDIN else path}: {err}") from None
        iq = IQFile(path, fmt, rate, center, block_samples=block_samples)
        if iq.truncated_bytes:
            log.warning("%s ends in the middle of a sample: ignoring the last %d bytes", path, iq.truncated_bytes)
        try:
            if iq.is_discriminator:
                receiver = DiscriminatorReceiver(iq.rate, iq.channels)
            else:
                receiver = Receiver(iq.rate, iq.center_hz, ppm=ppm, **receiver_options)
        except ValueError as err:
            raise IQFormatError(f"{iq.name}: {err}") from None
        if start_time is None:
            # a recording was written as it was received; a stream is being received now
            start_time = time.time() if iq.is_stream else os.path.getmtime(path) - iq.duration
        return cls(receiver, start_time, NmeaFormatter(tags=tags, station=station), iq)

    @classmethod
    def for_stream(cls, *, rate, center=CENTER_HZ, ppm=0.0, station=None, tags=True):
        """Raises SettingError for a rate, centre or ppm the receiver cannot use."""
        return cls(Receiver(rate, center, ppm=ppm), time.time(), NmeaFormatter(tags=tags, station=station))

    def frames_from(self, blocks=None, stop: threading.Event | None = None):
        """Yield Frames from ``blocks`` (default: the file's blocks) until exhausted or ``stop`` is set."""
        if blocks is None:
            blocks = self.iqfile.blocks()
        for block in blocks:
            self.samples += len(block)
            for frame in self.receiver.process(block):
                self.frames += 1
                yield frame
            if stop is not None and stop.is_set():
                return
        for frame in self.receiver.flush():
            self.frames += 1
            yield frame

    def nmea_lines(self, blocks=None, stop: threading.Event | None = None):
        """The NMEA sentences of :meth:`frames_from`, in order."""
        for frame in self.frames_from(blocks, stop):
            for text in self.formatter.frame_sentences(frame, self.start_time):
                self.sentences += 1
                yield text

    def tagged_sentences(self, blocks=None, stop: threading.Event | None = None):
        """(bare sentence, its tag fields as data) for each sentence of :meth:`frames_from`: what an
        in-process consumer gets instead of tag-block text (``c`` time to the microsecond, ``s``
        station, ``L`` level and ``F`` carrier offset as numbers)."""
        formatter = self.formatter
        for frame in self.frames_from(blocks, stop):
            tags = formatter.frame_tags(frame, self.start_time)
            for text in formatter.frame_sentences(frame, self.start_time, tags=False):
                self.sentences += 1
                yield text, tags

    def stats(self) -> dict:
        out = {"samples": self.samples, "frames": self.frames, "sentences": self.sentences}
        if self.iqfile is not None:
            out["truncated_bytes"] = self.iqfile.truncated_bytes
        if isinstance(self.receiver, Receiver):
            out["freq_correction_hz"] = round(self.receiver.freq_correction_hz, 1)
        return out
