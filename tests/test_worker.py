"""``aiswatch ingest file`` with its stages in a second process (ingest.worker), against one process.

The decode process must change nothing but the speed: the same documents under the same ids,
the same counters reason by reason, and on the way out the same guarantees: a SIGINT ends the
run within seconds with everything that was read delivered or spooled (the next run delivers the
spool), a decode process that dies is a failed source (exit 1) whose documents sent so far are
kept, and one whose parent dies does not outlive it.
"""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from aiswatch.ingest.simulation import Simulator, random_fleet

T0 = 1_763_164_800
COUNTED = ("lines_in", "sentences_in", "sentences_decoded", "messages_decoded", "documents_indexed", "rejected",
           "fragments_expired", "fragments_dropped", "decode_errors")


def aiswatch(args, tmp_path, **popen):
    # a small sink queue: the decode process stays ahead of the cluster by little, so a test can
    # still interrupt it while it reads
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"),
               AISWATCH_METRICS__STATUS_FILE=str(tmp_path / "status.json"),
               AISWATCH_SINK__QUEUE_SIZE="1000", AISWATCH_SINK__BATCH_SIZE="500")
    env.pop("ES_URL", None)
    return [sys.executable, "-c", "from aiswatch.cli import main; main()", *args], env


def traffic(n_seconds: int, vessels: int = 30, seed: int = 4) -> list[str]:
    sim = Simulator(random_fleet(vessels, seed=seed, start=T0), start=T0, seed=seed)
    return [line for _, group in sim.messages(n_seconds) for line in group]


def final_counters(tmp_path) -> dict:
    return json.loads((tmp_path / "status.json").read_text())["counters"]


def index_ids(es, pattern: str) -> dict[str, str]:
    """{id: document} of an index pattern, without the receive time (each run reads the lines anew)."""
    es.indices.refresh(index=pattern)
    out = {}
    for hit in es.search(index=pattern, size=10000, sort=["_doc"])["hits"]["hits"]:
        hit["_source"].pop("received_at", None)
        out[hit["_id"]] = json.dumps(hit["_source"], sort_keys=True)
    return out


