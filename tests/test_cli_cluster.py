"""The cluster connection from the command line: bad URLs, refused credentials, TLS, secrets.

Every command that talks to Elasticsearch turns what waiting cannot fix (a URL that does not parse,
credentials refused, a TLS handshake that fails, a secret in the config file) into one ``Error:``
line and a non-zero exit, never a traceback, and never prints a password. A cluster that is only
down is different: the documents are spooled, and a finite replay that ends with documents still
spooled exits 1. Credentials reach the server as they should (basic auth, API key, a CA
certificate for https), checked on a real socket by a small HTTP(S) server that records them.
"""
from __future__ import annotations

import base64
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aiswatch.config import load_config
from aiswatch.ingest.counters import Counters
from aiswatch.embedded import EmbeddedServer, free_port
from aiswatch.ingest.esclient import make_client
from aiswatch.runner import IngestOptions, run_sources
from aiswatch.ingest.lines import Line
from helpers import reply_json
from helpers import nmea_traffic

SECRET = "pw-S3cr3t"


def aiswatch(args, tmp_path, env_extra=None, timeout=120, **kw):
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"),
               AISWATCH_METRICS__STATUS_FILE=str(tmp_path / "status.json"))
    for key in ("ES_URL", "ES_USERNAME", "ES_PASSWORD", "ES_API_KEY", "ES_CA_CERTS"):
        env.pop(key, None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=timeout, **kw)


def assert_one_line_error(proc, *words):
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "Traceback" not in text, text
    assert SECRET not in text, text
    error_lines = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, text
    for word in words:
        assert word in error_lines[0], text


@pytest.fixture
def log_file(tmp_path):
    lines, _, per_day = nmea_traffic(n_ships=3, positions=4)
    path = tmp_path / "feed.nmea"
    path.write_text("\n".join(lines) + "\n")
    return path, sum(per_day.values())


@pytest.mark.parametrize("url, words", [
    (f"http://elastic:{SECRET}@127.0.0.1:x", ["bad Elasticsearch URL", "***@"]),
    (f"http://elastic:{SECRET}@[::1", ["bad Elasticsearch URL"]),
    ("127.0.0.1:9200", ["expected http:// or https://"]),
    ("http://127.0.0.1:99999", ["bad Elasticsearch URL"]),
])
def test_a_bad_url_is_one_line_in_every_command(tmp_path, log_file, url, words):
    path, _ = log_file
    for args in (["ingest", "file", str(path), "--es", url], ["setup", "--es", url], ["status", "--es", url],
                 ["detect", "run", "--since", "1h", "--es", url]):
        assert_one_line_error(aiswatch(args, tmp_path), *words)


def test_secrets_in_the_config_file_are_refused_in_one_line(tmp_path, log_file):
    path, _ = log_file
    cases = {
        "url.yaml": f"elasticsearch:\n  url: http://elastic:{SECRET}@127.0.0.1:9200\n",
        "token.yaml": f"sources:\n  - type: aisstream\n    token: {SECRET}\n",
        "dash.yaml": f"elasticsearch:\n  api-key: {SECRET}\n",
    }
    for name, text in cases.items():
        config = tmp_path / name
        config.write_text(text)
        for args in (["ingest", "file", str(path)], ["setup"], ["status"]):
            assert_one_line_error(aiswatch(["--config", str(config), *args], tmp_path),
                                  "not read from the config file")
    # a user name alone in the URL is no secret
    ok = tmp_path / "user.yaml"
    ok.write_text("elasticsearch:\n  url: http://reader@127.0.0.1:9\n")
    assert load_config(ok, environ={})["elasticsearch"]["url"] == "http://reader@127.0.0.1:9"


class RecordingServer:
    """A real HTTP(S) endpoint that records each request's Authorization header and answers like
    Elasticsearch (``status`` for every request: 200 with a version, or 401)."""

    def __init__(self, status=200, certfile=None, keyfile=None):
        self.headers: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.headers.append(self.headers.get("Authorization"))
                payload = ({"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"} if status == 200
                           else {"error": {"type": "security_exception", "reason": "unable to authenticate"},
                                 "status": status})
                reply_json(self, status, payload)

            do_GET = do_POST = do_PUT = do_HEAD = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_refused_credentials_fail_at_once_in_one_line(tmp_path, log_file):
    path, _ = log_file
    server = RecordingServer(status=401)
    try:
        start = time.monotonic()
        proc = aiswatch(["ingest", "file", str(path), "--es", server.url], tmp_path,
                        env_extra={"ES_USERNAME": "elastic", "ES_PASSWORD": SECRET})
        assert_one_line_error(proc, "refused our credentials", "401")
        assert time.monotonic() - start < 30  # not the spool's patient retries
        assert not list((tmp_path / "home").rglob("seg-*.ndjson"))  # nothing spooled for a wrong password
    finally:
        server.close()


