"""Outages, a full spool and SIGTERM: the delivery side under stress, with exact counts.

- Elasticsearch (noida-db, data on disk) stopped for 20 s in the middle of ``ingest file`` and
  restarted: the replay waits, says so, and ends with exit 0 and every message indexed once.
- A spool of 3 MB (a tmpfs where this process may mount one, and ``sink.spool_max_bytes``): with
  the cluster down it fills, the replay pauses; once the cluster is back everything is delivered,
  once.
- SIGTERM ends ``ingest file`` within 10 s in every state (cluster down and spooling, spool full,
  spool draining, a bulk request that does not come back), and every decoded message is indexed,
  spooled or counted lost: decoded == indexed + spooled + lost.
- A spool made for one cluster is refused by another in one line, and delivered where it belongs.
- The metrics index is never made before the templates: cluster down at start, no traffic, then up.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from aiswatch.config import load_config
from aiswatch.embedded import EmbeddedServer, free_port
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.esclient import make_client
from aiswatch.runner import IngestOptions, run_sources
from helpers import aiswatch_command, count_present, document_ids, simulated_log, status_counters

pytestmark = pytest.mark.skipif(bool(os.environ.get("ES_URL")),
                                reason="stops and restarts its own Elasticsearch-compatible server")

ROOT = Path(__file__).resolve().parent.parent
SMALL_SINK = {"AISWATCH_SINK__QUEUE_SIZE": "2000", "AISWATCH_SINK__BATCH_SIZE": "500"}


class Run:
    """``aiswatch ARGS`` as a subprocess whose output is read as it comes."""

    def __init__(self, args, tmp_path, env_extra=None):
        cmd, env = aiswatch_command(args, tmp_path, env_extra)
        self.tmp_path = tmp_path
        self.proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                if text in self.output:
                    return
                pytest.fail(f"ended (exit {self.proc.returncode}) before {text!r}:\n{self.output}")
            time.sleep(0.05)
        pytest.fail(f"no {text!r} within {timeout} s:\n{self.output}")

    def end(self, timeout: float = 300) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return code

    def terminate(self) -> float:
        """SIGTERM; seconds until the process ended."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.end(60)
        return time.monotonic() - sent


def counters(tmp_path) -> dict:
    return status_counters(tmp_path / "status.json")


def assert_accounted(c: dict) -> None:
    """Every decoded message indexed, spooled or counted lost."""
    assert c["messages_decoded"] == c.get("documents_indexed", 0) + c.get("spool_depth", 0) + c.get("documents_lost", 0), c


@pytest.fixture
def big_log(tmp_path):
    path = simulated_log(tmp_path / "feed.nmea", 7200)
    return path, document_ids(path)


