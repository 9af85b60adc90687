"""UDPSource over real loopback sockets: a 5,000 msg/s burst load with zero loss, framing, close()."""
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.nmea import parse_line
from aiswatch.ingest.sources.udp import UDPSource
from helpers import UDP_SENDER as SENDER, collect

NUMBER = re.compile(r"n:(\d+)\*")


def test_5000_per_second_bursts_for_10_seconds_lose_nothing():
    total = 50_000
    counters = Counters()
    src = UDPSource("127.0.0.1", 0, counters)
    assert src.port > 0 and src.rcvbuf > 0
    sender = subprocess.Popen([sys.executable, "-c", SENDER, str(src.port), str(total), "5000", "0.1"],
                              stdout=subprocess.PIPE, text=True)
    # Never hang the suite: close the source if the load has not arrived well after it was sent.
    watchdog = threading.Timer(40, src.close)
    watchdog.start()
    seen = bytearray(total)
    parsed = 0
    try:
        for line in src.lines():
            # What the pipeline does with each line, so the consumer is as slow as the real one.
            sentence = parse_line(line, counters)
            assert sentence is not None, line.text
            parsed += 1
            seen[int(NUMBER.search(line.text).group(1))] = 1
            if parsed == total:
                break
    finally:
        watchdog.cancel()
        src.close()
        out, _ = sender.communicate(timeout=30)
    missing = [i for i in range(total) if not seen[i]]
    print(out.strip(), f"; kernel granted SO_RCVBUF={src.rcvbuf}")
    assert sender.returncode == 0
    # The load really was 5,000/s: the sender paces bursts to the clock and cannot finish before
    # 10 s; if it fell behind (a loaded machine), the test would pass at a lower rate than it claims.
    sent, elapsed = re.fullmatch(r"sent (\d+) in ([\d.]+) s", out.strip()).groups()
    assert int(sent) == total
    assert 9.9 <= float(elapsed) <= 10.5, f"sender took {elapsed} s: {total / float(elapsed):.0f} msg/s, not 5,000"
    assert not missing, f"{len(missing)} lost, first {missing[:10]}"
    assert parsed == total
    assert counters.get(f"source.{src.id}.lines") == total
    assert counters.get(f"source.{src.id}.dropped") == 0
    assert counters.get("rejected") == 0


