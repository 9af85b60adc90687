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

Streams: ``-`` is standard input, and a FIFO or character device (``/dev/stdin``) is read the same
way, front to back without seeking, so ``rtl_sdr -f 162e6 -s 288000 - | aiswatch demod - --format
cu8 --rate 288000`` decodes live, as rtl_ais-style tools do. A stream has no length
(``n_samples`` and ``duration`` are None) and a WAV on a stream may declare its data chunk as
endless (0 or 0xFFFFFFFF bytes, what sox and ffmpeg write to a pipe): it is read to the end.
"""
from __future__ import annotations

import os
import re
import stat
import struct
import sys
from dataclasses import dataclass

import numpy as np

from aiswatch.common.errors import ConfigError
from aiswatch.demod.settings import CENTER_HZ, SettingError, check_rate

STDIN = "-"
RAW_FORMATS = {
    # name: (numpy dtype of one component, offset, scale to +-1)
    "cu8": (np.dtype(np.uint8), 127.5, 1 / 127.5),
    "cs8": (np.dtype(np.int8), 0.0, 1 / 128.0),
    "cs16": (np.dtype("<i2"), 0.0, 1 / 32768.0),
    "cf32": (np.dtype("<f4"), 0.0, 1.0),
}
FORMATS = tuple(RAW_FORMATS) + ("wav", "disc")
# float32 value of each byte for the 8-bit formats (raw cu8/cs8 and 8-bit WAV), by (dtype char,
# offset, scale): (byte - offset) * scale, with the byte read as the format's own type
_BYTE_TABLES = {
    (np.dtype(dt).char, offset, scale):
        (np.arange(256, dtype=np.uint8).view(dt).astype(np.float32) - np.float32(offset)) * np.float32(scale)
    for dt, offset, scale in ((np.uint8, 127.5, 1 / 127.5), (np.int8, 0.0, 1 / 128.0), (np.uint8, 128.0, 1 / 128.0))}
EXTENSIONS = {".cu8": "cu8", ".bin": "cu8", ".raw": "cu8", ".cs8": "cs8", ".cs16": "cs16", ".cf32": "cf32",
              ".fc32": "cf32", ".cfile": "cf32", ".wav": "wav"}


class IQFormatError(ConfigError):
    """The file cannot be read as the given (or guessed) format; the message says why."""


def guess_format(path: str) -> str:
    if path == STDIN:
        raise IQFormatError(f"standard input has no file name to tell the sample format from; "
                            f"give --format ({', '.join(FORMATS)})")
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
    data_bytes: int | None  # None: to the end of the stream
    center_hz: float | None


def _skip(fh, n: int) -> None:
    """Move ``n`` bytes on: a seek on a file, a read on a pipe (which cannot seek)."""
    if n <= 0:
        return
    if fh.seekable():
        fh.seek(n, os.SEEK_CUR)
        return
    while n > 0:
        chunk = fh.read(min(n, 1 << 16))
        if not chunk:
            return
        n -= len(chunk)


def read_wav_header(fh, name: str, size: int | None = None) -> WavInfo:
    """Parse RIFF/WAVE chunks from the start of ``fh`` up to the data chunk: fmt, data, and SDR#'s
    auxi (centre frequency). Reads front to back, so it works on a pipe; ``size``: the file size
    when known (a data chunk is then cut to what the file holds). ``fh`` is left at the first sample."""
    head = fh.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise IQFormatError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt = None
    center = None
    pos = 12
    while True:
        chunk = fh.read(8)
        if len(chunk) < 8:
            raise IQFormatError(f"{name}: WAV file has no data chunk")
        cid, clen = struct.unpack("<4sI", chunk)
        pos += 8
        if cid == b"data":
            if fmt is None:
                raise IQFormatError(f"{name}: WAV data chunk before its fmt chunk")
            tag, channels, rate, bits = fmt
            kinds = {(1, 8): (np.uint8, 128.0, 1 / 128.0), (1, 16): ("<i2", 0.0, 1 / 32768.0),
                     (1, 32): ("<i4", 0.0, 1 / 2 ** 31), (3, 32): ("<f4", 0.0, 1.0)}
            if (tag, bits) not in kinds:
                raise IQFormatError(f"{name}: unsupported WAV sample format (tag {tag}, {bits} bits)")
            dt, off, sc = kinds[(tag, bits)]
            # 0 and 0xFFFFFFFF: a writer that did not know the length (a pipe, a recording cut short)
            length = clen if clen not in (0, 0xFFFFFFFF) else None
            if size is not None:
                length = size - pos if length is None else min(length, size - pos)
            if center is None and name != STDIN:
                m = re.search(r"_(\d{7,10})Hz", os.path.basename(name))
                center = float(m.group(1)) if m else None
            return WavInfo(channels, rate, np.dtype(dt), off, sc, pos, length, center)
        # the fmt and auxi fields sit in their first 40 bytes; the rest of any chunk is skipped
        raw = fh.read(min(clen, 40)) if cid in (b"fmt ", b"auxi") else b""
        if cid == b"fmt ":
            if len(raw) < 16:
                raise IQFormatError(f"{name}: WAV fmt chunk is too short")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", raw[:16])
            if tag == 0xFFFE and len(raw) >= 26:  # WAVE_FORMAT_EXTENSIBLE: real tag in the sub-format GUID
                tag = struct.unpack("<H", raw[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"auxi" and len(raw) >= 36:
            center = float(struct.unpack("<I", raw[32:36])[0]) or None
        padded = clen + (clen & 1)
        _skip(fh, padded - len(raw))
        pos += padded


def _is_regular(path: str) -> bool:
    """Whether ``path`` (or ``-``, standard input) is a regular file rather than a stream;
    IQFormatError when there is nothing readable there."""
    if path == STDIN:
        return False
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise IQFormatError(f"{path}: no such file") from None
    except OSError as err:
        raise IQFormatError(f"{path}: {err.strerror}") from None
    if stat.S_ISDIR(mode):
        raise IQFormatError(f"{path}: is a directory, not a recording")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        raise IQFormatError(f"{path}: not a regular file, FIFO or character device")
    return stat.S_ISREG(mode)


def _open_input(path: str):
    """(binary file object, display name) for a path or ``-`` (standard input)."""
    if path == STDIN:
        return sys.stdin.buffer, "standard input"
    try:
        return open(path, "rb"), path  # a FIFO's open waits for its writer, as reading a pipe should
    except OSError as err:
        raise IQFormatError(f"{path}: {err.strerror}") from None


class IQFile:
    """A recording (or a stream of samples) opened for reading in blocks.

    path: the file, a FIFO or character device, or ``-`` for standard input; fmt: one of FORMATS
    (None = guess from the extension); rate: samples/s (required for raw formats, read from the
    header for WAV; given both, they must agree); center_hz: tuned frequency (default 162.000 MHz,
    or from the WAV metadata); block_samples: samples per block (default: one second, at most
    2**22 samples; the receiver re-reads ~0.15 s of history per block, so blocks much shorter
    than a second waste CPU).
    """

    def __init__(self, path: str, fmt: str | None = None, rate: float | None = None,
                 center_hz: float | None = None, block_samples: int | None = None):
        self.path = str(path)
        regular = _is_regular(self.path)
        if fmt is None:
            fmt = guess_format(self.path)
        if fmt not in FORMATS:
            raise IQFormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.fmt = fmt
        fh, self.name = _open_input(self.path)
        try:
            self._setup(fh, rate, center_hz, os.fstat(fh.fileno()).st_size if regular else None)
        except BaseException:
            if fh is not sys.stdin.buffer:
                fh.close()
            raise
        # a regular file is reopened for each pass over it; a stream is read once, from here on
        self._regular = regular
        self._stream = None if regular else fh
        if regular:
            fh.close()
        # one second per block, but at most 2**22 samples (32 MB of complex64): at 20 MS/s a
        # one-second block would hold several copies of 160 MB in the channelizer
        self.block_samples = int(block_samples or max(4096, min(self.rate, 1 << 22)))

    def _setup(self, fh, rate, center_hz, size: int | None) -> None:
        self.channels = 2
        if rate is not None:
            try:
                rate = check_rate(rate, audio=self.fmt == "disc")
            except SettingError as err:
                raise IQFormatError(f"{self.name}: {err}") from None
        if self.fmt in RAW_FORMATS:
            if rate is None:
                raise IQFormatError(f"{self.name}: a raw {self.fmt} file has no header; "
                                    f"give the sample rate (--rate)")
            self.dtype, self.offset, self.scale = RAW_FORMATS[self.fmt]
            self.data_start = 0
            self.data_bytes = size
            self.rate = rate
            self.center_hz = center_hz
        else:
            info = read_wav_header(fh, self.name, size)
            if self.fmt == "wav" and info.channels != 2:
                raise IQFormatError(f"{self.name}: an I/Q WAV has 2 channels, this one has {info.channels} "
                                    f"(discriminator audio? use --format disc)")
            if self.fmt == "disc" and info.channels not in (1, 2):
                raise IQFormatError(f"{self.name}: discriminator audio has 1 or 2 channels, not {info.channels}")
            try:
                header_rate = check_rate(info.rate, audio=self.fmt == "disc")
            except SettingError as err:
                raise IQFormatError(f"{self.name}: WAV header: {err}") from None
            if rate is not None and abs(rate - header_rate) > 0.5:
                raise IQFormatError(f"{self.name}: --rate {rate:g} disagrees with the WAV header ({info.rate})")
            self.dtype, self.offset, self.scale = info.dtype, info.offset, info.scale
            self.data_start, self.data_bytes = info.data_start, info.data_bytes
            self.rate = header_rate
            self.center_hz = center_hz or info.center_hz
            self.channels = info.channels
        if self.center_hz is None:
            self.center_hz = CENTER_HZ
        frame = self.dtype.itemsize * self.channels
        if self.data_bytes is None:
            self.truncated_bytes = 0  # known once the stream has ended
            self.n_samples = None
        else:
            self.truncated_bytes = self.data_bytes % frame
            self.n_samples = self.data_bytes // frame

    @property
    def is_discriminator(self) -> bool:
        return self.fmt == "disc"

    @property
    def is_stream(self) -> bool:
        """A pipe, FIFO or device: no length, read once, front to back."""
        return not self._regular

    @property
    def duration(self) -> float | None:
        return None if self.n_samples is None else self.n_samples / self.rate

    def blocks(self):
        """Yield consecutive blocks: complex64 (IQ) or float32 (samples, channels) for ``disc``."""
        frame = self.dtype.itemsize * self.channels
        if not self._regular:
            if self._stream is None:
                return  # already read: a pipe cannot be rewound
            fh, self._stream = self._stream, None
        else:
            fh = open(self.path, "rb")
            fh.seek(self.data_start)
        try:
            remaining = self.data_bytes
            carry = b""  # a pipe may hand over part of a sample; it waits for the rest
            while remaining is None or remaining > 0:
                want = self.block_samples * frame - len(carry)
                raw = fh.read(want if remaining is None else min(want, remaining))
                if not raw:
                    break
                if remaining is not None:
                    remaining -= len(raw)
                raw = carry + raw
                got = len(raw) // frame
                carry = raw[got * frame:]
                if got:
                    yield self._convert(raw[:got * frame], got)
            self.truncated_bytes = len(carry)
        finally:
            if fh is not sys.stdin.buffer:
                fh.close()

    def _convert(self, raw: bytes, samples: int) -> np.ndarray:
        table = _BYTE_TABLES.get((self.dtype.char, self.offset, self.scale))
        if table is not None:  # 8-bit samples: one table look-up each
            values = table[np.frombuffer(raw, dtype=np.uint8)]
        else:
            values = np.frombuffer(raw, dtype=self.dtype).astype(np.float32)
            values = (values - np.float32(self.offset)) * np.float32(self.scale)
        if self.is_discriminator:
            return values.reshape(samples, self.channels)
        return values.view(np.complex64)
