"""Reading NMEA log files: plain or gzip (by the magic bytes, not the name), every good byte of a
damaged gzip, and lines too long to hold skipped without holding them.

``open_log`` gives a buffered reader; ``long_read`` yields what an over-long line is made of (its
pieces, then its length); ``READ_ERRORS`` is what a damaged file raises and ``damage`` says which.
"""
from __future__ import annotations

import io
import os
import re
import zlib
from typing import Iterator

GZIP_MAGIC = b"\x1f\x8b"
# What a damaged file raises: EOFError when a gzip file ends early, zlib.error for corrupt gzip
# data (header, deflate blocks, CRC or length), OSError for the disk itself.
READ_ERRORS = (OSError, EOFError, zlib.error)
_LINE_END = re.compile(rb"[\r\n]")


class GzipStream(io.RawIOBase):
    """The decompressed bytes of a gzip file, all its members, up to the exact point of any damage.

    ``gzip.GzipFile`` discards everything one ``decompress`` call produced when that call meets
    corrupt data: up to a buffer of good lines just before the damage. Here each call starts from
    a copy of the decompressor, and when it fails the same input is fed again one byte at a time
    from the copy, so every byte before the damage is delivered; the error is raised on the next
    read. zlib checks the gzip header and each member's CRC and length (``wbits=31``).
    Errors: zlib.error (corrupt data, bad CRC or length), EOFError (the file ends inside a member).
    """

    INPUT_BYTES = 16384

    def __init__(self, fp: io.BufferedIOBase) -> None:
        self._fp = fp
        self._z = zlib.decompressobj(wbits=31)
        self._input = b""           # compressed bytes read but not yet consumed
        self._in_member = False     # a member is started and not finished
        self._error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        while True:
            if self._error is not None:
                raise self._error
            if self._z.eof:
                # next member, if any; zero padding after the last one is allowed (as gzip does)
                self._z = zlib.decompressobj(wbits=31)
                self._in_member = False
            data = self._input or self._fp.read(self.INPUT_BYTES)
            if not self._in_member:
                data = data.lstrip(b"\0")
                while not data:
                    more = self._fp.read(self.INPUT_BYTES)
                    if not more:
                        return 0
                    data = more.lstrip(b"\0")
            elif not data:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            self._in_member = True
            before = self._z.copy()
            try:
                out = self._z.decompress(data, size)
            except zlib.error as exc:
                self._z = before
                out = self._salvage(data, size, exc)
            else:
                # past a member's end zlib keeps the rest in unused_data (and unconsumed_tail too)
                self._input = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
            if out:
                buffer[:len(out)] = out
                return len(out)

    def _salvage(self, data: bytes, size: int, exc: zlib.error) -> bytes:
        """What ``self._z`` (the copy from before the failed call) makes of ``data`` byte by byte,
        up to ``size`` bytes; the error is kept for the read after."""
        out = b""
        for i in range(len(data)):
            try:
                out += self._z.decompress(data[i:i + 1], size - len(out))
            except zlib.error:
                self._error = exc
                return out
            if self._z.eof:
                self._input = self._z.unused_data + data[i + 1:]
                return out
            if self._z.unconsumed_tail or len(out) >= size:
                self._input = self._z.unconsumed_tail + data[i + 1:]
                return out
        self._input = b""
        return out


def open_log(path: str | os.PathLike) -> tuple[io.BufferedIOBase, io.BufferedIOBase]:
    """``(reader of the log's lines, the raw file)``; the raw file's position is the progress.
    The magic bytes are peeked, not read and sought back: a pipe or a device cannot seek."""
    raw = open(path, "rb")
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(GzipStream(raw), buffer_size=65536), raw
    return raw, raw


def long_read(reader: io.BufferedIOBase, chunk: bytes, limit: int) -> Iterator[bytes | int]:
    """The rest of a read of ``limit + 1`` bytes without an LF (``chunk``), up to the next line
    boundary, without ever holding more than ``limit + 1`` bytes of one line.

    Yields ``bytes``: several bare-CR-ended lines of at most ``limit`` bytes each (some serial
    bridges end lines with CR alone; the caller splits them), or the LF-ended line that follows
    them; or an ``int``: a line longer than ``limit``, skipped up to its line end (CR or LF), as
    the number of bytes skipped.
    """
    readline = reader.readline
    while True:
        cut = chunk.rfind(b"\r")
        if cut == len(chunk) - 1:
            if reader.peek(1)[:1] == b"\n":
                chunk += reader.read(1)              # that CR was the first half of a CRLF
            yield chunk
            return
        if cut >= 0:
            # every line up to the last CR is complete and short; the rest waits for the next read
            yield chunk[:cut + 1]
            rest = chunk[cut + 1:]
        else:
            skipped = len(chunk)
            rest = b""
            while True:
                chunk = readline(limit + 1)
                if not chunk:
                    break
                end = _LINE_END.search(chunk)
                if end is None:
                    skipped += len(chunk)
                    continue
                start = end.end()
                if chunk[end.start()] == 13:         # a CR: it may be the first half of a CRLF
                    if start < len(chunk) and chunk[start] == 10:
                        start += 1
                    elif start == len(chunk) and reader.peek(1)[:1] == b"\n":
                        reader.read(1)
                        skipped += 1
                skipped += start
                rest = chunk[start:]                 # after a CR: the start of the next line
                break
            yield skipped
        if not rest:
            return
        if rest[-1] != 10:
            # never read more than completes limit + 1 bytes: enough to see a line is too long
            rest += readline(limit + 1 - len(rest))
        if rest[-1] == 10 or len(rest) <= limit:     # back to an LF-ended line (or the file's end)
            yield rest
            return
        chunk = rest


def damage(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "gzip data ends early (truncated file?)"
    if isinstance(exc, zlib.error):
        return "gzip data is corrupt"
    return "read failed"
