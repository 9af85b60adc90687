"""How fast does the simulator generate traffic, compared with encoding the same messages with pyais?

Runs a random fleet for enough simulated time to produce ``--messages`` messages and times

- baseline: ``pyais.encode_dict`` of every position report the simulator produced (same
  fields, same channel) plus the same tag block, i.e. what a straightforward generator costs
  for encoding alone, without any track computation;
- simulator: ``Simulator.messages`` end to end (tracks, heap, ITU intervals, encoding, tag blocks);
- simulator to a file (``write_file``).

Prints messages/s of each and the ratio simulator/baseline (> 1 means the whole simulator is
faster than pyais's encoder alone). Usage:
    python -m bench.bench_simulate [--messages 200000] [--vessels 500]   (from the repo root)
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from pyais.encode import encode_dict

from aiswatch.ingest.simulation import Simulator, random_fleet, tag_block, write_file

T0 = 1_790_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--vessels", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    fleet = random_fleet(args.vessels, seed=args.seed, start=T0)
    # simulated span that yields about the wanted number of messages (measured on a short run)
    probe = sum(1 for _ in Simulator(fleet, start=T0, seed=args.seed).messages(300))
    duration = 300 * args.messages / max(probe, 1)

    t = time.perf_counter()
    events = list(Simulator(fleet, start=T0, seed=args.seed).events(duration))
    sim_s = time.perf_counter() - t
    n = len(events)

    positions = [ev for ev in events if ev.state is not None]
    t = time.perf_counter()
    for ev in positions:
        s = ev.state
        data = {"type": ev.msg_type, "mmsi": ev.mmsi, "status": s.nav_status, "speed": s.sog or 0.0, "accuracy": 1,
                "lon": s.lon, "lat": s.lat, "course": s.cog or 0.0, "heading": s.heading or 0,
                "second": int(ev.time) % 60}
        tag_block("sim", int(ev.time)) + encode_dict(data, sentence_type="VDM")[0]
    base_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "traffic.nmea")
        t = time.perf_counter()
        stats = write_file(path, Simulator(fleet, start=T0, seed=args.seed).messages(duration))
        file_s = time.perf_counter() - t
        size = os.path.getsize(path)

    sim_rate, base_rate, file_rate = n / sim_s, len(positions) / base_s, stats.messages / file_s
    print(f"fleet {args.vessels} vessels, {duration / 3600:.2f} h simulated, {n} messages "
          f"({len(positions)} positions), {stats.lines} lines, {size / 1e6:.1f} MB")
    print(f"baseline pyais.encode_dict (positions only): {base_rate:10,.0f} msg/s")
    print(f"simulator.events:                            {sim_rate:10,.0f} msg/s   ratio {sim_rate / base_rate:.2f}")
    print(f"simulator -> write_file:                     {file_rate:10,.0f} msg/s   ratio {file_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
