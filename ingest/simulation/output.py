"""Where simulated NMEA goes: a file, a text stream (stdout) or UDP datagrams.

UDP output packs several CRLF-terminated lines per datagram, as rtl_ais and AIS-catcher do,
keeping each datagram under 1400 bytes (no IP fragmentation on a 1500-byte MTU) and never
splitting a message's lines across datagrams. Pacing: 'max' (as fast as possible), 'realtime'
(message times mapped to the wall clock from the first message) or a number of messages/s.
"""
from __future__ import annotations

import gzip
import socket
import time
from dataclasses import dataclass
from typing import IO, Iterable

Messages = Iterable[tuple[float, list[str]]]
MAX_DATAGRAM = 1400


@dataclass
class OutputStats:
    """What was written: message and line counts, first/last message time, datagrams (UDP)."""

    messages: int = 0
    lines: int = 0
    first_time: float | None = None
    last_time: float | None = None
    datagrams: int = 0

    def _count(self, t: float, n_lines: int) -> None:
        self.messages += 1
        self.lines += n_lines
        if self.first_time is None:
            self.first_time = t
        self.last_time = t

    @property
    def span_s(self) -> float:
        return 0.0 if self.first_time is None else self.last_time - self.first_time


def write_stream(stream: IO[str], messages: Messages) -> OutputStats:
    """Write every line, newline-terminated, to a text stream (e.g. sys.stdout)."""
    stats = OutputStats()
    buf: list[str] = []
    for t, lines in messages:
        stats._count(t, len(lines))
        buf.extend(lines)
        if len(buf) >= 4096:
            stream.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        stream.write("\n".join(buf) + "\n")
    stream.flush()
    return stats


def write_file(path: str, messages: Messages) -> OutputStats:
    """Write every line to ``path`` (overwritten), one per line, LF-terminated; gzip-compressed if it ends in .gz."""
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="ascii", newline="\n", compresslevel=6) as f:
            return write_stream(f, messages)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        return write_stream(f, messages)


def parse_rate(rate: str | float) -> str | float:
    """'max' | 'realtime' | a positive number of messages per second."""
    if isinstance(rate, str) and rate.lower() in ("max", "realtime"):
        return rate.lower()
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"rate must be 'max', 'realtime' or messages per second, not {rate!r}") from None
    if value <= 0:
        raise ValueError(f"rate must be > 0 messages/s, not {rate!r}")
    return value


def send_udp(host: str, port: int, messages: Messages, rate: str | float = "max",
             max_datagram: int = MAX_DATAGRAM) -> OutputStats:
    """Send the lines as UDP datagrams of several CRLF-terminated lines (< ``max_datagram`` bytes) to host:port.

    A datagram goes out when the next message would overflow it and before every pacing wait,
    so with 'realtime' each second's messages leave together at that second.
    """
    rate = parse_rate(rate)
    stats = OutputStats()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    pending: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if pending:
            sock.sendto(b"".join(pending), (host, port))
            stats.datagrams += 1
            pending.clear()
            size = 0

    t0_wall = time.monotonic()
    try:
        for k, (t, lines) in enumerate(messages):
            if rate != "max":
                if stats.first_time is None:
                    due = t0_wall
                elif rate == "realtime":
                    due = t0_wall + (t - stats.first_time)
                else:
                    due = t0_wall + k / rate
                delay = due - time.monotonic()
                if delay > 0:
                    flush()  # what is due now leaves before we wait
                    time.sleep(delay)
            data = [(line + "\r\n").encode("ascii") for line in lines]
            n = sum(len(d) for d in data)
            if n > max_datagram:
                raise ValueError(f"one message of {n} bytes does not fit a {max_datagram}-byte datagram")
            if size + n > max_datagram:
                flush()
            pending.extend(data)
            size += n
            stats._count(t, len(lines))
        flush()
    finally:
        sock.close()
    return stats
