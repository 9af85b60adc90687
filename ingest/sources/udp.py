"""UDP receiver: NMEA datagrams from rtl_ais, AIS-catcher or any forwarder (default 127.0.0.1:10110).

A datagram carries one or more CRLF-terminated sentences. UDP has no flow control, so anything
the kernel cannot buffer while we are busy is lost without a trace. Two defences:

* a large socket receive buffer (8 MB requested; Linux caps SO_RCVBUF at net.core.rmem_max
  unless the process may use SO_RCVBUFFORCE; the granted size is logged and kept in ``.rcvbuf``);
* a receiver thread that only moves datagrams from the socket into a bounded in-process queue,
  so a consumer pausing (a slow Elasticsearch bulk, a GC) does not stop the socket being drained.

What is lost anyway is counted. A datagram our queue cannot hold is counted in
``source.<id>.dropped`` and its lines in ``lines_in`` and ``rejected.udp_queue_full`` (we have it,
so its lines are known); so are those still queued when the source closes
(``rejected.udp_unread_at_close``). A datagram the kernel drops because the socket buffer is full never
reaches us: the kernel's own count for the socket (the ``drops`` column of ``/proc/net/udp``) is
read every second and at close into ``source.<id>.kernel_drops`` (datagrams; their lines are
unknown). Both are logged when they grow.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from typing import Iterator

from pydantic import Field, field_validator, model_validator

from aiswatch.common.hostport import check_port, parse_hostport
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.sources import SourceSettings, SourceType
from aiswatch.ingest.sources.framing import LineDecoder, split_datagram

log = logging.getLogger(__name__)

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; lets root exceed rmem_max
MAX_DATAGRAM = 65535
POLL_SECONDS = 0.2   # how soon lines() and the receiver thread notice close()
DROPS_SECONDS = 1.0  # how often the kernel's drop count is read
WARN_SECONDS = 30.0  # at most one warning this often about growing drops


class UDPSource:
    """Yields every line of every datagram received on ``host:port``.

    host, port: where to listen; port 0 picks a free port (see ``.port``).
    counters: where to count bytes, datagrams, lines and drops (a private one if None).
    rcvbuf: socket receive buffer to ask the kernel for, in bytes.
    queue_datagrams: datagrams held in memory between the socket and the consumer.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 10110, counters: Counters | None = None, *,
                 rcvbuf: int = 8 * 1024 * 1024, queue_datagrams: int = 200_000) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            # bind() would raise OverflowError, or TypeError, not a message for an operator
            raise ValueError(f"UDP port {port!r} is out of range: 0-65535 (0: any free port)")
        self.counters = counters if counters is not None else Counters()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self.rcvbuf = self._grow_receive_buffer(rcvbuf)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise OSError(exc.errno, f"cannot listen for UDP on {host}:{port}: {exc.strerror}") from None
        self._sock.settimeout(POLL_SECONDS)
        self._inode = os.fstat(self._sock.fileno()).st_ino
        self._drops_table = "/proc/net/udp6" if family == socket.AF_INET6 else "/proc/net/udp"
        self._kernel_drops = 0
        self._drops_warned_at = 0.0
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.id = f"udp:{host}:{self.port}"
        self._queue: queue.Queue[tuple[bytes, float]] = queue.Queue(maxsize=queue_datagrams)
        self._closed = threading.Event()
        self._receiver: threading.Thread | None = None
        self._decoder = LineDecoder(self.counters, self.id)
        self.counters.gauge(f"source.{self.id}.kernel_drops", 0)
        log.info("%s: listening, receive buffer %d bytes granted (%d asked)", self.id, self.rcvbuf, rcvbuf)

    def _grow_receive_buffer(self, wanted: int) -> int:
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, wanted)
        except OSError:
            # Not privileged: the kernel silently caps at net.core.rmem_max.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        granted = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if granted < wanted:
            # Linux reports twice the usable size; compare against what was asked anyway, the
            # operator needs to know the buffer is smaller than the one we designed for.
            log.warning("UDP receive buffer is %d bytes, less than the %d asked; raise net.core.rmem_max "
                        "(sysctl -w net.core.rmem_max=%d) to survive bursts", granted, wanted, wanted)
        return granted

    def kernel_drops(self) -> int | None:
        """The kernel's count of datagrams it dropped for this socket (receive buffer full), from
        ``/proc/net/udp``; None where that is not available."""
        try:
            with open(self._drops_table) as table:
                next(table)
                inode = str(self._inode)
                for row in table:
                    fields = row.split()
                    if len(fields) > 12 and fields[9] == inode:
                        return int(fields[12])
        except (OSError, ValueError, StopIteration):
            return None
        return None

    def _count_kernel_drops(self) -> None:
        drops = self.kernel_drops()
        if drops is None or drops <= self._kernel_drops:
            return
        self.counters.gauge(f"source.{self.id}.kernel_drops", drops)
        now = time.monotonic()
        if now - self._drops_warned_at >= WARN_SECONDS:
            self._drops_warned_at = now
            log.warning("%s: the kernel dropped %d datagrams so far (%d since the last count): the receive buffer "
                        "(%d bytes) overflowed; raise net.core.rmem_max, or give this host more CPU",
                        self.id, drops, drops - self._kernel_drops, self.rcvbuf)
        self._kernel_drops = drops

    def _receive(self) -> None:
        """Receiver thread: socket -> queue, as fast as the kernel delivers."""
        bytes_name, datagrams_name, dropped_name = (f"source.{self.id}.{n}" for n in ("bytes", "datagrams", "dropped"))
        buffer = bytearray(MAX_DATAGRAM)
        view = memoryview(buffer)
        warned = False
        next_drops = time.monotonic() + DROPS_SECONDS
        while not self._closed.is_set():
            if time.monotonic() >= next_drops:
                self._count_kernel_drops()
                next_drops = time.monotonic() + DROPS_SECONDS
            try:
                size = self._sock.recv_into(buffer)
            except socket.timeout:
                continue
            except OSError as exc:
                if not self._closed.is_set():
                    log.error("%s: receive failed: %s", self.id, exc)
                    self.counters.incr(f"source.{self.id}.errors")
                    time.sleep(POLL_SECONDS)
                continue
            self.counters.incr(bytes_name, size)
            self.counters.incr(datagrams_name)
            data = bytes(view[:size])
            try:
                self._queue.put_nowait((data, time.time()))
            except queue.Full:
                self.counters.incr(dropped_name)
                lines = len(split_datagram(data))
                if lines:
                    self.counters.reject_line("udp_queue_full", lines)
                if not warned:
                    log.warning("%s: consumer too slow, in-memory queue full: dropping datagrams (counted in %s, "
                                "their lines in rejected.udp_queue_full)", self.id, dropped_name)
                    warned = True

    def lines(self) -> Iterator[Line]:
        if self._receiver is None:
            self._receiver = threading.Thread(target=self._receive, name=f"{self.id} receiver", daemon=True)
            self._receiver.start()
        lines_name = f"source.{self.id}.lines"
        while not self._closed.is_set():
            try:
                data, received_at = self._queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            for raw in split_datagram(data):
                text = self._decoder.decode(raw)
                if text is not None:
                    self.counters.incr(lines_name)
                    yield Line(text, received_at, self.id)

    def close(self) -> None:
        """Stop receiving; ``lines()`` ends within about POLL_SECONDS. The kernel's drop count is
        read a last time first."""
        self._closed.set()
        if self._receiver is not None and self._receiver is not threading.current_thread():
            self._receiver.join(timeout=2 * POLL_SECONDS + 1)
        if self._sock.fileno() >= 0:
            self._count_kernel_drops()
        self._sock.close()
        self._count_unread()

    def _count_unread(self) -> None:
        """Datagrams received but not read when the source closes are dropped, and counted so."""
        datagrams = lines = 0
        while True:
            try:
                data, _ = self._queue.get_nowait()
            except queue.Empty:
                break
            datagrams += 1
            lines += len(split_datagram(data))
        if datagrams:
            self.counters.incr(f"source.{self.id}.dropped", datagrams)
            if lines:
                self.counters.reject_line("udp_unread_at_close", lines)
            log.warning("%s: %d datagrams (%d lines) received but not read when it closed: dropped, counted in "
                        "source.%s.dropped and rejected.udp_unread_at_close", self.id, datagrams, lines, self.id)

    def __repr__(self) -> str:
        return f"UDPSource({self.host!r}, {self.port})"


class UDPSettings(SourceSettings):
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0: every interface).")
    port: int = Field(10110, description="UDP port (rtl_ais and AIS-catcher send to 10110; 0: any free port).")
    address: str | None = Field(None, description="HOST:PORT in one key, instead of host and port.",
                                json_schema_extra={"cli": None})

    @model_validator(mode="before")
    @classmethod
    def _address(cls, data):
        if isinstance(data, dict) and data.get("address") is not None:
            host, port = parse_hostport(data["address"], 10110, allow_zero=True)
            data = {**data, "host": host, "port": port, "address": None}
        return data

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value):
        return check_port(value, allow_zero=True)


SOURCE = SourceType("udp", UDPSettings,
                    lambda s, counters: UDPSource(s.host, s.port, counters))
