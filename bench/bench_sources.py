"""How fast can the receiver sources go, against the bare minimum done in the same run?

- file: ``FileSource`` (gzip detection, line splitting, UTF-8 check, counters, Line objects) on
  N lines, plain and gzip, against a bare ``for raw in open(path, 'rb')`` + decode loop (baseline).
- udp: a sender process blasts numbered sentences at rising rates for a few seconds each; the
  consumer parses every line with ``ingest.nmea.parse_line`` like the pipeline does. Reports the
  fraction delivered by ``UDPSource`` and by a bare socket ``recv`` loop doing the same parsing
  (baseline), per rate. Loopback, so the numbers are an upper bound for a real receiver.

Prints rates and ratios (source / baseline). Usage:
    python bench/bench_sources.py [--lines 200000] [--rates 5000,20000,50000] [--seconds 3]
"""
from __future__ import annotations

import argparse
import gzip
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# bench/ holds a script named ingest.py; keep it from shadowing the ingest package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from pyais import encode_dict

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import parse_line
from aiswatch.ingest.sources.file import FileSource
from aiswatch.ingest.sources.udp import UDPSource

SENTENCE = encode_dict({"type": 1, "mmsi": 211000001, "lat": 54.1, "lon": 10.2, "speed": 12.3, "course": 90},
                       talker_id="AI", sentence_type="VDM")[0]

SENDER = r"""
import socket, sys, time
port, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
line = (sys.argv[4] + "\r\n").encode()
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
total, start, sent = int(rate * seconds), time.monotonic(), 0
while sent < total:
    due = min(total, int((time.monotonic() - start) * rate) + 1)
    while sent < due:
        sock.sendto(line, ("127.0.0.1", port)); sent += 1
    time.sleep(0.001)
print(sent)
"""


def bench_file(n_lines: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "feed.nmea"
        plain.write_text("".join(f"{1700000000 + i} {SENTENCE}\n" for i in range(n_lines)))
        packed = Path(tmp) / "feed.nmea.gz"
        packed.write_bytes(gzip.compress(plain.read_bytes()))
        for path, opener in ((plain, open), (packed, gzip.open)):
            start = time.perf_counter()
            with opener(path, "rb") as f:
                baseline_lines = [Line(raw.rstrip(b"\r\n").decode(), 0.0, "x", i) for i, raw in enumerate(f, 1)]
            baseline = time.perf_counter() - start
            start = time.perf_counter()
            count = sum(1 for _ in FileSource(path).lines())
            source = time.perf_counter() - start
            assert count == len(baseline_lines) == n_lines
            print(f"file {path.suffix:6s} {n_lines} lines: baseline {n_lines / baseline:,.0f}/s, "
                  f"FileSource {n_lines / source:,.0f}/s, ratio {baseline / source:.2f}")


def _run_sender(port: int, rate: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SENDER, str(port), str(rate), str(seconds), SENTENCE],
                            stdout=subprocess.PIPE, text=True)


def _udp_source(rate: int, seconds: float) -> tuple[int, int]:
    counters = Counters()
    src = UDPSource("127.0.0.1", 0, counters)
    sender = _run_sender(src.port, rate, seconds)
    got = 0
    stopper = threading.Thread(target=lambda: (sender.wait(), time.sleep(1.0), src.close()), daemon=True)
    stopper.start()
    for line in src.lines():
        if parse_line(line, counters) is not None:
            got += 1
    return int(sender.stdout.read()), got


def _udp_bare(rate: int, seconds: float) -> tuple[int, int]:
    counters = Counters()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # default buffer: what a naive receiver gets
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    sender = _run_sender(sock.getsockname()[1], rate, seconds)
    got = 0
    while True:
        try:
            data = sock.recv(65535)
        except socket.timeout:
            if sender.poll() is not None:
                break
            continue
        for raw in data.splitlines():
            if parse_line(Line(raw.decode(), time.time(), "bare"), counters) is not None:
                got += 1
    sock.close()
    return int(sender.stdout.read()), got


def bench_udp(rates: list[int], seconds: float) -> None:
    for rate in rates:
        sent_b, got_b = _udp_bare(rate, seconds)
        sent_s, got_s = _udp_source(rate, seconds)
        print(f"udp {rate:>7,}/s for {seconds:.0f} s: bare socket delivered {got_b / sent_b:6.1%}, "
              f"UDPSource {got_s / sent_s:6.1%} (lost {sent_s - got_s}), ratio {got_s / sent_s / (got_b / sent_b):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--rates", default="5000,20000,50000")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    bench_file(args.lines)
    bench_udp([int(r) for r in args.rates.split(",")], args.seconds)


if __name__ == "__main__":
    main()