def test_ingest_file_rides_out_a_20_second_outage(noida, tmp_path, big_log):
    path, ids = big_log
    server = noida("es")
    run = Run(["ingest", "file", str(path), "--es", server.url, "--namespace", "out-",
               "--spool-dir", str(tmp_path / "spool")], tmp_path, SMALL_SINK)
    run.wait_for("backfill:")          # reading and delivering
    time.sleep(1.0)
    server.stop()                       # graceful: noida-db keeps what it acknowledged
    run.wait_for("Elasticsearch unavailable")
    time.sleep(20)
    server.start()                      # same port, same data
    assert run.end() == 0, run.output
    assert "waiting for Elasticsearch at" in run.output
    c = counters(tmp_path)
    assert c["spooled_total"] > 0 and c["replayed_total"] > 0 and c["spool_depth"] == 0
    es = make_client(server.url)
    assert count_present(es, "out-ais-*", ids) == (len(ids), len(ids))
    es.close()


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(params=["tmpfs", "max_bytes"])
def small_spool(request, tmp_path):
    """(spool directory, extra environment): a 3 MB file system, or a 3 MB spool_max_bytes."""
    if request.param == "max_bytes":
        yield tmp_path / "spool", {"AISWATCH_SINK__SPOOL_MAX_BYTES": str(3 * 1024 * 1024)}
        return
    mount = tmp_path / "tmpfs"
    if not _tmpfs(mount, "3m"):
        pytest.skip("cannot mount a tmpfs here (not root?); the max_bytes case covers the policy")
    try:
        yield mount / "spool", {"AISWATCH_SINK__SPOOL_MAX_BYTES": str(1 << 40)}  # the disk is the limit
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def test_a_full_spool_delivers_everything_once_space_and_the_cluster_return(tmp_path, big_log, small_spool):
    path, ids = big_log
    spool, env = small_spool
    port = free_port()
    server = EmbeddedServer(tmp_path / "es", port=port)
    run = Run(["ingest", "file", str(path), "--es", server.url, "--namespace", "full-", "--spool-dir", str(spool)],
              tmp_path, {**SMALL_SINK, **env})
    try:
        run.wait_for("is full", timeout=120)          # the spool filled while the cluster was down
        time.sleep(2)
        segments = list(spool.glob("seg-*.ndjson"))
        assert sum(p.stat().st_size for p in segments) <= 3 * 1024 * 1024 and len(segments) <= 9
        server.start()
        assert run.end() == 0, run.output
    finally:
        server.stop()
        run.end(10)
    c = counters(tmp_path)
    print(f"{small_spool[1]}: {c['spool_full_episodes']} full episodes, spooled {c['spooled_total']}, replayed "
          f"{c['replayed_total']}, indexed {c['documents_indexed']} of {len(ids)}")
    assert c["spool_full_episodes"] >= 1 and c["spool_full"] == 0
    assert c["spool_depth"] == 0 and c.get("documents_lost", 0) == 0
    assert c["documents_indexed"] == c["messages_decoded"] == len(ids)
    server.start()
    es = make_client(server.url)
    assert count_present(es, "full-ais-*", ids) == (len(ids), len(ids))
    es.close()
    server.stop()


def _slow_cluster(delay: float):
    import sys

    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bulk_ack_server.py"), "--delay", str(delay)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip().split(" ", 1)[1]


@pytest.mark.parametrize("state", ["down", "spool_full", "draining", "bulk_hangs"])
def test_sigterm_ends_ingest_within_10_seconds_in_every_state(tmp_path, big_log, state):
    path, ids = big_log
    port = free_port()
    server = EmbeddedServer(tmp_path / "es", port=port)
    url, slow = server.url, None
    env = dict(SMALL_SINK)
    if state in ("spool_full", "draining"):
        env["AISWATCH_SINK__SPOOL_MAX_BYTES"] = str(2 * 1024 * 1024)
    if state == "bulk_hangs":
        slow, url = _slow_cluster(delay=120)
    run = Run(["ingest", "file", str(path), "--es", url, "--namespace", "term-",
               "--spool-dir", str(tmp_path / "spool")], tmp_path, env)
    try:
        if state == "down":
            run.wait_for("Elasticsearch unavailable")
            time.sleep(1)
        elif state == "spool_full":
            run.wait_for("is full", timeout=120)
            time.sleep(1)
        elif state == "draining":
            run.wait_for("is full", timeout=120)
            server.start()
            run.wait_for("is reachable again", timeout=60)
            time.sleep(0.5)
        else:
            time.sleep(5)   # every request hangs: the first batch is in flight, the queue full behind it
        took = run.terminate()
    finally:
        run.end(10)
        if slow is not None:
            slow.stdin.close()
            slow.wait(10)
        server.stop()
    assert took < 10, f"{state}: SIGTERM took {took:.1f} s\n{run.output}"
    assert "Traceback" not in run.output
    c = counters(tmp_path)
    assert_accounted(c)
    print(f"{state}: ended {took:.1f} s after SIGTERM; decoded {c['messages_decoded']}, indexed "
          f"{c.get('documents_indexed', 0)}, spooled {c['spool_depth']}, lost {c.get('documents_lost', 0)}")
    assert 0 < c["messages_decoded"] <= len(ids)
    if state in ("spool_full", "bulk_hangs"):
        assert c["messages_decoded"] < len(ids)    # the replay was waiting, not done
    if state != "draining":
        assert c["spool_depth"] > 0
    if c.get("documents_lost"):   # what the spool could not take is said, and fails the run
        assert f"documents lost    {c['documents_lost']:>10}" in run.output and run.proc.returncode == 1


