"""Where simulated NMEA goes: a file, a text stream (stdout) or UDP datagrams.

UDP output packs several CRLF-terminated lines per datagram, as rtl_ais and AIS-catcher do,
keeping each datagram under 1400 bytes (no IP fragmentation on a 1500-byte MTU) and never
splitting a message's lines across datagrams. Pacing, for every writer: 'max' (as fast as
possible), 'realtime' (message times mapped to the wall clock from the first message) or a
number of messages/s.
"""
from __future__ import annotations

import gzip
import socket
import time
from dataclasses import dataclass
from typing import IO, Callable, Iterable, Iterator

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


def paced(messages: Messages, rate: str | float = "max",
          before_wait: Callable[[], None] | None = None) -> Iterator[tuple[float, list[str]]]:
    """Yield the messages no sooner than they are due, calling ``before_wait`` before each wait.

    rate 'max': no waiting. 'realtime': message times mapped onto the wall clock from the first
    message. A number: that many messages per second. ``before_wait`` lets a writer push out
    what it has buffered, so lines leave when due instead of when the buffer fills.
    """
    rate = parse_rate(rate)
    if rate == "max":
        yield from messages
        return
    t0_wall = time.monotonic()
    t0_msg = None
    for k, (t, lines) in enumerate(messages):
        if t0_msg is None:
            t0_msg = t
        due = t0_wall + ((t - t0_msg) if rate == "realtime" else k / rate)
        delay = due - time.monotonic()
        if delay > 0:
            if before_wait is not None:
                before_wait()
            time.sleep(delay)
        yield t, lines


def write_stream(stream: IO[str], messages: Messages, rate: str | float = "max") -> OutputStats:
    """Write every line, newline-terminated, to a text stream (e.g. sys.stdout), paced by ``rate``."""
    stats = OutputStats()
    buf: list[str] = []

    def flush() -> None:
        if buf:
            stream.write("\n".join(buf) + "\n")
            buf.clear()
        stream.flush()

    for t, lines in paced(messages, rate, before_wait=flush):
        stats._count(t, len(lines))
        buf.extend(lines)
        if len(buf) >= 4096:
            flush()
    flush()
    return stats


def write_file(path: str, messages: Messages, rate: str | float = "max") -> OutputStats:
    """Write every line to ``path`` (overwritten), one per line, LF-terminated; gzip-compressed if it ends in .gz.

    With a ``rate`` other than 'max' the file grows as the messages fall due (a live log to tail).
    """
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="ascii", newline="\n", compresslevel=6) as f:
            return write_stream(f, messages, rate)
    with open(path, "w", encoding="ascii", newline="\n") as f:
        return write_stream(f, messages, rate)


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

    try:
        for t, lines in paced(messages, rate, before_wait=flush):  # what is due leaves before each wait
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
