"""Two aiswatch processes side by side just work: each has a spool of its own by default.

A daemon (``aiswatch run``, a UDP source) and a backfill (``aiswatch ingest file``) into the same
cluster and namespace, and a second daemon with another namespace, all with the same home (so the
same ``sink.spool_dir``): each delivers everything. A spool named explicitly that another process
holds is one ``Error:`` line.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from helpers import UDP_SENDER, aiswatch_command, count_present, document_ids, simulated_log, status_counters

T0_MS = 1_763_164_800_000


class Daemon:
    def __init__(self, tmp_path, name: str, port: int, namespace: str, es_url: str, extra=()):
        config = tmp_path / f"{name}.yaml"
        config.write_text(f"sources:\n  - type: udp\n    host: 127.0.0.1\n    port: {port}\n")
        self.status = tmp_path / f"{name}-status.json"
        cmd, env = aiswatch_command(["--config", str(config), "run", "--es", es_url, "--namespace", namespace,
                                     "--no-simulate", *extra], tmp_path,
                                    {"AISWATCH_METRICS__STATUS_FILE": str(self.status)})
        self.proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        deadline = time.monotonic() + 60
        while "aiswatch is running" not in "".join(self.lines):
            assert self.proc.poll() is None and time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.1)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def send_udp(port: int, n: int, first: int) -> None:
    subprocess.run([sys.executable, "-c", UDP_SENDER, str(port), str(n), "2000", "0.05", str(T0_MS + first)],
                   check=True, capture_output=True, timeout=60)


def test_a_daemon_a_backfill_and_a_second_daemon_all_deliver_everything(es_url, es, tmp_path):
    from aiswatch.embedded import free_port

    log = simulated_log(tmp_path / "backfill.nmea", 1800)
    ids = document_ids(log)
    port_a, port_b = free_port(), free_port()
    daemon_a = Daemon(tmp_path, "a", port_a, "sbs-a-", es_url)
    daemon_b = Daemon(tmp_path, "b", port_b, "sbs-b-", es_url)   # another namespace, same home
    try:
        cmd, env = aiswatch_command(["ingest", "file", str(log), "--es", es_url, "--namespace", "sbs-a-"], tmp_path,
                                    {"AISWATCH_METRICS__STATUS_FILE": str(tmp_path / "backfill-status.json")})
        backfill = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        send_udp(port_a, 3000, 0)
        send_udp(port_b, 2000, 10_000)
        out, _ = backfill.communicate(timeout=300)
        assert backfill.returncode == 0, out
        time.sleep(1.5)   # the daemons' last batches
    finally:
        codes = [daemon_a.stop(), daemon_b.stop()]
    assert codes == [0, 0], "".join(daemon_a.lines + daemon_b.lines)
    a, b = status_counters(daemon_a.status), status_counters(daemon_b.status)
    assert a["documents_indexed"] == 3000 and b["documents_indexed"] == 2000
    assert a["spool_depth"] == b["spool_depth"] == 0
    es.indices.refresh(index="sbs-a-ais-*,sbs-b-ais-*")
    total_a, present = count_present(es, "sbs-a-ais-*", ids)
    assert present == len(ids) and total_a == len(ids) + 3000      # the backfill's and the daemon's
    assert es.count(index="sbs-b-ais-*")["count"] == 2000
    spools = sorted(p.name for p in (tmp_path / "home" / "spool").iterdir())
    assert len(spools) == 3, spools           # one each: two for sbs-a- (the daemon, the backfill), one for sbs-b-
    from helpers import delete_namespace
    delete_namespace(es, "sbs-a-")
    delete_namespace(es, "sbs-b-")


def test_a_spool_held_by_another_process_is_one_error_line(es_url, tmp_path):
    from aiswatch.embedded import free_port

    spool = tmp_path / "spool"
    daemon = Daemon(tmp_path, "d", free_port(), "held-", es_url, extra=("--spool-dir", str(spool)))
    try:
        log = simulated_log(tmp_path / "feed.nmea", 60, vessels=3)
        cmd, env = aiswatch_command(["ingest", "file", str(log), "--es", es_url, "--namespace", "held-",
                                     "--spool-dir", str(spool)], tmp_path,
                                    {"AISWATCH_METRICS__STATUS_FILE": str(tmp_path / "other-status.json")})
        other = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        assert daemon.stop() == 0
    text = other.stdout + other.stderr
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert other.returncode != 0 and "Traceback" not in text and len(errors) == 1, text
    assert f"spool directory {spool} is in use by another aiswatch process (pid {daemon.proc.pid})" in errors[0]
    assert "--spool-dir" in errors[0]