def test_a_spool_made_for_one_cluster_is_refused_by_another(noida, tmp_path, es_url, big_log):
    path, ids = big_log
    spool = tmp_path / "spool"
    port = free_port()
    own_url = f"http://127.0.0.1:{port}"
    cmd, env = aiswatch_command(["ingest", "file", str(path), "--es", own_url, "--namespace", "mine-",
                                 "--spool-dir", str(spool), "--max-wait", "1s"], tmp_path, SMALL_SINK)
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1 and "still in the spool" in first.stderr, first.stderr
    assert "not answered for 1s (--max-wait): giving up" in first.stderr
    spooled = int(status_counters(tmp_path / "status.json")["spool_depth"])
    assert spooled > 0

    for url, ns in ((es_url, "mine-"), (own_url, "other-")):  # another cluster; the right one, another namespace
        cmd, env = aiswatch_command(["ingest", "file", "/dev/null", "--es", url, "--namespace", ns,
                                     "--spool-dir", str(spool)], tmp_path)
        other = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        text = other.stdout + other.stderr
        errors = [line for line in text.splitlines() if line.startswith("Error:")]
        assert other.returncode != 0 and "Traceback" not in text and len(errors) == 1, text
        assert f"holds {spooled} documents meant for {own_url}" in errors[0]
        assert f"aiswatch ingest file /dev/null --es {own_url} --namespace mine- --spool-dir {spool}" in errors[0]

    server = noida("es", port=port)   # the cluster the spool was made for
    cmd, env = aiswatch_command(["ingest", "file", "/dev/null", "--es", server.url, "--namespace", "mine-",
                                 "--spool-dir", str(spool)], tmp_path)
    home = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert home.returncode == 0, home.stderr
    es = make_client(server.url)
    assert count_present(es, "mine-ais-*", ids) == (spooled, spooled)   # every spooled one, once
    es.close()


class _Idle:
    """A source that sends nothing until closed (a station before its first message)."""

    id = "idle"

    def __init__(self):
        self._closed = threading.Event()

    def lines(self):
        self._closed.wait()
        return iter(())

    def close(self):
        self._closed.set()


def test_metrics_wait_for_the_templates_whatever_order_the_cluster_comes_up(tmp_path):
    port = free_port()
    server = EmbeddedServer(tmp_path / "es", port=port)
    cfg = load_config(environ={})
    cfg["metrics"].update(status_file=str(tmp_path / "status.json"), index_seconds=0.5, log_seconds=0)
    opts = IngestOptions(es_url=server.url, namespace="race-", spool_dir=str(tmp_path / "spool"),
                         dead_letter=str(tmp_path / "dead.ndjson"))
    source, c = _Idle(), Counters()
    runner = threading.Thread(target=run_sources, args=(cfg, lambda _: [source], opts, c))
    runner.start()
    try:
        time.sleep(2.0)                 # down, nothing to deliver: no template, no metrics
        server.start()
        es = make_client(server.url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not es.indices.exists(index="race-aiswatch-metrics"):
            time.sleep(0.2)
        time.sleep(1.5)                 # a few more intervals
    finally:
        source.close()
        runner.join(60)
    mapping = es.indices.get_mapping(index="race-aiswatch-metrics")["race-aiswatch-metrics"]["mappings"]
    assert mapping["properties"]["counters"] == {"type": "object", "enabled": False}
    assert mapping["properties"]["kernel_drops"] == {"type": "long"}
    es.indices.refresh(index="race-aiswatch-metrics")
    assert es.count(index="race-aiswatch-metrics")["count"] >= 2 and c.get("metrics_errors") == 0
    es.close()
    server.stop()
