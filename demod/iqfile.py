"""Readers for the recordings people have, streamed in blocks (never loaded whole).

Formats (``fmt``):
- ``cu8``  interleaved unsigned 8-bit I/Q, offset 127.5 (what ``rtl_sdr`` writes)
- ``cs8``  interleaved signed 8-bit I/Q (HackRF ``hackrf_transfer``)
- ``cs16`` interleaved signed 16-bit little-endian I/Q
- ``cf32`` interleaved 32-bit float I/Q (GNU Radio, SDR++ raw)
- ``wav``  stereo WAV with I left and Q right (SDR#, HDSDR, SDR++); 8/16/32-bit PCM or float;
           sample rate from the header, centre frequency from an SDR# ``auxi`` chunk or a
           ``..._162000000Hz_...`` file name
- ``disc`` FM-discriminator audio WAV (48 kHz 16-bit from a VHF radio's discriminator tap), mono or
           stereo (two radios: left = channel A, right = channel B)

Complex formats yield complex64 blocks scaled to about +-1; ``disc`` yields float32 arrays of shape
(samples, channels). A file that ends in the middle of a sample is read up to the last whole sample
and ``truncated_bytes`` says how much was left over; a file that is not what it claims raises
:class:`IQFormatError` with the reason.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass

import numpy as np

from demod.settings import SettingError, check_rate

RAW_FORMATS = {
    # name: (numpy dtype of one component, offset, scale to +-1)
    "cu8": (np.dtype(np.uint8), 127.5, 1 / 127.5),
    "cs8": (np.dtype(np.int8), 0.0, 1 / 128.0),
    "cs16": (np.dtype("<i2"), 0.0, 1 / 32768.0),
    "cf32": (np.dtype("<f4"), 0.0, 1.0),
}
FORMATS = tuple(RAW_FORMATS) + ("wav", "disc")
EXTENSIONS = {".cu8": "cu8", ".bin": "cu8", ".raw": "cu8", ".cs8": "cs8", ".cs16": "cs16", ".cf32": "cf32",
              ".fc32": "cf32", ".cfile": "cf32", ".wav": "wav"}


class IQFormatError(ValueError):
    """The file cannot be read as the given (or guessed) format; the message says why."""


def guess_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise IQFormatError(f"{path}: cannot tell the sample format from the extension {ext!r}; "
                            f"give --format ({', '.join(FORMATS)})")
    return EXTENSIONS[ext]


@dataclass
class WavInfo:
    channels: int
    rate: int
    dtype: np.dtype
    offset: float
    scale: float
    data_start: int
    data_bytes: int
    center_hz: float | None


def read_wav_header(path: str) -> WavInfo:
    """Parse RIFF/WAVE chunks: fmt, data, and SDR#'s auxi (centre frequency)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            raise IQFormatError(f"{path}: not a WAV file (no RIFF/WAVE header)")
        fmt = None
        center = None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            cid, clen = struct.unpack("<4sI", fh.read(8))
            if cid == b"fmt ":
                raw = fh.read(min(clen, 40))
                if len(raw) < 16:
                    raise IQFormatError(f"{path}: WAV fmt chunk is too short")
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", raw[:16])
                if tag == 0xFFFE and len(raw) >= 26:  # WAVE_FORMAT_EXTENSIBLE: real tag in the sub-format GUID
                    tag = struct.unpack("<H", raw[24:26])[0]
                fmt = (tag, channels, rate, bits)
            elif cid == b"auxi":
                raw = fh.read(min(clen, 40))
                if len(raw) >= 36:
                    center = float(struct.unpack("<I", raw[32:36])[0]) or None
            elif cid == b"data":
                if fmt is None:
                    raise IQFormatError(f"{path}: WAV data chunk before its fmt chunk")
                tag, channels, rate, bits = fmt
                kinds = {(1, 8): (np.uint8, 128.0, 1 / 128.0), (1, 16): ("<i2", 0.0, 1 / 32768.0),
                         (1, 32): ("<i4", 0.0, 1 / 2 ** 31), (3, 32): ("<f4", 0.0, 1.0)}
                if (tag, bits) not in kinds:
                    raise IQFormatError(f"{path}: unsupported WAV sample format (tag {tag}, {bits} bits)")
                dt, off, sc = kinds[(tag, bits)]
                start = pos + 8
                available = size - start
                length = clen if clen not in (0, 0xFFFFFFFF) else available
                if center is None:
                    m = re.search(r"_(\d{7,10})Hz", os.path.basename(path))
                    center = float(m.group(1)) if m else None
                return WavInfo(channels, rate, np.dtype(dt), off, sc, start, min(length, available), center)
            pos += 8 + clen + (clen & 1)
        raise IQFormatError(f"{path}: WAV file has no data chunk")