def test_basic_auth_and_api_key_reach_the_server(tmp_path):
    server = RecordingServer()
    try:
        os.environ.pop("ES_API_KEY", None)
        client = make_client(server.url, username="elastic", password=SECRET)
        client.info()
        client.close()
        client = make_client(server.url, api_key="a2V5OnNlY3JldA==")
        client.info()
        client.close()
    finally:
        server.close()
    assert server.headers == ["Basic " + base64.b64encode(f"elastic:{SECRET}".encode()).decode(),
                              "ApiKey a2V5OnNlY3JldA=="]


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_with_a_ca_certificate_and_without_it(tmp_path, log_file, certificate):
    cert, key = certificate
    path, _ = log_file
    server = RecordingServer(certfile=str(cert), keyfile=str(key))
    try:
        client = make_client(server.url, ca_certs=str(cert))
        assert client.info()["version"]["number"] == "8.15.0"
        client.close()
        # the same server without the CA: the handshake fails, which waiting cannot fix
        proc = aiswatch(["ingest", "file", str(path), "--es", server.url], tmp_path)
        assert_one_line_error(proc, "TLS", "ca_certs")
    finally:
        server.close()


def test_https_to_an_http_port_is_one_line(tmp_path, es_url, log_file):
    if not es_url.startswith("http://"):
        pytest.skip("needs a plain-http cluster")
    path, _ = log_file
    proc = aiswatch(["ingest", "file", str(path), "--es", "https://" + es_url[len("http://"):]], tmp_path)
    assert_one_line_error(proc, "TLS")


def test_a_replay_that_ends_with_documents_spooled_exits_1(tmp_path, log_file):
    path, n_messages = log_file
    dead = f"http://127.0.0.1:{free_port()}"
    proc = aiswatch(["ingest", "file", str(path), "--es", dead, "--spool-dir", str(tmp_path / "spool"),
                     "--max-wait", "2s"], tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert f"{n_messages} documents are still in the spool" in text and "Traceback" not in text


class PacedLines:
    """A source that hands out its lines evenly over ``seconds`` (a live feed, in short)."""

    id = "paced"

    def __init__(self, lines, seconds):
        self._lines, self._pause = lines, seconds / len(lines)
        self._closed = threading.Event()

    def lines(self):
        for i, text in enumerate(self._lines):
            if self._closed.wait(self._pause):
                return
            yield Line(text, time.time(), self.id, offset=i)

    def close(self):
        self._closed.set()


def test_templates_are_installed_when_elasticsearch_comes_up_after_the_start(tmp_path):
    """Elasticsearch down when the ingest starts: the documents wait in the spool, and the index
    templates are installed before the first of them is delivered (else the indices would be made
    with guessed mappings: a location as two floats, the MMSI as text)."""
    lines, expected, per_day = nmea_traffic(n_ships=4, positions=10)
    port = free_port()
    server = EmbeddedServer(tmp_path / "es", port=port)
    cfg = load_config(environ={})
    cfg["metrics"]["status_file"] = str(tmp_path / "status.json")
    opts = IngestOptions(es_url=server.url, namespace="late-", spool_dir=str(tmp_path / "spool"),
                         dead_letter=str(tmp_path / "dead.ndjson"), replay=True)

    def start_later():
        time.sleep(2.0)
        server.start()

    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        # lines over 5 s: the first ones meet a cluster that is not there yet
        counters = run_sources(cfg, lambda c: [PacedLines(lines, seconds=5.0)], opts, counters=Counters())
        starter.join()
        assert counters.get("spooled_total") > 0  # ES really was down when the documents came
        assert counters.get("documents_indexed") == sum(per_day.values())
        es = make_client(server.url)
        templates = {t["name"] for t in es.indices.get_index_template(name="late-*")["index_templates"]}
        assert "late-aiswatch-ais" in templates and "late-aiswatch-ships-seen" in templates
        index = next(iter(es.indices.get(index="late-ais-*")))
        props = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert props["location"]["type"] == "geo_point" and props["mmsi"]["type"] == "keyword"
        ships = es.indices.get_mapping(index="late-ships-seen")["late-ships-seen"]["mappings"]["properties"]
        assert ships["location"]["type"] == "geo_point"
        es.close()
    finally:
        starter.join()
        server.kill()


def test_the_daemon_prints_where_the_data_is_without_the_password(tmp_path, es_url):
    """``aiswatch run`` with a UDP source: it says where the data goes (password hidden), takes
    datagrams, and SIGTERM flushes them and ends it with its summary, exit 0."""
    if "@" in es_url:
        pytest.skip("the cluster URL carries its own credentials")
    port = free_port()
    config = tmp_path / "aiswatch.yaml"
    config.write_text(f"sources:\n  - type: udp\n    host: 127.0.0.1\n    port: {port}\n")
    url = es_url.replace("://", f"://elastic:{SECRET}@", 1)
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"), ES_URL=url,
               AISWATCH_METRICS__STATUS_FILE=str(tmp_path / "status.json"))
    proc = subprocess.Popen([sys.executable, "-c", "from aiswatch.cli import main; main()", "--config", str(config),
                             "run", "--namespace", "daemon-"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "status.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        lines, _, per_day = nmea_traffic(n_ships=2, positions=3)
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in lines:
                sock.sendto((line + "\r\n").encode(), ("127.0.0.1", port))
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "aiswatch is running. Data goes to" in out and "***@" in out
    assert SECRET not in out and "Traceback" not in out
    indexed = next(line for line in out.splitlines() if line.startswith("documents indexed"))
    assert int(indexed.split()[-1]) == sum(per_day.values())
    es = make_client(es_url)
    try:
        es.indices.refresh(index="daemon-ais-*")
        assert es.count(index="daemon-ais-*")["count"] == sum(per_day.values())
    finally:
        from helpers import delete_namespace
        delete_namespace(es, "daemon-")
        es.close()