def test_two_processes_give_what_one_gives(es_url, es, tmp_path):
    lines = traffic(900)
    # garbage of every kind between the messages, a fragment without its partner, and a gzip file
    noisy = lines[:40] + ["!AIVDM,1,1,,A,garbage,0*00", "not nmea", "\\s:x*00\\!AIVDM", "",
                          "!AIVDM,2,1,7,A,55NBsv02>tIc<H@00000000000000000000000000,0*2B"] + lines[40:]
    plain = tmp_path / "feed.nmea"
    plain.write_text("\n".join(noisy[:len(noisy) // 2]) + "\n")
    packed = tmp_path / "feed2.nmea.gz"
    packed.write_bytes(gzip.compress(("\n".join(noisy[len(noisy) // 2:]) + "\n").encode()))
    results = {}
    for mode, namespace in (("--parallel", "w2-"), ("--no-parallel", "w1-")):
        cmd, env = aiswatch(["ingest", "file", str(plain), str(packed), mode, "--es", es_url,
                             "--namespace", namespace, "--spool-dir", str(tmp_path / mode)], tmp_path)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        counters = final_counters(tmp_path)
        results[mode] = ({k: counters.get(k, 0) for k in COUNTED},
                         {k: v for k, v in counters.items() if k.startswith(("rejected.", "source."))},
                         index_ids(es, namespace + "ais-*"), index_ids(es, namespace + "ships-seen"))
    from helpers import delete_namespace
    delete_namespace(es, "w2-")
    delete_namespace(es, "w1-")
    two, one = results["--parallel"], results["--no-parallel"]
    assert two[0] == one[0] and two[0]["documents_indexed"] > 1000 and two[0]["rejected"] >= 4
    assert two[1] == one[1]
    assert two[2] == one[2]                # same ids, same documents
    assert two[3] == one[3]                # same ships-seen


def big_log(tmp_path, seconds=3600):
    path = tmp_path / "big.nmea"
    path.write_text("\n".join(traffic(seconds, vessels=60)) + "\n")
    return path


def wait_for_progress(tmp_path, proc, minimum: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("ingest ended before it could be interrupted:\n" + proc.stdout.read())
        try:
            if final_counters(tmp_path).get("documents_indexed", 0) >= minimum:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    pytest.fail("no progress")


def test_sigint_mid_replay_delivers_everything_that_was_read(es_url, es, names, tmp_path):
    path = big_log(tmp_path)
    spool = ["--spool-dir", str(tmp_path / "spool")]
    cmd, env = aiswatch(["ingest", "file", str(path), "--es", es_url, "--namespace", names.namespace, *spool],
                        tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        wait_for_progress(tmp_path, proc, 2000)
        os.killpg(proc.pid, signal.SIGINT)   # Ctrl-C: the whole process group, as a terminal sends it
        interrupted = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        took = time.monotonic() - interrupted
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in out
    assert took < 10, out
    counters = final_counters(tmp_path)
    total = sum(1 for line in path.read_text().splitlines() if line)
    assert counters["lines_in"] < total                      # it really stopped early
    decoded, indexed, spooled = (int(counters[k]) for k in ("messages_decoded", "documents_indexed", "spool_depth"))
    assert decoded > 0 and indexed + spooled == decoded and counters.get("documents_lost", 0) == 0
    # delivered, or spooled and said so (exit 1): the next run delivers the spool
    assert proc.returncode == (1 if spooled else 0), out
    if spooled:
        assert f"{spooled} documents are still in the spool" in out
        cmd, env = aiswatch(["ingest", "file", "/dev/null", "--es", es_url, "--namespace", names.namespace, *spool],
                            tmp_path)
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert final_counters(tmp_path)["replayed_total"] == spooled
    es.indices.refresh(index=names.messages_pattern)
    assert es.count(index=names.messages_pattern)["count"] == decoded


def test_a_decode_process_that_dies_is_a_failed_source_and_what_it_sent_is_kept(es_url, es, names, tmp_path):
    path = big_log(tmp_path)
    cmd, env = aiswatch(["ingest", "file", str(path), "--es", es_url, "--namespace", names.namespace,
                         "--spool-dir", str(tmp_path / "spool")], tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_progress(tmp_path, proc, 2000)
        children = psutil.Process(proc.pid).children()
        assert len(children) == 1               # the decode process (the cluster is not embedded)
        children[0].kill()
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    assert "decode process ended without finishing" in out and "source decode-process failed" in out
    assert "Traceback" not in out
    counters = final_counters(tmp_path)
    es.indices.refresh(index=names.messages_pattern)
    indexed = es.count(index=names.messages_pattern)["count"]
    assert indexed == counters["documents_indexed"] > 0 and counters.get("spool_depth", 0) == 0


def test_a_decode_process_whose_parent_is_killed_does_not_outlive_it(es_url, names, tmp_path):
    """``kill -9`` of ``ingest file`` at full speed: its decode process (blocked on the pipe, the
    parent reading no more) ends within seconds instead of waiting for ever."""
    path = big_log(tmp_path)
    cmd, env = aiswatch(["ingest", "file", str(path), "--es", es_url, "--namespace", names.namespace,
                         "--spool-dir", str(tmp_path / "spool")], tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_progress(tmp_path, proc, 500)
        children = psutil.Process(proc.pid).children()
        assert len(children) == 1
        child = children[0]
        proc.kill()
        proc.wait(10)
        gone, alive = psutil.wait_procs([child], timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    for orphan in alive:
        orphan.kill()
    assert not alive, "the decode process outlived its parent"


class _CountingSink:
    def __init__(self):
        self.n = 0

    def submit_serialized(self, *item):
        self.n += 1

    def flush(self):
        pass


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to bind the decode process to")
@pytest.mark.parametrize("pin_cpu", [True, False])
def test_the_decode_process_binds_itself_to_one_cpu(tmp_path, pin_cpu):
    from aiswatch.ingest.counters import Counters
    from aiswatch.ingest.sources.file import FileSource
    from aiswatch.ingest.worker import DecodeProcess

    path = tmp_path / "feed.nmea"
    path.write_text("\n".join(traffic(120)) + "\n")

    def make_sources(counters):
        time.sleep(1.0)  # a window in which the child runs, already bound
        return [FileSource([path], counters=counters)]

    mine = os.sched_getaffinity(0)
    decoder = DecodeProcess(make_sources, pin_cpu=pin_cpu)
    deadline = time.monotonic() + 0.8
    seen = os.sched_getaffinity(decoder.pid)
    while pin_cpu and len(seen) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
        seen = os.sched_getaffinity(decoder.pid)
    sink, counters = _CountingSink(), Counters()
    decoder.run(sink, counters)
    assert seen == ({max(mine)} if pin_cpu else mine)
    assert os.sched_getaffinity(0) == mine  # this process stays free
    assert sink.n == counters.get("messages_decoded") > 0