class IQFile:
    """A recording opened for streaming.

    path: the file; fmt: one of FORMATS (None = guess from the extension); rate: samples/s (required
    for raw formats, read from the header for WAV; given both, they must agree); center_hz: tuned
    frequency (default 162.000 MHz, or from the WAV metadata); block_samples: samples per block
    (default: one second; the receiver re-reads ~0.15 s of history per block, so blocks much
    shorter than a second waste CPU).
    """

    def __init__(self, path: str, fmt: str | None = None, rate: float | None = None,
                 center_hz: float | None = None, block_samples: int | None = None):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise IQFormatError(f"{self.path}: no such file")
        self.fmt = fmt or guess_format(self.path)
        if self.fmt not in FORMATS:
            raise IQFormatError(f"unknown format {self.fmt!r}; use one of {', '.join(FORMATS)}")
        self.truncated_bytes = 0
        self.channels = 2
        if rate is not None:
            try:
                rate = check_rate(rate, audio=self.fmt == "disc")
            except SettingError as err:
                raise IQFormatError(f"{self.path}: {err}") from None
        if self.fmt in RAW_FORMATS:
            if rate is None:
                raise IQFormatError(f"{self.path}: a raw {self.fmt} file has no header; give the sample rate (--rate)")
            self.dtype, self.offset, self.scale = RAW_FORMATS[self.fmt]
            self.data_start = 0
            self.data_bytes = os.path.getsize(self.path)
            self.rate = float(rate)
            self.center_hz = center_hz
        else:
            info = read_wav_header(self.path)
            if self.fmt == "wav" and info.channels != 2:
                raise IQFormatError(f"{self.path}: an I/Q WAV has 2 channels, this one has {info.channels} "
                                    f"(discriminator audio? use --format disc)")
            if self.fmt == "disc" and info.channels not in (1, 2):
                raise IQFormatError(f"{self.path}: discriminator audio has 1 or 2 channels, not {info.channels}")
            try:
                header_rate = check_rate(info.rate, audio=self.fmt == "disc")
            except SettingError as err:
                raise IQFormatError(f"{self.path}: WAV header: {err}") from None
            if rate is not None and abs(rate - header_rate) > 0.5:
                raise IQFormatError(f"{self.path}: --rate {rate:g} disagrees with the WAV header ({info.rate})")
            self.dtype, self.offset, self.scale = info.dtype, info.offset, info.scale
            self.data_start, self.data_bytes = info.data_start, info.data_bytes
            self.rate = header_rate
            self.center_hz = center_hz or info.center_hz
            self.channels = info.channels
        if self.center_hz is None:
            self.center_hz = 162_000_000.0
        self.block_samples = int(block_samples or max(4096, self.rate))
        frame = self.dtype.itemsize * self.channels
        self.truncated_bytes = self.data_bytes % frame
        self.n_samples = self.data_bytes // frame

    @property
    def is_discriminator(self) -> bool:
        return self.fmt == "disc"

    @property
    def duration(self) -> float:
        return self.n_samples / self.rate

    def blocks(self):
        """Yield consecutive blocks: complex64 (IQ) or float32 (samples, channels) for ``disc``."""
        frame = self.dtype.itemsize * self.channels
        with open(self.path, "rb") as fh:
            fh.seek(self.data_start)
            remaining = self.n_samples
            while remaining > 0:
                n = min(self.block_samples, remaining)
                raw = fh.read(n * frame)
                got = len(raw) // frame
                if got == 0:
                    break
                remaining -= got
                values = np.frombuffer(raw[:got * frame], dtype=self.dtype).astype(np.float32)
                values = (values - np.float32(self.offset)) * np.float32(self.scale)
                if self.is_discriminator:
                    yield values.reshape(got, self.channels)
                else:
                    yield values.view(np.complex64)
