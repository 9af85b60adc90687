"""Ingest benchmark: NMEA lines in -> documents acknowledged over HTTP, against bare pyais decoding.

    python bench/ingest.py                      # quick: 100k messages, engines 10k, RSS over 200k
    python bench/ingest.py --messages 1000000 --rss-messages 1000000

Measured in one run, on the same simulated traffic (``ingest.simulate``, cached under --cache):

1. bare pyais: ``pyais.decode(*fragments)`` for every message (the baseline);
2. our stages without the sink (parse, reassemble, decode, build the document), for attribution;
3. the whole pipeline into ``ElasticsearchSink`` against ``bench/bulk_ack_server.py``, a local
   ``_bulk`` endpoint that acknowledges at once (its CPU is in another process): our own cost;
4. the same against the test engines (osmem-server, noida-db) with fewer messages, for scale;
5. peak RSS of a child process replaying --rss-messages from the file into the ack server.

Rates are messages per second of wall time; ratios are against (1) measured in the same run.
The machine is shared, so compare ratios, not absolute figures, between runs.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ingest.counters import Counters  # noqa: E402
from ingest.lines import Line  # noqa: E402

T0 = 1_763_164_800


def traffic_file(cache: Path, n_messages: int) -> Path:
    """A cached NMEA log of ``n_messages`` simulated messages (200 vessels, tag blocks with times)."""
    path = cache / f"sim-{n_messages}.nmea"
    if path.exists():
        return path
    from ingest.simulate import Simulator, random_fleet

    cache.mkdir(parents=True, exist_ok=True)
    sim = Simulator(random_fleet(200, seed=1, start=T0), start=T0, seed=1)
    tmp = path.with_suffix(".tmp")
    n = 0
    with open(tmp, "w") as f:
        for _, lines in sim.messages(3600 * 24 * 30):
            f.write("\n".join(lines) + "\n")
            n += 1
            if n >= n_messages:
                break
    os.replace(tmp, path)
    return path


def load_groups(path: Path) -> tuple[list[str], list[list[str]]]:
    """The lines, and the lines grouped per message (the fragments pyais.decode wants together)."""
    lines = path.read_text().splitlines()
    groups: list[list[str]] = []
    i = 0
    while i < len(lines):
        total = int(lines[i].split("!AIVDM,", 1)[1].split(",", 1)[0])
        groups.append(lines[i:i + total])
        i += total
    return lines, groups


class Timer:
    """Wall time and this process's CPU time (all threads) of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def bench_pyais(groups: list[list[str]]) -> Timer:
    import pyais

    decode = pyais.decode
    with Timer() as t:
        for g in groups:
            decode(*g)
    return t


class _NullSink:
    def __init__(self):
        self.n = 0

    def submit(self, doc):
        self.n += 1

    def flush(self):
        pass


def bench_stages(lines: list[str]) -> tuple[Timer, int]:
    """Our stages up to the document, without the sink."""
    from ingest.pipeline import Pipeline

    sink = _NullSink()
    pipeline = Pipeline(sink, Counters())
    now = time.time()
    with Timer() as t:
        for i, text in enumerate(lines):
            pipeline.feed(Line(text, now, "file:bench.nmea", i))
        pipeline.finish()
    return t, sink.n


def bench_pipeline(url: str, lines, workdir: Path, namespace: str = "bench-", setup: bool = False):
    """Lines -> Pipeline -> ElasticsearchSink -> ``url``; seconds until everything is acknowledged."""
    from es_templates import IndexNames
    from ingest.esclient import make_client
    from ingest.pipeline import Pipeline
    from ingest.sink import ElasticsearchSink

    client = make_client(url, request_timeout=120)
    names = IndexNames(namespace)
    if setup:
        from ingest.setup import install_templates
        install_templates(client, names, None)
    counters = Counters()
    spool = Path(tempfile.mkdtemp(dir=workdir, prefix="spool-"))
    now = time.time()
    with Timer() as t:
        sink = ElasticsearchSink(client, names, counters, spool_dir=spool, dead_letter_path=spool / "dead.ndjson")
        pipeline = Pipeline(sink, counters)
        for i, text in enumerate(lines):
            pipeline.feed(Line(text, now, "file:bench.nmea", i))
        pipeline.finish()
        sink.close(drain_seconds=600)
    client.close()
    return t, counters


def start_ack_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(HERE / "bulk_ack_server.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    ready = proc.stdout.readline().strip()
    if not ready.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"bulk_ack_server did not start: {ready!r}")
    return proc, ready.split(" ", 1)[1]


