"""How much do parse + reassemble + decode + build add on top of pyais's own decode?

Takes N lines of simulated traffic (``ingest.simulate``: a fleet of class A/B vessels reporting at
ITU-R M.1371 rates, type 5 in two fragments, type 24, one tag block per line), or with
``--traffic mixed`` a harsher synthetic mix (three interleaved stations, 30 % static and base
station messages), then times

- baseline: ``pyais.decode`` of the same lines (fragments of a message passed together),
- chain: ``nmea.parse_line`` -> ``FragmentAssembler.push`` -> ``decoder.decode`` ->
  ``documents.build_document`` for every line,
- each stage alone (cumulative), to see where the time goes.

Baseline and chain runs alternate on chunks of 5k lines and the best of ``--repeat`` runs of
each chunk counts, so a busy machine slows both alike. Prints lines/s and the ratio chain/baseline (target >= 0.5). Usage:
    python bench/bench_decode_chain.py [--lines 100000] [--repeat 3] [--traffic sim|mixed]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

# bench/ holds a script named ingest.py; keep it from shadowing the ingest package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pyais
from pyais.encode import encode_dict

from aiswatch.ingest.assembler import FragmentAssembler
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.decoder import decode
from aiswatch.ingest.documents import build_document
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import nmea_checksum, parse_line


def simulated(n_lines: int, seed: int = 1) -> list[list[str]]:
    """Messages from the traffic simulator, as lists of lines, about ``n_lines`` lines in all."""
    from aiswatch.ingest.simulation import Simulator, random_fleet

    start = 1_790_000_000
    fleet = random_fleet(500, seed=seed, start=start)
    messages: list[list[str]] = []
    count = 0
    for _, lines in Simulator(fleet, start=start, seed=seed).messages(10 * 86400):
        messages.append(lines)
        count += len(lines)
        if count >= n_lines:
            break
    return messages


def traffic(n_lines: int, seed: int = 7) -> list[list[str]]:
    """Messages as lists of lines (tag block + sentence), about ``n_lines`` lines in all."""
    rng = random.Random(seed)
    ships = [rng.randint(200_000_000, 775_999_999) for _ in range(500)]
    messages: list[list[str]] = []
    count = 0
    t = 1_700_000_000
    seq = 0
    while count < n_lines:
        t += 1 if rng.random() < 0.2 else 0
        mmsi = rng.choice(ships)
        kind = rng.random()
        if kind < 0.70:
            data = {"type": rng.choice((1, 1, 1, 3)), "mmsi": mmsi, "status": rng.randint(0, 8),
                    "turn": rng.randint(-20, 20), "speed": rng.uniform(0, 25), "accuracy": 1,
                    "lat": rng.uniform(50, 56), "lon": rng.uniform(-2, 8),
                    "course": rng.uniform(0, 359.9), "heading": rng.randint(0, 359), "second": t % 60}
        elif kind < 0.85:
            data = {"type": 18, "mmsi": mmsi, "speed": rng.uniform(0, 10), "lat": rng.uniform(50, 56),
                    "lon": rng.uniform(-2, 8), "course": rng.uniform(0, 359), "heading": 511}
        elif kind < 0.93:
            data = {"type": 5, "mmsi": mmsi, "imo": rng.randint(1_000_000, 9_999_999), "callsign": "PD1234",
                    "shipname": "SIMULATED VESSEL", "ship_type": rng.choice((30, 52, 60, 70, 80)),
                    "to_bow": 100, "to_stern": 20, "to_port": 10, "to_starboard": 10, "month": 11,
                    "day": 23, "hour": 12, "minute": 30, "draught": 7.5, "destination": "ROTTERDAM"}
        elif kind < 0.97:
            data = {"type": 24, "mmsi": mmsi, "partno": rng.randint(0, 1), "shipname": "SMALL BOAT",
                    "ship_type": 37, "callsign": "AB123", "to_bow": 5, "to_stern": 5, "to_port": 2,
                    "to_starboard": 2}
        else:
            data = {"type": 4, "mmsi": 2_573_485, "year": 2023, "month": 11, "day": 14, "hour": 22,
                    "minute": 13, "second": 20, "lat": 59.9, "lon": 10.7}
        seq = (seq + 1) % 10
        sentences = encode_dict(data, radio_channel=rng.choice("AB"), talker_id="AI", seq_id=seq)
        body = f"s:station{rng.randint(1, 3)},c:{t}"
        tag = f"\\{body}*{nmea_checksum(body):02X}\\"
        messages.append([tag + s for s in sentences])
        count += len(sentences)
    return messages


def time_baseline(messages: list[list[str]]) -> float:
    start = time.perf_counter()
    for parts in messages:
        pyais.decode(*parts)
    return time.perf_counter() - start


def time_chain(lines: list[Line], stages: int) -> tuple[float, Counters]:
    """Run the first ``stages`` stages (1 parse, 2 +assemble, 3 +decode, 4 +build) over ``lines``."""
    counters = Counters()
    assembler = FragmentAssembler(counters)
    push = assembler.push
    start = time.perf_counter()
    for line in lines:
        sentence = parse_line(line, counters)
        if sentence is None or stages < 2:
            continue
        group = push(sentence)
        if group is None or stages < 3:
            continue
        fields = decode(group, counters)
        if fields is None or stages < 4:
            continue
        build_document(group, fields)
    return time.perf_counter() - start, counters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--traffic", choices=("sim", "mixed"), default="sim")
    args = parser.parse_args()

    messages = simulated(args.lines) if args.traffic == "sim" else traffic(args.lines)
    now = time.time()
    lines = [Line(text, now, "bench", i) for i, text in enumerate(t for parts in messages for t in parts)]
    n = len(lines)
    print(f"{n} lines, {len(messages)} messages ({args.traffic})")

    # Alternate baseline and chain on chunks of ~5k lines and keep the best time of each chunk:
    # on a shared machine the load changes within seconds, and this way both see the same.
    chunks: list[tuple[list[list[str]], list[Line]]] = []
    start = 0
    for i in range(0, len(messages), 5000):
        chunk = messages[i:i + 5000]
        size = sum(len(m) for m in chunk)
        chunks.append((chunk, lines[start:start + size]))
        start += size
    stage_names = ((1, "parse"), (2, "+ assemble"), (3, "+ decode"), (4, "+ build (chain)"))
    best_base = [float("inf")] * len(chunks)
    best = {stages: [float("inf")] * len(chunks) for stages, _ in stage_names}
    totals = Counters()
    for _ in range(args.repeat):
        for c, (chunk_messages, chunk_lines) in enumerate(chunks):
            best_base[c] = min(best_base[c], time_baseline(chunk_messages))
            for stages, _ in stage_names:
                seconds, counters = time_chain(chunk_lines, stages)
                best[stages][c] = min(best[stages][c], seconds)
    for chunk_messages, chunk_lines in chunks:      # the whole chain once more, for the counters
        counters = time_chain(chunk_lines, 4)[1]
        for name, value in counters.snapshot().items():
            if name != "fragments_pending":
                totals.incr(name, int(value))
    base = sum(best_base)
    print(f"{'baseline pyais.decode':28s} {n / base:10.0f} lines/s")
    for stages, label in stage_names:
        seconds = sum(best[stages])
        print(f"{label:28s} {n / seconds:10.0f} lines/s   ratio vs baseline {base / seconds:5.2f}")
    counters = totals
    snapshot = counters.snapshot()
    assert snapshot["sentences_in"] == n and snapshot.get("rejected", 0) == 0, snapshot
    print("counters:", {k: v for k, v in snapshot.items() if k != "fragments_pending"})


if __name__ == "__main__":
    main()
