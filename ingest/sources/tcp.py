"""TCP client: connects to an NMEA feed (AIS-catcher/rtl_ais TCP servers, kplex, a public feed).

A read can end in the middle of a sentence, or between the CR and LF of one line end; lines are
reassembled across reads (``StreamSplitter``). When the feed refuses or drops the connection we
reconnect with exponential back-off and jitter (``backoff_initial`` .. ``backoff_max`` seconds),
counting ``source.<id>.reconnects``. The back-off starts over once a connection has delivered
data, so a feed that accepts and immediately closes is not hammered.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Iterator

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.sources.backoff import Backoff
from aiswatch.ingest.sources.framing import LineDecoder, StreamSplitter

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2       # how soon lines() notices close() while waiting for data
CONNECT_TIMEOUT = 10.0


def check_port(port: int | str, where: str | None = None) -> int:
    """``port`` as an int if it is one a TCP client can connect to (1-65535), else ValueError.

    Checked before connecting: a port out of range would otherwise fail on every attempt and be
    retried with back-off for ever, looking like a feed that is down."""
    text = str(port).strip()
    context = f" in {where!r}" if where is not None else ""
    if isinstance(port, bool) or not (isinstance(port, int) or (text.isascii() and text.isdigit())):
        raise ValueError(f"port {port!r}{context} is not a number")
    number = int(text)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number}{context} is out of range: a TCP port is 1-65535")
    return number


def parse_hostport(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` or ``"[IPv6]:PORT"`` -> ``(host, port)``, or ValueError saying what is wrong
    (for the command line: ``aiswatch ingest tcp HOST:PORT``)."""
    text = str(address).strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise ValueError(f"{address!r}: expected [IPv6 address]:PORT")
        host, port = text[1:end], text[end + 2:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"{address!r}: expected HOST:PORT")
        if ":" in host:
            raise ValueError(f"{address!r}: an IPv6 address goes in brackets, [{host}]:{port}")
    if not host:
        raise ValueError(f"{address!r}: no host before the port")
    return host, check_port(port, address)


class TCPSource:
    """Yields the lines of an NMEA-over-TCP feed, reconnecting for as long as it is not closed."""

    def __init__(self, host: str, port: int, counters: Counters | None = None,
                 backoff_initial: float = 1.0, backoff_max: float = 60.0) -> None:
        self.host = host
        self.port = check_port(port, f"{host}:{port}")
        self.counters = counters if counters is not None else Counters()
        self.id = f"tcp:{host}:{self.port}"
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._closed = threading.Event()
        self._sock: socket.socket | None = None
        self._decoder = LineDecoder(self.counters, self.id)

    def _count(self, name: str, n: int = 1) -> None:
        self.counters.incr(f"source.{self.id}.{name}", n)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            log.warning("%s: cannot connect: %s", self.id, exc)
            self._count("connect_failures")
            return None
        sock.settimeout(POLL_SECONDS)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._count("connects")
        log.info("%s: connected", self.id)
        return sock

    def _read(self, sock: socket.socket) -> Iterator[Line]:
        """The lines of one connection, until the peer closes it, it fails, or close() is called."""
        splitter = StreamSplitter(self.counters, self.id)
        got_data = False
        while not self._closed.is_set():
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as exc:
                if not self._closed.is_set():
                    log.warning("%s: connection failed: %s", self.id, exc)
                break
            if not chunk:
                log.warning("%s: feed closed the connection", self.id)
                break
            if not got_data:
                got_data = True
                self._backoff.reset()
            received_at = time.time()
            self._count("bytes", len(chunk))
            yield from self._to_lines(splitter.feed(chunk), received_at)
        # A last line sent without its line end is still a line; if it was cut mid-sentence the
        # NMEA parser rejects it (checksum) and counts it, which is better than losing it here.
        yield from self._to_lines(splitter.flush(), time.time())

    def _to_lines(self, raws: list[bytes], received_at: float) -> Iterator[Line]:
        for raw in raws:
            text = self._decoder.decode(raw)
            if text is not None:
                self._count("lines")
                yield Line(text, received_at, self.id)

    def lines(self) -> Iterator[Line]:
        while not self._closed.is_set():
            sock = self._connect()
            if sock is not None:
                self._sock = sock
                try:
                    yield from self._read(sock)
                finally:
                    self._sock = None
                    sock.close()
            if self._closed.is_set():
                break
            delay = self._backoff.next_delay()
            self._count("reconnects")
            log.info("%s: reconnecting in %.1f s", self.id, delay)
            self._closed.wait(delay)

    def close(self) -> None:
        """Stop; ``lines()`` ends within about POLL_SECONDS (or at once if it is backing off)."""
        self._closed.set()

    def __repr__(self) -> str:
        return f"TCPSource({self.host!r}, {self.port})"