def stop(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.close()
        proc.wait(5)
    except Exception:
        proc.kill()
        proc.wait()


def rss_child(path: str, url: str, workdir: str) -> None:
    """Child process: stream the file through the pipeline into ``url``; print peak RSS and counts."""
    import logging
    logging.basicConfig(level=logging.WARNING)

    from es_templates import IndexNames
    from ingest.esclient import make_client
    from ingest.pipeline import Pipeline
    from ingest.sink import ElasticsearchSink

    client = make_client(url, request_timeout=120)
    counters = Counters()
    sink = ElasticsearchSink(client, IndexNames("rss-"), counters, spool_dir=Path(workdir) / "rss-spool",
                             dead_letter_path=Path(workdir) / "rss-dead.ndjson")
    pipeline = Pipeline(sink, counters)
    now = time.time()
    start = time.perf_counter()
    with open(path) as f:
        for i, text in enumerate(f):
            pipeline.feed(Line(text.rstrip("\n"), now, "file:rss.nmea", i))
    pipeline.finish()
    sink.close(drain_seconds=600)
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RSS {peak_kb} {int(counters.get('documents_indexed'))} {elapsed:.3f} "
          f"{int(counters.get('spooled_total'))}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description="aiswatch ingest benchmark")
    p.add_argument("--messages", type=int, default=100_000, help="messages for the pyais / ack-server runs")
    p.add_argument("--engine-messages", type=int, default=10_000, help="messages for the test-engine runs (0: skip)")
    p.add_argument("--rss-messages", type=int, default=200_000, help="messages for the peak-RSS replay (0: skip)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "aiswatch-bench"))
    p.add_argument("--profile", action="store_true", help="cProfile the ack-server run, print the top 25")
    p.add_argument("--rss-child", nargs=3, metavar=("FILE", "URL", "WORKDIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return

    cache = Path(args.cache)
    path = traffic_file(cache, args.messages)
    lines, groups = load_groups(path)
    del groups[args.messages:]
    lines = lines_for(lines, groups, len(groups))
    n = len(groups)
    print(f"# aiswatch ingest benchmark: {n} messages ({len(lines)} lines), load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    rows = []

    def row(name, count, t, notes=""):
        rate, cpu_us = count / t.wall, t.cpu / max(count, 1) * 1e6
        rows.append((name, count, rate, cpu_us, f"{rate / base:.2f}", f"{base_cpu / cpu_us:.2f}", notes))
        print(f"{name}: {rate:,.0f} msg/s, {cpu_us:.1f} us CPU/msg", flush=True)

    t_pyais = bench_pyais(groups)
    base, base_cpu = n / t_pyais.wall, t_pyais.cpu / n * 1e6
    row("bare pyais.decode (baseline)", n, t_pyais, "decode only, no documents")

    t_stages, built = bench_stages(lines)
    row("aiswatch stages, no sink", built, t_stages, "parse, reassemble, decode, build document")

    work = Path(tempfile.mkdtemp(prefix="aiswatch-bench-"))
    server, url = start_ack_server()
    rss_row = None
    try:
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.enable()
        t_ours, counters = bench_pipeline(url, lines, work)
        if args.profile:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        indexed = int(counters.get("documents_indexed"))
        row("aiswatch end to end, instant _bulk", indexed, t_ours,
            f"{int(counters.get('bulk_requests'))} bulk requests, {int(counters.get('spooled_total'))} spooled")
        if indexed != n:
            print(f"WARNING: {indexed} documents acknowledged for {n} messages", flush=True)

        if args.rss_messages:
            rss_path = traffic_file(cache, args.rss_messages)
            out = subprocess.run([sys.executable, __file__, "--rss-child", str(rss_path), url, str(work)],
                                 capture_output=True, text=True, check=True).stdout
            _, kb, docs, secs, spooled = out.split()
            rss_row = (f"peak RSS over a {int(docs):,}-message replay", int(docs), int(docs) / float(secs), None,
                       "", "", f"**{int(kb) / 1024:.0f} MB** peak RSS ({spooled} spooled)")
            print(f"RSS: {int(kb) / 1024:.0f} MB over {docs} docs", flush=True)
    finally:
        stop(server)

    if args.engine_messages:
        sub = lines_for(lines, groups, args.engine_messages)
        n_sub = sum(1 for _ in sub_groups(sub))
        from osmem_server import OsmemServer

        osmem = OsmemServer.start(japanese=False)
        try:
            t, c = bench_pipeline(osmem.url, sub, work, setup=True)
            row("aiswatch end to end, osmem-server", int(c.get("documents_indexed")), t,
                f"test engine (in memory), {int(c.get('spooled_total'))} spooled")
        finally:
            osmem.close()
        from ingest.embedded import EmbeddedServer

        with EmbeddedServer(work / "noida") as noida:
            t, c = bench_pipeline(noida.url, sub, work, setup=True)
            row("aiswatch end to end, noida-db", int(c.get("documents_indexed")), t,
                f"test engine (on disk), {int(c.get('spooled_total'))} spooled")
        if n_sub != args.engine_messages:
            print(f"note: {n_sub} messages in the engine runs", flush=True)
    if rss_row:
        rows.append(rss_row)

    print()
    print("| run | messages | msg/s (wall) | CPU µs/msg | ratio to pyais (wall) | ratio (CPU) | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, count, rate, cpu_us, ratio, cpu_ratio, notes in rows:
        cpu = f"{cpu_us:.1f}" if cpu_us is not None else ""
        print(f"| {name} | {count:,} | {rate:,.0f} | {cpu} | {ratio} | {cpu_ratio} | {notes} |")


def sub_groups(lines):
    i = 0
    while i < len(lines):
        total = int(lines[i].split("!AIVDM,", 1)[1].split(",", 1)[0])
        yield lines[i:i + total]
        i += total


def lines_for(lines, groups, n_messages):
    """The lines of the first ``n_messages`` messages."""
    return [line for g in groups[:n_messages] for line in g]


if __name__ == "__main__":
    main()
