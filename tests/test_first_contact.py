"""A new user's first mistakes, command by command: each is one ``Error:`` line (no traceback) and
the documented exit status (aiswatch/cli/errors.py: 1 the command could not do its job, 2 the
command line is wrong), and the embedded server never takes a port another server holds."""
from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from helpers import nmea_traffic, reply_json

BASE = [sys.executable, "-c", "from aiswatch.cli import main; main()"]


def aiswatch(args, tmp_path, timeout=120, **env):
    environ = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"), **env)
    environ.pop("ES_URL", None)
    return subprocess.run(BASE + list(args), capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=environ)


def one_error_line(proc, status: int, *words: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip() and " INFO " not in line
             and " WARNING " not in line]
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_udp_port_in_use_is_one_line(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = aiswatch(["ingest", "udp", "--port", str(port), "--es", "http://127.0.0.1:9"], tmp_path)
    one_error_line(proc, 1, "Address already in use", f"127.0.0.1:{port}", "--port")


@pytest.mark.parametrize("args", [["detect", "run"], ["detect", "list"], ["setup"]])
def test_an_unreachable_cluster_is_one_line(tmp_path, args):
    proc = aiswatch(args + ["--es", f"http://127.0.0.1:{_free_port()}"], tmp_path)
    one_error_line(proc, 1, "Elasticsearch")


def test_an_unresolvable_cluster_host_is_one_line_not_a_wait(tmp_path):
    log = tmp_path / "feed.nmea"
    log.write_text("\n".join(nmea_traffic(n_ships=1, positions=2)[0]) + "\n")
    for args in (["ingest", "file", str(log)], ["detect", "run"], ["setup"]):
        proc = aiswatch(args + ["--es", "http://no-such-host.invalid:9200"], tmp_path, timeout=60)
        one_error_line(proc, 1, "cannot resolve the Elasticsearch host 'no-such-host.invalid'")


@pytest.mark.parametrize("every, says", [("1 fortnight", "expected a number with a unit"),
                                         ("0m", "shorter than a minute"), ("30s", "shorter than a minute")])
def test_a_bad_schedule_period_is_one_line_before_anything_starts(tmp_path, every, says):
    proc = aiswatch(["detect", "schedule", "--every", every, "--es", "http://127.0.0.1:9"], tmp_path)
    one_error_line(proc, 2, "--every", says, "aiswatch detect schedule --help")


def test_an_unknown_source_type_and_a_typo_in_the_config_are_one_line(tmp_path):
    config = tmp_path / "aiswatch.yaml"
    config.write_text("sources:\n  - {type: udpp, port: 10110}\n  - {type: udp, hots: 0.0.0.0}\n")
    proc = aiswatch(["run"], tmp_path)
    one_error_line(proc, 1, "unknown source type 'udpp' (did you mean 'udp'?)", "sources[1].hots: unknown key "
                   "(did you mean 'host'?)")
    config.write_text("elasticsearh:\n  url: http://127.0.0.1:9\n")
    proc = aiswatch(["ingest", "file", str(config)], tmp_path)
    one_error_line(proc, 1, "elasticsearh: unknown key (did you mean 'elasticsearch'?)")


def test_missing_files_are_one_line(tmp_path):
    one_error_line(aiswatch(["ingest", "file", str(tmp_path / "nope.nmea"), "--es", "http://127.0.0.1:9"], tmp_path),
                   1, "nope.nmea")
    one_error_line(aiswatch(["--config", str(tmp_path / "nope.yaml"), "status"], tmp_path), 1, "config file not found")
    one_error_line(aiswatch(["demod", str(tmp_path / "nope.cu8"), "--rate", "288000"], tmp_path), 1, "nope.cu8")


def test_an_unknown_command_or_option_is_one_line(tmp_path):
    one_error_line(aiswatch(["injest"], tmp_path), 2, "No such command 'injest'")
    one_error_line(aiswatch(["ingest", "udp", "--prot", "1"], tmp_path), 2, "--prot", "aiswatch ingest udp --help")


class _ForeignElasticsearch(http.server.BaseHTTPRequestHandler):
    """Another Elasticsearch on the embedded server's default port: it must never be written to."""

    requests: list[str] = []

    def do_GET(self):
        self.requests.append(f"GET {self.path}")
        reply_json(self, 200, {"name": "someone-elses", "version": {"number": "8.15.3"}})

    def do_PUT(self):
        self.requests.append(f"PUT {self.path}")
        reply_json(self, 200, {"acknowledged": True})

    do_POST = do_PUT

    def log_message(self, *args):
        pass


def test_the_embedded_server_never_takes_a_port_another_server_holds(tmp_path):
    """With the embedded server's port held by another Elasticsearch, a daemon starts its own on a
    free port and records where; another command (a backfill, ``status``) finds it there, and the
    other server sees no request at all. The last process to leave stops it."""
    import time

    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForeignElasticsearch)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    port = foreign.server_address[1]
    log = tmp_path / "feed.nmea"
    lines, _, per_day = nmea_traffic(n_ships=2, positions=3)
    log.write_text("\n".join(lines) + "\n")
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"), AISWATCH_EMBEDDED__PORT=str(port))
    env.pop("ES_URL", None)
    record_path = tmp_path / "home" / "es" / "server.json"
    daemon = subprocess.Popen(BASE + ["ingest", "udp", "--port", "0"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not record_path.exists() and time.time() < deadline:
            time.sleep(0.2)
        record = json.loads(record_path.read_text())
        assert record["port"] != port
        backfill = aiswatch(["ingest", "file", str(log)], tmp_path, AISWATCH_EMBEDDED__PORT=str(port))
        assert backfill.returncode == 0, backfill.stderr
        assert f"embedded server at {record['url']} (already running" in backfill.stderr
        status = aiswatch(["status"], tmp_path, AISWATCH_EMBEDDED__PORT=str(port))
        assert f"cluster {record['url']}: reachable" in status.stdout, status.stdout + status.stderr
        assert _ForeignElasticsearch.requests == []
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=60)
        foreign.shutdown()
        foreign.server_close()
    assert f"port {port} is taken by another program" in err
    assert not record_path.exists()   # the last user stopped it


def test_the_example_config_says_the_simulator_is_off(tmp_path):
    """Copying aiswatch.example.yaml to aiswatch.yaml declares a UDP source, so no simulated traffic
    plays; the daemon says so at start instead of leaving the map empty without a word."""
    import shutil
    import signal
    import time

    from helpers import ROOT

    shutil.copy(ROOT / "aiswatch.example.yaml", tmp_path / "aiswatch.yaml")
    text = (tmp_path / "aiswatch.yaml").read_text().replace("port: 10110", f"port: {_free_port()}", 1)
    (tmp_path / "aiswatch.yaml").write_text(text)
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"))
    env.pop("ES_URL", None)
    daemon = subprocess.Popen(BASE + ["run", "--es", f"http://127.0.0.1:{_free_port()}"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    daemon.send_signal(signal.SIGTERM)
    _, err = daemon.communicate(timeout=60)
    assert "sources from aiswatch.yaml: udp 127.0.0.1:" in err
    assert "no simulated traffic (--simulate, or a source of type simulate, adds it)" in err
