"""TCPSource against a real local TCP feed that splits sentences anywhere, drops, refuses, comes back."""
import random
import socket
import threading
import time

import pytest

from aiswatch.config import ConfigError
from aiswatch.ingest.counters import Counters
from aiswatch.sources import make_source
from aiswatch.ingest.sources.backoff import Backoff
from aiswatch.common.hostport import parse_hostport
from aiswatch.ingest.sources.tcp import TCPSource

ENDINGS = [b"\r\n", b"\n", b"\r"]


def _listen(port: int = 0) -> socket.socket:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    return srv


def _send_in_pieces(conn: socket.socket, data: bytes, rng: random.Random) -> None:
    """Send in 1-17 byte writes with tiny pauses, so reads end mid-sentence and mid-CRLF."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    i = 0
    while i < len(data):
        n = rng.randint(1, 17)
        conn.sendall(data[i:i + n])
        i += n
        if rng.random() < 0.3:
            time.sleep(0.001)


class Feed:
    """A feed that serves session 1, drops it, refuses connections for a while, then serves session 2."""

    def __init__(self, sessions: list[bytes], refuse_seconds: float = 0.6) -> None:
        self.sessions = sessions
        self.refuse_seconds = refuse_seconds
        self.srv = _listen()
        self.port = self.srv.getsockname()[1]
        self.accepted = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rng = random.Random(7)
        try:
            for index, data in enumerate(self.sessions):
                self.srv.settimeout(10)
                conn, _ = self.srv.accept()
                self.accepted += 1
                _send_in_pieces(conn, data, rng)
                time.sleep(0.05)
                conn.close()                          # the feed drops the connection
                if index == 0:
                    self.srv.close()                  # and is down for a while: connections refused
                    time.sleep(self.refuse_seconds)
                    self.srv = _listen(self.port)
        except BaseException as exc:                  # reported by the test, not lost in a thread
            self.error = exc
        finally:
            self.srv.close()


def _sentences(prefix: str, n: int) -> list[str]:
    return [f"!AIVDM,1,1,,A,{prefix}{i:05d},0*00" for i in range(n)]


def test_split_reads_drop_refusal_and_reconnect_lose_no_line():
    rng = random.Random(3)
    first, second = _sentences("first", 300), _sentences("second", 200)
    # Every line end style; the last line of session 2 is sent without any line end.
    session1 = b"".join(s.encode() + rng.choice(ENDINGS) for s in first)
    session2 = b"".join(s.encode() + rng.choice(ENDINGS) for s in second[:-1]) + second[-1].encode()
    feed = Feed([session1, session2])
    counters = Counters()
    src = TCPSource("127.0.0.1", feed.port, counters, backoff_initial=0.05, backoff_max=0.2)
    timer = threading.Timer(20, src.close)
    timer.start()
    got = []
    try:
        for line in src.lines():
            got.append(line)
            if len(got) == len(first) + len(second):
                break
    finally:
        timer.cancel()
        src.close()
    feed.thread.join(5)
    assert feed.error is None, feed.error
    assert [l.text for l in got] == first + second
    assert all(l.source == f"tcp:127.0.0.1:{feed.port}" for l in got)
    assert feed.accepted == 2
    assert counters.get(f"source.{src.id}.connects") == 2
    # one reconnect after the drop, then at least one more while the feed refused connections
    assert counters.get(f"source.{src.id}.reconnects") >= 2
    assert counters.get(f"source.{src.id}.connect_failures") >= 1
    assert counters.get(f"source.{src.id}.lines") == 500


def test_close_ends_lines_while_connected_and_while_backing_off():
    srv = _listen()
    port = srv.getsockname()[1]
    src = TCPSource("127.0.0.1", port, backoff_initial=30, backoff_max=60)
    threading.Timer(0.3, src.close).start()
    start = time.monotonic()
    assert list(src.lines()) == []            # connected (never accepted/served), nothing sent
    assert time.monotonic() - start < 1.5
    srv.close()

    src = TCPSource("127.0.0.1", port, backoff_initial=30, backoff_max=60)   # refused: backing off 30-60 s
    threading.Timer(0.3, src.close).start()
    start = time.monotonic()
    assert list(src.lines()) == []
    assert time.monotonic() - start < 1.5


def test_backoff_doubles_with_upward_jitter_within_1_to_60_s_and_resets():
    backoff = Backoff(1.0, 60.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    ranges = [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32), (32, 60), (60, 60), (60, 60), (60, 60), (60, 60)]
    assert all(low <= d <= high for d, (low, high) in zip(delays, ranges)), delays
    assert len({round(d, 6) for d in delays[:6]}) == 6          # jittered below the cap
    # the jitter is upward: never below the nominal delay, so "1 -> 60 s" holds from the first wait
    draws = Backoff(1.0, 60.0, rng=random.Random(2))
    firsts = []
    for _ in range(2000):
        firsts.append(draws.next_delay())
        draws.reset()
    assert 1.0 <= min(firsts) < 1.05 and 1.95 < max(firsts) <= 2.0
    backoff.reset()
    assert 1.0 <= backoff.next_delay() <= 2.0


def test_host_port_parsing_and_port_range_are_clear_errors():
    assert parse_hostport("feed.example:10110") == ("feed.example", 10110)
    assert parse_hostport(" 127.0.0.1:1 ") == ("127.0.0.1", 1)
    assert parse_hostport("[::1]:65535") == ("::1", 65535)
    for address, message in [
        ("host:99999", "port 99999 in 'host:99999' is out of range: a port is 1-65535"),
        ("host:0", "port 0 in 'host:0' is out of range"),
        ("host:65536", "port 65536 .* out of range"),
        ("host:-1", "port '-1' in 'host:-1' is not a number"),
        ("host:+80", "is not a number"),
        ("host:8x", "is not a number"),
        ("host:", "is not a number"),
        ("host", "expected HOST:PORT"),
        (":10110", "no host before the port"),
        ("::1:10110", r"an IPv6 address goes in brackets, \[::1\]:10110"),
        ("[::1]10110", "expected \\[IPv6 address\\]:PORT"),
        ("[::1:10110", "expected \\[IPv6 address\\]:PORT"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_hostport(address)
    # the source itself refuses such a port instead of retrying it for ever
    for port in (99999, 0, -5):
        with pytest.raises(ValueError, match="out of range|not a number"):
            TCPSource("127.0.0.1", port)
    with pytest.raises(ConfigError, match="port 99999 .* out of range"):
        make_source({"type": "tcp", "address": "feed.example:99999"}, Counters())
    with pytest.raises(ValueError, match="port 0 .* out of range"):
        make_source({"type": "tcp", "address": "feed.example:0"}, Counters())
    with pytest.raises(ValueError, match="out of range"):
        make_source({"type": "tcp", "host": "feed.example", "port": 70000}, Counters())
    with pytest.raises(ValueError, match="port 'ten' in 'feed.example:ten' is not a number"):
        make_source({"type": "tcp", "host": "feed.example", "port": "ten"}, Counters())
    assert make_source({"type": "tcp", "host": "feed.example", "port": "10110"}, Counters()).port == 10110


def test_the_command_line_refuses_a_bad_address_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"))
    for address in ("localhost:99999", "localhost", "localhost:port", ":10110"):
        proc = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "ingest", "tcp", address,
                               "--es", "http://127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "ADDRESS" in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "ingest", "udp",
                           "--port", "70000"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--port" in proc.stderr, proc.stderr
