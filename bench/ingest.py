"""Ingest benchmark: NMEA lines in -> documents acknowledged over HTTP, against bare pyais decoding.

    python bench/ingest.py                      # quick: 100k messages, engines 10k, RSS over 200k
    python bench/ingest.py --messages 1000000 --rss-messages 1000000

Measured in one run, on the same simulated traffic (``ingest.simulate``, cached under --cache):

1. bare pyais: ``pyais.decode(*fragments)`` for every message (the baseline);
2. our stages without the sink: the log file through ``Pipeline.run`` (read the file, parse,
   reassemble, decode, build the document) into a sink that only counts, for attribution;
3. end to end, what ``aiswatch ingest file LOG --es URL`` runs: ``ingest.runner.run_sources`` with
   a ``FileSource`` (templates installed, the sink ``build_sink`` makes from the default config,
   the metrics reporter, the refresh at the end), against ``bench/bulk_ack_server.py``, a local
   ``_bulk`` endpoint that acknowledges at once (its CPU is in another process): our own cost;
4. the same against the test engines (osmem-server, noida-db) with fewer messages, for scale;
5. peak RSS of a child process running (3) over --rss-messages into the ack server;
6. (2) and (3) again in a child process with ``AISWATCH_PURE_PYTHON=1``, every round: the stage
   modules as Python sources rather than compiled by mypyc (setup.py, ingest/native.py), to show
   what the compilation buys (``--no-python-rows`` skips it; where nothing is compiled the two
   forms are the same and it is skipped).

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

from aiswatch.ingest.counters import Counters  # noqa: E402

T0 = 1_763_164_800


def traffic_file(cache: Path, n_messages: int) -> Path:
    """A cached NMEA log of ``n_messages`` simulated messages (200 vessels, tag blocks with times)."""
    path = cache / f"sim-{n_messages}.nmea"
    if path.exists():
        return path
    from aiswatch.ingest.simulation import Simulator, random_fleet

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


def bench_stages(path: Path) -> tuple[Timer, int]:
    """Our stages up to the document, without the sink: the file through ``Pipeline.run``."""
    from aiswatch.ingest.pipeline import Pipeline
    from aiswatch.ingest.sources.file import FileSource

    sink = _NullSink()
    counters = Counters()
    pipeline = Pipeline(sink, counters)
    with Timer() as t:
        pipeline.run([FileSource(path, counters=counters)])
    return t, sink.n


def ingest_file(url: str, path: Path, workdir: Path, namespace: str = "bench-", parallel: bool = True) -> Counters:
    """``aiswatch ingest file PATH --es URL --namespace NAMESPACE`` in this process: the same
    ``run_sources`` call with the default config (spool, dead letters and status file in ``workdir``);
    ``parallel``: reading and decoding in a second process, as the command does by default
    (False: ``--no-parallel``, everything in this one)."""
    from aiswatch.config import load_config
    from aiswatch.runner import IngestOptions, run_sources
    from aiswatch.ingest.sources.file import FileSource

    cfg = load_config(environ={})
    cfg["metrics"]["status_file"] = str(workdir / f"status-{namespace}json")
    spool = Path(tempfile.mkdtemp(dir=workdir, prefix="spool-"))
    opts = IngestOptions(es_url=url, namespace=namespace, spool_dir=str(spool),
                         dead_letter=str(spool / "dead.ndjson"), replay=True, decode_process=parallel)
    return run_sources(cfg, lambda counters: [FileSource([path], counters=counters)], opts)


def bench_pipeline(url: str, path: Path, workdir: Path, namespace: str = "bench-", parallel: bool = True):
    """The log file -> ``url`` as ``aiswatch ingest file`` does it; until everything is acknowledged.
    CPU time is this process's plus, with ``parallel``, the decode process's (its children's time)."""
    children = os.times()
    with Timer() as t:
        counters = ingest_file(url, path, workdir, namespace, parallel)
    after = os.times()
    t.cpu += (after.children_user + after.children_system) - (children.children_user + children.children_system)
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


def peak_rss_kb() -> int:
    """This process's peak RSS in kB: ``VmHWM``, the high-water mark of its own memory map.
    Not ``ru_maxrss``: Linux keeps that across fork and exec, so a child started by a parent
    holding the 1M-message log in memory would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(path: str, url: str, workdir: str) -> None:
    """Child process: ``aiswatch ingest file`` of the log into ``url``; print peak RSS and counts."""
    import logging
    logging.basicConfig(level=logging.WARNING)

    start = time.perf_counter()
    counters = ingest_file(url, Path(path), Path(workdir), "rss-")
    elapsed = time.perf_counter() - start
    # this process's high-water mark, plus the decode process's (a waited-for child; its pages
    # shared with this one count in both, so the sum is an upper bound)
    own_kb, child_kb = peak_rss_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"RSS {own_kb + child_kb} {int(counters.get('documents_indexed'))} {elapsed:.3f} "
          f"{int(counters.get('spooled_total'))} {own_kb} {child_kb}", flush=True)


def python_child(path: str, url: str, workdir: str) -> None:
    """Child process (AISWATCH_PURE_PYTHON=1): the stages and the two-process end-to-end run once;
    print their wall and CPU times and counts."""
    import logging
    logging.basicConfig(level=logging.WARNING)
    from aiswatch.ingest import native

    assert native.mode().startswith("python"), native.mode()
    t_stages, n_stages = bench_stages(Path(path))
    t_two, counters = bench_pipeline(url, Path(path), Path(workdir), namespace="py-")
    print(f"PY {t_stages.wall} {t_stages.cpu} {n_stages} {t_two.wall} {t_two.cpu} "
          f"{int(counters.get('documents_indexed'))}", flush=True)


def run_python_child(path: Path, url: str, work: Path) -> tuple[tuple[Timer, int], tuple[Timer, int]]:
    out = subprocess.run([sys.executable, __file__, "--python-child", str(path), url, str(work)],
                         env=dict(os.environ, AISWATCH_PURE_PYTHON="1"), capture_output=True, text=True,
                         check=True).stdout
    _, s_wall, s_cpu, s_n, t_wall, t_cpu, t_n = out.split()
    timers = []
    for wall, cpu in ((s_wall, s_cpu), (t_wall, t_cpu)):
        t = Timer()
        t.wall, t.cpu = float(wall), float(cpu)
        timers.append(t)
    return (timers[0], int(s_n)), (timers[1], int(t_n))


def median_timer(timers: list[Timer]) -> Timer:
    """The run with the median wall time (its CPU time with it)."""
    return sorted(timers, key=lambda t: t.wall)[len(timers) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description="aiswatch ingest benchmark")
    p.add_argument("--messages", type=int, default=100_000, help="messages for the pyais / ack-server runs")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of (pyais, stages, end to end in two processes, in one); medians are printed")
    p.add_argument("--engine-messages", type=int, default=10_000, help="messages for the test-engine runs (0: skip)")
    p.add_argument("--rss-messages", type=int, default=200_000, help="messages for the peak-RSS replay (0: skip)")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "aiswatch-bench"))
    p.add_argument("--profile", action="store_true", help="cProfile the one-process run of the first round, print the top 25")
    p.add_argument("--no-python-rows", action="store_true",
                   help="skip the rows with the stage modules as Python sources (AISWATCH_PURE_PYTHON=1)")
    p.add_argument("--rss-child", nargs=3, metavar=("FILE", "URL", "WORKDIR"), help=argparse.SUPPRESS)
    p.add_argument("--python-child", nargs=3, metavar=("FILE", "URL", "WORKDIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return
    if args.python_child:
        python_child(*args.python_child)
        return

    cache = Path(args.cache)
    path = traffic_file(cache, args.messages)   # exactly --messages messages
    lines, groups = load_groups(path)
    n = len(groups)
    from aiswatch.ingest import native

    python_rows = not args.no_python_rows and native.mode() == "compiled"
    print(f"# aiswatch ingest benchmark: {n} messages ({len(lines)} lines), {args.rounds} rounds, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"stage modules: {native.mode()}", flush=True)
    rows = []

    def row(name, count, t, notes=""):
        rate, cpu_us = count / t.wall, t.cpu / max(count, 1) * 1e6
        rows.append((name, count, rate, cpu_us, f"{rate / base:.2f}", f"{base_cpu / cpu_us:.2f}", notes))
        print(f"{name}: {rate:,.0f} msg/s ({rate / base:.2f} of pyais), {cpu_us:.1f} us CPU/msg", flush=True)

    work = Path(tempfile.mkdtemp(prefix="aiswatch-bench-"))
    server, url = start_ack_server()
    rss_row = None
    runs: dict[str, list] = {"pyais": [], "stages": [], "two": [], "one": [], "py_stages": [], "py_two": []}
    try:
        # the machine is shared: every round measures everything once, so a busy spell slows
        # each kind of run alike; the medians over the rounds are compared
        for r in range(args.rounds):
            runs["pyais"].append(bench_pyais(groups))
            runs["stages"].append(bench_stages(path))
            runs["two"].append(bench_pipeline(url, path, work, parallel=True))
            if args.profile and r == 0:
                import cProfile
                import pstats
                prof = cProfile.Profile()
                prof.enable()
            runs["one"].append(bench_pipeline(url, path, work, parallel=False))
            if args.profile and r == 0:
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            if python_rows:
                stages_py, two_py = run_python_child(path, url, work)
                runs["py_stages"].append(stages_py)
                runs["py_two"].append(two_py)
            ratios = [runs["pyais"][-1].wall / t.wall * (c if isinstance(c, int) else c.get("documents_indexed")) / n
                      for t, c in (runs["stages"][-1], runs["two"][-1], runs["one"][-1])]
            extra = ""
            if python_rows:
                py = [runs["pyais"][-1].wall / t.wall * c / n for t, c in (runs["py_stages"][-1], runs["py_two"][-1])]
                extra = f"; Python sources: stages {py[0]:.2f}, end to end {py[1]:.2f}"
            print(f"round {r + 1}: of pyais: stages {ratios[0]:.2f}, end to end {ratios[1]:.2f} "
                  f"(two processes), {ratios[2]:.2f} (one){extra}", flush=True)
        t_pyais = median_timer(runs["pyais"])
        base, base_cpu = n / t_pyais.wall, t_pyais.cpu / n * 1e6
        row("bare pyais.decode (baseline)", n, t_pyais, "decode only, no documents")
        t_stages = median_timer([t for t, _ in runs["stages"]])
        row("aiswatch stages, no sink", runs["stages"][0][1], t_stages,
            "file, parse, reassemble, decode, build document (one process)")
        for key, name, how in (("two", "aiswatch end to end, instant _bulk", "two processes (the default)"),
                               ("one", "aiswatch end to end, instant _bulk, --no-parallel", "one process")):
            t = median_timer([t for t, _ in runs[key]])
            counters = next(c for tt, c in runs[key] if tt is t)
            indexed = int(counters.get("documents_indexed"))
            row(name, indexed, t, f"{how}; {int(counters.get('bulk_requests'))} bulk requests, "
                                  f"{int(counters.get('spooled_total'))} spooled")
            if indexed != n:
                print(f"WARNING: {indexed} documents acknowledged for {n} messages", flush=True)
        if python_rows:
            t = median_timer([t for t, _ in runs["py_stages"]])
            row("aiswatch stages, no sink, Python sources", runs["py_stages"][0][1], t,
                "as above, AISWATCH_PURE_PYTHON=1 (not compiled)")
            t = median_timer([t for t, _ in runs["py_two"]])
            indexed = next(c for tt, c in runs["py_two"] if tt is t)
            row("aiswatch end to end, instant _bulk, Python sources", indexed, t,
                "two processes, AISWATCH_PURE_PYTHON=1 (not compiled)")

        if args.rss_messages:
            rss_path = traffic_file(cache, args.rss_messages)
            out = subprocess.run([sys.executable, __file__, "--rss-child", str(rss_path), url, str(work)],
                                 capture_output=True, text=True, check=True).stdout
            _, kb, docs, secs, spooled, own_kb, child_kb = out.split()
            rss_row = (f"peak RSS over a {int(docs):,}-message replay", int(docs), int(docs) / float(secs), None,
                       "", "", f"**{int(kb) / 1024:.0f} MB** peak RSS of both processes (indexing "
                       f"{int(own_kb) / 1024:.0f} MB + decoding {int(child_kb) / 1024:.0f} MB; {spooled} spooled)")
            print(f"RSS: {int(kb) / 1024:.0f} MB over {docs} docs", flush=True)
    finally:
        stop(server)

    if args.engine_messages:
        sub = lines_for(lines, groups, args.engine_messages)
        n_sub = sum(1 for _ in sub_groups(sub))
        sub_path = work / f"sim-{n_sub}.nmea"
        sub_path.write_text("\n".join(sub) + "\n")
        from osmem_server import OsmemServer

        osmem = OsmemServer.start(japanese=False)
        try:
            t, c = bench_pipeline(osmem.url, sub_path, work)
            row("aiswatch end to end, osmem-server", int(c.get("documents_indexed")), t,
                f"test engine (in memory), {int(c.get('spooled_total'))} spooled")
        finally:
            osmem.close()
        from aiswatch.embedded import EmbeddedServer

        with EmbeddedServer(work / "noida") as noida:
            t, c = bench_pipeline(noida.url, sub_path, work)
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
