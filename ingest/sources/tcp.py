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

from pydantic import Field, field_validator, model_validator

from aiswatch.common.hostport import check_port, parse_hostport
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.sources import SourceSettings, SourceType
from aiswatch.ingest.sources.backoff import Backoff
from aiswatch.ingest.sources.framing import LineDecoder, StreamSplitter

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2       # how soon lines() notices close() while waiting for data
CONNECT_TIMEOUT = 10.0


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


class TCPSettings(SourceSettings):
    address: str = Field(description="The feed's HOST:PORT ([IPv6]:PORT too); or host and port as two keys.",
                         json_schema_extra={"cli": "argument"})
    backoff_initial: float = Field(1.0, gt=0, description="First wait before reconnecting, seconds.",
                                   json_schema_extra={"cli": None})
    backoff_max: float = Field(60.0, gt=0, description="Longest wait between reconnections, seconds.",
                               json_schema_extra={"cli": None})

    @model_validator(mode="before")
    @classmethod
    def _host_and_port(cls, data):
        if isinstance(data, dict) and "address" not in data and ("host" in data or "port" in data):
            rest = {k: v for k, v in data.items() if k not in ("host", "port")}
            host, port = str(data.get("host", "")), data.get("port", "")
            return {**rest, "address": f"[{host}]:{port}" if ":" in host else f"{host}:{port}"}
        return data

    @field_validator("address")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_hostport(value)
        return value


def _tcp(settings: TCPSettings, counters: Counters) -> TCPSource:
    host, port = parse_hostport(settings.address)
    return TCPSource(host, port, counters, backoff_initial=settings.backoff_initial, backoff_max=settings.backoff_max)


SOURCE = SourceType("tcp", TCPSettings, _tcp)