def _send(port: int, payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(payload, ("127.0.0.1", port))


def test_several_sentences_per_datagram_any_line_end_and_bad_bytes_counted():
    counters = Counters()
    src = UDPSource("127.0.0.1", 0, counters)
    try:
        _send(src.port, b"!AIVDM,one*00\r\n!AIVDM,two*00\r\n")
        _send(src.port, b"!AIVDM,three*00\n\n!AIVDM,four*00")       # LF, blank line, no final end
        _send(src.port, b"!AIVDM,\xff\xfebad*00\r\n!AIVDM,five*00\r")  # not UTF-8, then a bare CR
        before = time.time()
        lines = collect(src, 5, timeout=5.0)
    finally:
        src.close()
    assert [l.text for l in lines] == ["!AIVDM,one*00", "!AIVDM,two*00", "!AIVDM,three*00", "!AIVDM,four*00",
                                       "!AIVDM,five*00"]
    assert all(l.source == src.id == f"udp:127.0.0.1:{src.port}" and l.offset is None for l in lines)
    assert all(before - 5 <= l.received_at <= time.time() for l in lines)
    assert counters.get("rejected.not_utf8") == 1
    assert counters.get(f"source.{src.id}.datagrams") == 3
    assert counters.get(f"source.{src.id}.lines") == 5


def test_lines_ends_soon_after_close_from_another_thread():
    src = UDPSource("127.0.0.1", 0)
    threading.Timer(0.3, src.close).start()
    start = time.monotonic()
    assert list(src.lines()) == []
    assert time.monotonic() - start < 1.5


def test_port_in_use_is_a_clear_error():
    first = UDPSource("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="cannot listen for UDP on 127.0.0.1"):
            UDPSource("127.0.0.1", first.port)
    finally:
        first.close()


def test_a_port_out_of_range_is_a_clear_error():
    for port in (99999, -1, 65536):
        with pytest.raises(ValueError, match=f"UDP port {port} is out of range: 0-65535"):
            UDPSource("127.0.0.1", port)
    from aiswatch.config import ConfigError
    from aiswatch.sources import make_source
    with pytest.raises(ConfigError, match="port 70000 is out of range"):
        make_source({"type": "udp", "port": 70000}, Counters())
    with pytest.raises(ConfigError, match="port 'ten' is not a number"):
        make_source({"type": "udp", "port": "ten"}, Counters())


def _drain(src: UDPSource, counters: Counters, expected_max: int) -> list:
    """Every line src delivers until nothing more comes for half a second, then close it."""
    got = []
    done = threading.Event()

    def consume():
        for line in src.lines():
            got.append(line)
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    last, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = counters.get(f"source.{src.id}.datagrams")
        if now == last or now >= expected_max:
            break
        last = now
    src.close()
    done.wait(5)
    return got


def test_an_overflowing_socket_reports_the_kernels_drops_exactly():
    """5,000 datagrams sent at once into a receive buffer of a few kilobytes, nobody reading yet:
    the kernel keeps what fits and drops the rest. Every datagram is either received or counted
    as the kernel's drop (the socket's own count, /proc/net/udp), exactly."""
    total = 5000
    counters = Counters()
    src = UDPSource("127.0.0.1", 0, counters, rcvbuf=4096)
    if src.kernel_drops() is None:
        pytest.skip("no /proc/net/udp here")
    for i in range(total):
        _send(src.port, f"!AIVDM,1,1,,A,{i},0*00\r\n".encode())
    lines = _drain(src, counters, total)
    received = counters.get(f"source.{src.id}.datagrams")
    kernel = counters.get(f"source.{src.id}.kernel_drops")
    assert len(lines) == received and kernel > 0
    assert received + kernel == total
    from aiswatch.ingest.metrics import losses
    assert losses(counters.snapshot())["kernel_drops"] == kernel


def test_datagrams_our_queue_cannot_hold_are_counted_with_their_lines():
    """The receiver's own queue (2 datagrams here) full while nobody consumes: the datagrams it
    drops are counted, and their lines too, so lines_in == lines passed on + rejected."""
    counters = Counters()
    src = UDPSource("127.0.0.1", 0, counters, queue_datagrams=2)
    lines_per = [1 + i % 3 for i in range(300)]
    datagrams = ["".join(f"!AIVDM,1,1,,A,{i}-{k},0*00\r\n" for k in range(n)).encode() for i, n in enumerate(lines_per)]
    paused = threading.Event()
    got = []

    def consume():
        for line in src.lines():
            if not paused.is_set():
                paused.wait(10)       # the consumer stalls after its first line: the queue fills
            got.append(line)

    paused.clear()
    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.3)
    for d in datagrams:
        _send(src.port, d)
        time.sleep(0.0005)   # slower than the receiver, so the kernel drops nothing here
    time.sleep(0.5)
    paused.set()
    time.sleep(0.5)
    src.close()
    dropped = counters.get(f"source.{src.id}.dropped")
    kernel = counters.get(f"source.{src.id}.kernel_drops")
    assert dropped > 0 and kernel == 0
    assert counters.get(f"source.{src.id}.datagrams") == len(datagrams)
    rejected = counters.get("rejected.udp_queue_full") + counters.get("rejected.udp_unread_at_close")
    assert rejected + len(got) == sum(lines_per)
    # lines_in counts the dropped lines (reject_line) as well as those passed on (the parser counts those)
    assert counters.get("lines_in") == rejected


def test_datagrams_still_queued_at_close_are_counted():
    """Closed while its queue holds datagrams nobody read: they are dropped, and counted."""
    counters = Counters()
    src = UDPSource("127.0.0.1", 0, counters)
    stalled = threading.Event()

    def consume():
        for _ in src.lines():
            stalled.wait(10)      # the consumer takes one line, then stalls

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.3)
    for i in range(50):
        _send(src.port, f"!AIVDM,1,1,,A,{i},0*00\r\n!AIVDM,1,1,,A,{i}b,0*00\r\n".encode())
    deadline = time.monotonic() + 5
    while counters.get(f"source.{src.id}.datagrams") < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    src.close()
    stalled.set()
    unread = counters.get(f"source.{src.id}.dropped")
    assert 45 <= unread <= 49   # all but the one (or few) the consumer took
    assert counters.get("rejected.udp_unread_at_close") == 2 * unread
