"""The one-command stack: docker-compose.yml is valid for a real compose client, every image is pinned,
the services start in the right order with healthchecks, no secret is in the repository, each aiswatch
job logs in as its own user whose role grants what the job's requests need and no more, no password
is on a command line, Elasticsearch's HTTP layer is TLS with certificates a setup container makes and
every client verifies, and the image carries no sources.

What runs here: ``docker-compose config`` (the Debian ``docker-compose`` client; no engine needed),
the stack's scripts (docker/certs.sh, docker/users.sh, es01's healthcheck) with bash, dash and curl
against local HTTPS peers, the aiswatch jobs with the compose file's commands and users against the
test server through a recording proxy, and the security request bodies type-checked with tsc against
Elasticsearch's API specification (the official client's types: ``npm ci --prefix tests/es-api-types``).
What cannot run here, and is skipped or replaced, saying so: Docker itself (images, volumes, the
stack), ``elasticsearch-certutil`` (an openssl stand-in makes its PEM layout: tests/certutil_openssl.py)
and the authorization of Elasticsearch and Kibana (the test servers have no security API; the job test
applies the privileges as Elastic documents them).
"""
from __future__ import annotations

import base64
import fnmatch
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from aiswatch.config import load_config
from aiswatch.es_templates import IndexNames

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKER = ROOT / "docker"
ROLES_DIR = DOCKER / "roles"
ES_API_TYPES = Path(__file__).resolve().parent / "es-api-types"
# the aiswatch jobs: compose service -> the Elasticsearch user (and role) it logs in as
JOB_USERS = {"aiswatch": "aiswatch_ingest", "detect": "aiswatch_detect", "setup": "aiswatch_setup",
             "dashboards": "aiswatch_setup"}


def compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def clean_env() -> dict[str, str]:
    """This process's environment without the stack's variables (the shell's would override the env file)."""
    return {k: v for k, v in os.environ.items() if k not in env_example()}


def compose_file() -> dict:
    """docker-compose.yml as written (``$$`` not yet unescaped)."""
    return yaml.safe_load(COMPOSE.read_text())


def in_container(text: str) -> str:
    """A string of the compose file as the container gets it: ``$$`` is compose's escape for ``$``."""
    return text.replace("$$", "$")


@pytest.fixture(scope="module")
def rendered():
    """The compose file as the client resolves it with .env.example's values."""
    client = compose_client()
    if client is None:
        pytest.skip("no docker-compose client (apt-get install docker-compose, or the docker compose plugin); "
                    "the compose file is only parsed as YAML")
    result = subprocess.run(client + ["-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, env=clean_env())
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_client_accepts_the_file(rendered):
    assert set(rendered["services"]) == {"certs", "es01", "users", "kibana", "setup", "aiswatch", "detect",
                                         "dashboards"}


def test_compose_refuses_to_start_without_passwords(tmp_path):
    client = compose_client()
    if client is None:
        pytest.skip("no docker-compose client")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run(client + ["-f", str(COMPOSE), "--env-file", str(empty), "config", "-q"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60, env=clean_env())
    assert result.returncode != 0
    assert "ELASTIC_PASSWORD" in result.stderr


def condition(service: dict, on: str) -> str | None:
    return (service.get("depends_on") or {}).get(on, {}).get("condition")


def test_services_order_health_and_resources(rendered):
    s = rendered["services"]
    for name in ("es01", "kibana", "aiswatch"):
        assert s[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    # certs before es01; users once es01 answers; Kibana once its password is set
    assert condition(s["es01"], "certs") == "service_completed_successfully"
    assert condition(s["users"], "es01") == "service_healthy"
    assert condition(s["kibana"], "es01") == "service_healthy"
    assert condition(s["kibana"], "users") == "service_completed_successfully"
    # the templates before any document: the daemon and the detector wait for the setup job, which
    # waits for its user; the saved objects once Kibana is up
    assert condition(s["setup"], "users") == "service_completed_successfully"
    assert condition(s["aiswatch"], "setup") == "service_completed_successfully"
    assert condition(s["detect"], "setup") == "service_completed_successfully"
    assert condition(s["dashboards"], "kibana") == "service_healthy"
    for one_shot in ("certs", "users", "setup", "dashboards"):
        assert s[one_shot]["restart"] == "no"
    # the commands the stack runs
    assert s["setup"]["command"] == ["setup"]
    assert s["dashboards"]["command"][:3] == ["setup", "--kibana", "http://kibana:5601"]
    assert s["aiswatch"]["command"] in ("run --no-setup --simulate", ["run", "--no-setup", "--simulate"])
    assert s["detect"]["command"] == ["detect", "schedule", "--every", "10m"]
    # UDP 10110 published for rtl_ais / AIS-catcher
    port = s["aiswatch"]["ports"][0]
    assert (port["target"], port["protocol"], int(port["published"])) == (10110, "udp", 10110)
    # security on, with the password from .env; a laptop-sized heap
    es_env = s["es01"]["environment"]
    assert es_env["xpack.security.enabled"] == "true"
    assert es_env["ELASTIC_PASSWORD"] == env_example()["ELASTIC_PASSWORD"]
    heap = re.search(r"-Xmx(\d+)([mg])", es_env["ES_JAVA_OPTS"])
    assert heap and int(heap.group(1)) * (1024 if heap.group(2) == "g" else 1) <= 2048
    assert s["kibana"]["environment"]["ELASTICSEARCH_USERNAME"] == "kibana_system"
    # named volumes for every stateful service
    assert {"esdata", "kibanadata", "aiswatch-data", "certs"} <= set(rendered["volumes"])
    for name in ("es01", "kibana", "aiswatch"):
        assert any(str(v).split(":")[0] in rendered["volumes"] or (isinstance(v, dict) and v.get("source") in rendered["volumes"])
                   for v in s[name]["volumes"])


def test_every_image_is_pinned_and_the_stack_versions_match():
    doc = compose_file()
    images = {name: svc.get("image") for name, svc in doc["services"].items()}
    assert all(images.values()), f"services without an image tag: {images}"
    for name, image in images.items():
        assert "${" not in image, f"{name}: image version must be written down, not a variable"
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
    es = images["es01"].rpartition(":")[2]
    assert images["certs"] == images["users"] == images["es01"], "certutil and the scripts run in es01's image"
    assert images["kibana"].rpartition(":")[2] == es and es.startswith("8.")
    from aiswatch.kibana.saved_objects import KIBANA_VERSION
    assert KIBANA_VERSION == es, "the dashboard panels should carry the Kibana version the stack runs"


def test_the_image_config_is_valid_and_listens_for_receivers():
    cfg = load_config(DOCKER / "aiswatch.yaml", environ={})
    assert cfg["sources"] == [{"type": "udp", "host": "0.0.0.0", "port": 10110}]
    assert cfg["elasticsearch"]["url"] == "https://es01:9200"
    assert "docker/aiswatch.yaml" in (ROOT / "Dockerfile").read_text()


# -- the image: built in two stages, no sources in the one that ships ------------------------------

def dockerfile_stages() -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    """(base image, stage name, [(instruction, arguments)]) for each stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.I)
            stages.append((m.group(1), m.group(2), []))
        else:
            stages[-1][2].append((word, " ".join(rest.split())))
    return stages


def test_the_image_is_built_in_two_stages_and_ships_no_sources():
    stages = dockerfile_stages()
    assert len(stages) == 2, [s[:2] for s in stages]
    (build_base, build_name, build), (base, _, final) = stages
    for image in (build_base, base):
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), f"Dockerfile base {image} is not pinned"
    assert build_base == base, "the virtualenv is copied between the stages: same Python"
    # the builder: the sources, gcc (mypyc compiles the ingest modules), a wheel, a virtualenv from wheels only
    assert any(i == "COPY" and a.split()[0] == "." for i, a in build)
    build_runs = " ".join(a for i, a in build if i == "RUN")
    assert "gcc" in build_runs and "pip wheel" in build_runs and "--no-index" in build_runs
    # the image: only the virtualenv from the builder and the stack's config; no compiler, no pip install
    copies = [a for i, a in final if i in ("COPY", "ADD")]
    assert copies == [f"--from={build_name} /opt/aiswatch /opt/aiswatch",
                      "docker/aiswatch.yaml /etc/aiswatch/aiswatch.yaml"]
    final_runs = " ".join(a for i, a in final if i == "RUN")
    assert "gcc" not in final_runs and "pip install" not in final_runs and "/src" not in final_runs
    assert "librtlsdr0" in final_runs
    # the check that the image runs the compiled modules, after the copy
    check = next(k for k, (i, a) in enumerate(final) if i == "RUN" and "n.mode() != 'compiled'" in a)
    assert check > next(k for k, (i, a) in enumerate(final) if a.startswith("--from="))
    assert ("USER", "aiswatch") in final and ("ENTRYPOINT", '["aiswatch"]') in final
    # what COPY . brings into the builder: no secrets, no local build output
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "*.so", "tests"} <= set(ignored)


# -- secrets -----------------------------------------------------------------------------------------

# Values that are placeholders, not secrets.
PLACEHOLDER = re.compile(r"^(|\$\{.*\}|\$\$\{.*\}|change-?me.*|<.*>|\*+|x+|your[-_].*|null|none|\.\.\.)$", re.I)
ASSIGNMENT = re.compile(r"""(?ix)\b(\w*(?:password|passwd|api_?key|secret|token)\w*)\b["']?\s*[:=]\s*["']?([^\s"',}]*)""")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return [ROOT / line for line in out.splitlines() if line]


def test_dot_env_is_ignored_and_not_tracked():
    result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert result.returncode == 0, ".env must be in .gitignore"
    assert ".env" not in [p.name for p in tracked_files()]
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_env_example_holds_only_placeholders():
    values = env_example()
    for key, value in values.items():
        if re.search(r"PASSWORD|KEY|SECRET|TOKEN", key):
            assert PLACEHOLDER.match(value), f".env.example {key}={value!r} looks like a real secret"


def secrets_in(text: str) -> list[str]:
    """Names assigned a literal, secret-looking value in ``text`` (variables and placeholders are fine)."""
    found = []
    if "PRIVATE KEY-----" in text:
        found.append("private key")
    for m in ASSIGNMENT.finditer(text):
        name, value = m.group(1), m.group(2)
        if PLACEHOLDER.match(value) or not re.fullmatch(r"[\w\-+/=.!@#%^&]{8,}", value):
            continue
        if re.fullmatch(r"[a-z_][\w.]*(\(.*)?", value) and not re.search(r"\d", value):
            continue  # code naming a variable or a call: password=read_secret, api_key=os.environ
        if name.lower().endswith("_file") and value.startswith(("/", "~/", "./")):
            continue  # where a key file is (password_file: /etc/aiswatch/credentials/password), not a key
        found.append(f"{name}={value[:4]}…")
    return found


def test_the_secret_scan_finds_secrets():
    assert secrets_in("ELASTIC_PASSWORD=Tr0ub4dor&3")
    assert secrets_in('{"APIKey": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}')
    assert secrets_in("  password: hunter2hunter2")
    assert not secrets_in("ES_PASSWORD: ${ELASTIC_PASSWORD:?set it}\nELASTIC_PASSWORD=change-me-elastic\n"
                          "password = read_secret(env)\napi_key=api_key or None\npassword_file: null\n"
                          "AISWATCH_ELASTICSEARCH__PASSWORD_FILE: /etc/aiswatch/credentials/password")
    assert secrets_in("password_file=Tr0ub4dor&3")


def test_no_secret_in_tracked_files():
    """No password / API key with a literal value in any tracked file outside tests/ (tests use fakes)."""
    findings = []
    for path in tracked_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "tests" or not path.is_file() or path.suffix in (".png", ".gz", ".cu8", ".npy"):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        findings += [f"{rel}: {hit}" for hit in secrets_in(text)]
    assert len(tracked_files()) > 20, "git ls-files found too little: the scan is not looking"
    assert not findings, "possible secrets in tracked files: " + "; ".join(findings)


# -- es01 refuses the placeholder password ------------------------------------------------------------

def test_es01_refuses_to_boot_with_the_placeholder_password():
    """es01 runs the image's entrypoint behind a check (the volume's first boot fixes the password)."""
    entry = yaml.safe_load(COMPOSE.read_text())["services"]["es01"]["entrypoint"]
    assert entry[:5] == ["/bin/tini", "--", "bash", "-c", entry[4]]
    script = entry[4].replace("$$", "$")  # what compose hands the container
    assert script.rstrip().endswith("exec /usr/local/bin/docker-entrypoint.sh eswrapper")
    env = {"PATH": os.environ["PATH"], "ELASTIC_PASSWORD": "change-me-elastic"}
    refused = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1
    assert "ELASTIC_PASSWORD in .env is still the placeholder" in refused.stderr
    env["ELASTIC_PASSWORD"] = "a-real-one-123"
    passed = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    # past the check it execs the image's entrypoint, which only exists inside the image
    assert passed.returncode == 127 and "docker-entrypoint.sh" in passed.stderr and "placeholder" not in passed.stderr


# -- helpers: local HTTP(S) peers and a watch on every command line -----------------------------------

class Peer(ThreadingHTTPServer):
    """An HTTP(S) peer on 127.0.0.1. ``answer(method, path, headers, body) -> (status, payload)``; every
    request is recorded (method, path, decoded Basic credentials, content type, JSON body); ``delay``
    seconds pass before each answer (so a client's process lives long enough to be seen)."""

    def __init__(self, answer, certfile: str | None = None, keyfile: str | None = None, delay: float = 0.0):
        self.answer, self.delay, self.requests = answer, delay, []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                auth = self.headers.get("authorization", "")
                user = base64.b64decode(auth.split()[1]).decode() if auth.startswith("Basic ") else auth
                body = json.loads(raw) if raw else None
                peer.requests.append({"method": self.command, "path": self.path, "auth": user, "body": body,
                                      "type": self.headers.get("content-type")})
                time.sleep(peer.delay)
                status, payload = peer.answer(self.command, self.path, self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("x-elastic-product", "Elasticsearch")   # as Elasticsearch 8 answers
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = handle_any

        super().__init__(("127.0.0.1", 0), Handler)
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self.socket = context.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        scheme = "https" if certfile else "http"
        self.url = f"{scheme}://localhost:{self.server_address[1]}"

    def close(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def peers():
    started = []

    def start(answer, **kw) -> Peer:
        started.append(Peer(answer, **kw))
        return started[-1]
    yield start
    for p in started:
        p.close()


class CommandLines:
    """Every process's command line on this machine, sampled from /proc while the block runs: what the
    host's ``ps`` shows (and the healthcheck's and scripts' processes are on the host too)."""

    def __init__(self, interval: float = 0.01):
        self.interval, self.seen = interval, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            line = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    except OSError:
                        continue
                    if line:
                        self.seen.add(line)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def running(self, program: str) -> list[str]:
        return [c for c in self.seen if c.split(" ", 1)[0].rsplit("/", 1)[-1] == program]

    def leaks(self, *secrets: str) -> list[str]:
        return [c for c in self.seen for s in secrets if s and s in c]


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# -- TLS: the certs job, and where every service finds its part ---------------------------------------

def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian packages) to run the stack's scripts here")


def run_certs_job(home: Path, ca_dir: Path, log: Path) -> subprocess.CompletedProcess:
    """docker/certs.sh with the openssl stand-in for elasticsearch-certutil (it logs each invocation)."""
    certutil = home / "certutil"
    certutil.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {sys.executable} '
                        f'{Path(__file__).resolve().parent / "certutil_openssl.py"} "$@"\n')
    certutil.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "CERTS_DIR": str(home / "config" / "certs"), "CA_DIR": str(ca_dir),
           "CERTUTIL": str(certutil), "CERTS_OWNER": f"{os.getuid()}:{os.getgid()}"}
    return subprocess.run(["bash", str(DOCKER / "certs.sh")], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def stack_certs(tmp_path_factory):
    """The certs job's output: {"home": es01's home (config/certs below it), "ca_dir": the ca volume, "log"}."""
    need("bash", "openssl", "unzip", "install")
    root = tmp_path_factory.mktemp("stack-certs")
    home, ca_dir, log = root / "elasticsearch", root / "ca", root / "certutil.log"
    (home / "config" / "certs").mkdir(parents=True)
    ca_dir.mkdir()
    done = run_certs_job(home, ca_dir, log)
    assert done.returncode == 0, done.stderr
    return {"home": home, "certs": home / "config" / "certs", "ca_dir": ca_dir, "log": log, "output": done.stdout}


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def subject_alt_names(cert: Path) -> set[str]:
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(cert)],
                          capture_output=True, text=True, check=True).stdout
    return {n.strip().replace("IP Address:", "IP:") for n in text.splitlines()[1].split(",")}


def test_certs_job_makes_a_ca_and_es01s_certificate_once(stack_certs, tmp_path):
    certs, ca_dir = stack_certs["certs"], stack_certs["ca_dir"]
    made = files_under(certs)
    assert set(made) == {"ca/ca.crt", "ca/ca.key", "es01/es01.crt", "es01/es01.key", "instances.yml"}
    # the keys readable by es01 (uid 1000 in group 0) through the group only; nothing for others
    for path in certs.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o750 if path.is_dir() else 0o640), path
    # the clients' volume: the CA certificate, readable by all, and no key
    assert files_under(ca_dir) == {"ca.crt": made["ca/ca.crt"]}
    assert (ca_dir / "ca.crt").stat().st_mode & 0o777 == 0o644
    # es01's certificate: signed by the CA, for the name every service uses and for the healthcheck's
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(certs / "ca/ca.crt"), str(certs / "es01/es01.crt")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert {"DNS:es01", "DNS:localhost", "IP:127.0.0.1"} <= subject_alt_names(certs / "es01/es01.crt")
    calls = stack_certs["log"].read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["ca", "cert"] and all("--pem" in c for c in calls)
    # a rerun keeps everything; losing es01's certificate makes it again with the same CA
    home = stack_certs["home"]
    again = run_certs_job(home, ca_dir, stack_certs["log"])
    assert again.returncode == 0 and files_under(certs) == made
    assert len(stack_certs["log"].read_text().splitlines()) == 2, "certutil ran again"
    (certs / "es01/es01.crt").unlink()
    remade = run_certs_job(home, ca_dir, stack_certs["log"])
    assert remade.returncode == 0, remade.stderr
    now = files_under(certs)
    assert now["ca/ca.key"] == made["ca/ca.key"] and now["es01/es01.crt"] != made["es01/es01.crt"]
    assert subprocess.run(["openssl", "verify", "-CAfile", str(certs / "ca/ca.crt"), str(certs / "es01/es01.crt")],
                          capture_output=True).returncode == 0


def mount(service: dict, volume: str) -> str | None:
    """Where ``service`` mounts the named volume (None: it does not)."""
    for v in service.get("volumes", []):
        source, target = (v["source"], v["target"]) if isinstance(v, dict) else str(v).split(":")[:2]
        if source == volume:
            return target
    return None


def test_tls_settings_and_ca_paths_agree_across_the_services(rendered, stack_certs):
    """es01 serves HTTPS with the certs job's files; Kibana, the users job and every aiswatch job reach it
    as https://es01:9200 and verify it with the CA certificate at the path where they mount the ca volume."""
    s = rendered["services"]
    es = s["es01"]["environment"]
    es_config = Path(mount(s["es01"], "certs")).parent            # settings' paths are relative to config/
    assert mount(s["es01"], "certs") == mount(s["certs"], "certs") == "/usr/share/elasticsearch/config/certs"
    assert es["xpack.security.http.ssl.enabled"] == es["xpack.security.transport.ssl.enabled"] == "true"
    produced = set(files_under(stack_certs["certs"]))
    for layer in ("http", "transport"):
        for key in ("key", "certificate", "certificate_authorities"):
            relative = es[f"xpack.security.{layer}.ssl.{key}"]
            assert str(es_config / relative).startswith(mount(s["es01"], "certs"))
            assert relative.removeprefix("certs/") in produced, f"{layer}.ssl.{key}: {relative} is not made by certs.sh"
    # the CA key never leaves the certs volume: only certs and es01 mount it, es01 read-only
    assert {name for name, svc in s.items() if mount(svc, "certs")} == {"certs", "es01"}
    assert any(str(v).endswith(":ro") or (isinstance(v, dict) and v.get("read_only")) for v in s["es01"]["volumes"]
               if "certs" in str(v))
    ca_file = "ca.crt"
    assert mount(s["certs"], "ca") == "/ca"   # certs.sh's default CA_DIR
    # the healthcheck's --cacert, relative to es01's working directory (/usr/share/elasticsearch)
    check = in_container(" ".join(compose_file()["services"]["es01"]["healthcheck"]["test"]))
    cacert = re.search(r"--cacert (\S+)", check).group(1)
    assert "/usr/share/elasticsearch/" + cacert == mount(s["es01"], "certs") + "/ca/ca.crt"
    assert "https://localhost:9200/" in check
    assert "DNS:localhost" in subject_alt_names(stack_certs["certs"] / "es01/es01.crt")
    # Kibana
    kb = s["kibana"]["environment"]
    assert json.loads(kb["ELASTICSEARCH_HOSTS"]) == ["https://es01:9200"]
    assert kb["ELASTICSEARCH_SSL_CERTIFICATEAUTHORITIES"] == mount(s["kibana"], "ca") + "/" + ca_file
    assert "ELASTICSEARCH_SSL_VERIFICATIONMODE" not in kb, "Kibana verifies the certificate and its name (full)"
    # the users job and the aiswatch jobs
    assert s["users"]["environment"]["ES_CA"] == mount(s["users"], "ca") + "/" + ca_file
    assert s["users"]["environment"]["ES_URL"] == "https://es01:9200"
    for name in JOB_USERS:
        env = s[name]["environment"]
        assert env["ES_URL"] == "https://es01:9200", name
        assert env["ES_CA_CERTS"] == mount(s[name], "ca") + "/" + ca_file, name
        assert "AISWATCH_ELASTICSEARCH__VERIFY_CERTS" not in env
    assert "DNS:es01" in subject_alt_names(stack_certs["certs"] / "es01/es01.crt")


def test_aiswatch_verifies_es01_with_the_ca_the_certs_job_made(stack_certs, peers):
    """The client configuration the compose file gives the jobs (ES_CA_CERTS) against a TLS peer that
    presents the certs job's es01 certificate; a peer with a certificate of another CA is refused."""
    from aiswatch.ingest.esclient import make_client

    certs = stack_certs["certs"]
    info = {"name": "es01", "cluster_name": "aiswatch", "version": {"number": "8.15.3"},
            "tagline": "You Know, for Search"}
    es01 = peers(lambda *a: (200, info), certfile=str(certs / "es01/es01.crt"), keyfile=str(certs / "es01/es01.key"))
    old = os.environ.get("ES_CA_CERTS")
    os.environ["ES_CA_CERTS"] = str(stack_certs["ca_dir"] / "ca.crt")
    try:
        client = make_client(es01.url)
        assert client.info()["version"]["number"] == "8.15.3"
        client.close()
        # the name is checked too: the certificate is for es01, localhost and 127.0.0.1, not for other names
        context = ssl.create_default_context(cafile=str(stack_certs["ca_dir"] / "ca.crt"))
        port = es01.server_address[1]
        import socket
        for name, ok in (("es01", True), ("localhost", True), ("kibana", False)):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                try:
                    with context.wrap_socket(raw, server_hostname=name):
                        verified = True
                except ssl.SSLCertVerificationError:
                    verified = False
            assert verified == ok, name
    finally:
        if old is None:
            os.environ.pop("ES_CA_CERTS")
        else:
            os.environ["ES_CA_CERTS"] = old


def other_ca_certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "other.crt", tmp_path / "other.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,DNS:es01,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


# -- es01's healthcheck: authenticated, over TLS, with no password on a command line ------------------

def healthcheck(port: int) -> str:
    """es01's healthcheck command as the container's shell gets it, pointed at a local port."""
    test = compose_file()["services"]["es01"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    command = in_container(test[1])
    assert command.count("https://localhost:9200/") == 1
    return command.replace("https://localhost:9200/", f"https://localhost:{port}/")


def test_es01_healthcheck_logs_in_with_the_password_from_its_environment(stack_certs, peers, tmp_path):
    need("sh", "curl", "base64")
    certs = stack_certs["certs"]
    password = "pa\"ss\\w'rd $HOME `x` é"   # quotes, a backslash, a dollar, backquotes, a space, non-ASCII
    health = {"wanted": basic("elastic", password), "status": 200}

    def answer(method, path, headers, body):
        if headers.get("authorization") != "Basic " + health["wanted"]:
            return 401, {"error": "unable to authenticate user [elastic]"}
        return health["status"], {"status": "yellow"}
    es01 = peers(answer, certfile=str(certs / "es01/es01.crt"), keyfile=str(certs / "es01/es01.key"), delay=0.3)
    command = healthcheck(es01.server_address[1])

    def run(secret: str) -> int:
        env = {"PATH": os.environ["PATH"], "ELASTIC_PASSWORD": secret}
        # CMD-SHELL: /bin/sh -c in es01's working directory, where config/certs/ca/ca.crt is
        return subprocess.run(["sh", "-c", command], env=env, cwd=stack_certs["home"], timeout=30).returncode

    with CommandLines() as ps:
        assert run(password) == 0
    assert es01.requests[-1]["path"] == "/_cluster/health?wait_for_status=yellow&timeout=5s"
    assert es01.requests[-1]["auth"] == f"elastic:{password}"
    assert ps.running("curl"), "the watch saw no curl: it proves nothing"
    assert not ps.leaks(password, health["wanted"]), ps.leaks(password, health["wanted"])
    assert run("not-the-password") != 0
    health["status"] = 408   # yellow not reached within the timeout
    assert run(password) != 0
    # a server whose certificate the CA did not sign
    cert, key = other_ca_certificate(tmp_path)
    impostor = peers(lambda *a: (200, {"status": "green"}), certfile=cert, keyfile=key)
    env = {"PATH": os.environ["PATH"], "ELASTIC_PASSWORD": password}
    refused = subprocess.run(["sh", "-c", healthcheck(impostor.server_address[1])], env=env, cwd=stack_certs["home"],
                             timeout=30)
    assert refused.returncode != 0 and impostor.requests == []


# -- the users job: roles, one user a job, generated passwords in the jobs' own volumes ----------------

USERS_SCRIPT = DOCKER / "users.sh"
JOBS = ("ingest", "detect", "setup")


def role_files() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(ROLES_DIR.glob("*.json"))}


def security_api(statuses: dict | None = None):
    """Elasticsearch's security endpoints the users job calls: 200 with the documented answers, or the
    statuses scripted per path prefix (a list: one a request, the last repeating)."""
    statuses = {k: list(v) for k, v in (statuses or {}).items()}
    reason = "Validation Failed: 1: passwords must be at least [6] characters long;"

    def answer(method, path, headers, body):
        for prefix, queue in statuses.items():
            if path.startswith(prefix):
                status = queue.pop(0) if len(queue) > 1 else queue[0]
                if status != 200:
                    return status, {"error": {"type": "action_request_validation_exception", "reason": reason},
                                    "status": status}
        if path.startswith("/_security/role/"):
            return 200, {"role": {"created": True}}
        if path.startswith("/_security/user/") and path.endswith("/_password"):
            return 200, {}
        return 200, {"created": True}
    return answer


@pytest.fixture
def credentials(tmp_path):
    """The three credentials volumes as the users job mounts them (empty, as on the first start)."""
    root = tmp_path / "credentials"
    for job in JOBS:
        (root / job).mkdir(parents=True)
    return root


def run_users(es_url: str, elastic: str, kibana: str, credentials: Path, ca: str = "", wait: float = 20,
              **extra: str) -> subprocess.CompletedProcess:
    need("bash", "curl", "base64")
    env = {"PATH": os.environ["PATH"], "ES_URL": es_url, "ES_CA": ca, "ELASTIC_PASSWORD": elastic,
           "KIBANA_SYSTEM_PASSWORD": kibana, "ROLES_DIR": str(ROLES_DIR), "CREDENTIALS_DIR": str(credentials),
           "CREDENTIALS_OWNER": f"{os.getuid()}:{os.getgid()}", "WAIT_SECONDS": str(wait), "RETRY_SECONDS": "0.1",
           **extra}
    return subprocess.run(["bash", str(USERS_SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def test_the_compose_file_runs_the_users_script(rendered):
    svc = compose_file()["services"]["users"]
    assert "./docker/users.sh:/usr/local/bin/aiswatch-users.sh:ro" in svc["volumes"]
    assert "./docker/roles:/usr/local/share/aiswatch/roles:ro" in svc["volumes"]
    assert svc["command"] == ["bash", "/usr/local/bin/aiswatch-users.sh"]
    # each job's credentials volume where the script looks for it (CREDENTIALS_DIR/<job>)
    for job in JOBS:
        assert mount(rendered["services"]["users"], f"{job}-credentials") == f"/credentials/{job}"


def test_users_job_sets_kibanas_password_and_puts_a_role_and_user_a_job(stack_certs, peers, credentials):
    certs = stack_certs["certs"]
    es01 = peers(security_api(), certfile=str(certs / "es01/es01.crt"), keyfile=str(certs / "es01/es01.key"),
                 delay=0.15)
    elastic, kibana = "elastic-pw-123", 'kib"ana\\sys-pw'   # a quote and a backslash: the JSON must carry them exactly
    with CommandLines() as ps:
        done = run_users(es01.url, elastic, kibana, credentials, ca=str(stack_certs["ca_dir"] / "ca.crt"))
    assert done.returncode == 0, done.stderr
    roles = role_files()
    assert sorted(roles) == sorted(f"aiswatch_{job}" for job in JOBS)
    assert [(r["method"], r["path"]) for r in es01.requests] == (
        [("POST", "/_security/user/kibana_system/_password")]
        + [("PUT", f"/_security/role/{name}") for name in sorted(roles)]
        + [("PUT", f"/_security/user/aiswatch_{job}") for job in JOBS])
    assert {r["auth"] for r in es01.requests} == {f"elastic:{elastic}"}
    assert {r["type"] for r in es01.requests} == {"application/json"}
    assert es01.requests[0]["body"] == {"password": kibana}
    assert [r["body"] for r in es01.requests[1:4]] == [roles[name] for name in sorted(roles)]
    passwords = {}
    for job, request in zip(JOBS, es01.requests[4:]):
        secret = credentials / job / "password"
        passwords[job] = secret.read_text().strip()
        assert request["body"] == {"password": passwords[job], "roles": [f"aiswatch_{job}"],
                                   "full_name": f"aiswatch {job} job", "metadata": {"managed_by": "aiswatch"}}
        assert re.fullmatch(r"[A-Za-z0-9]{32}", passwords[job])
        # readable by the aiswatch image's user only (here: this test's user), and by nobody else
        assert secret.stat().st_mode & 0o777 == 0o400 and (credentials / job).stat().st_mode & 0o777 == 0o700
        assert (secret.stat().st_uid, secret.stat().st_gid) == (os.getuid(), os.getgid())
    assert len(set(passwords.values())) == 3
    secrets = [elastic, kibana, basic("elastic", elastic), *passwords.values()]
    assert not any(s in done.stdout + done.stderr for s in secrets)
    assert ps.running("curl"), "the watch saw no curl: it proves nothing"
    assert not ps.leaks(*secrets), "a password on a command line: " + "; ".join(ps.leaks(*secrets))
    assert done.stderr.count("generated") == 3
    # a rerun (every `docker compose up`) keeps the passwords and puts everything again
    es01.requests.clear()
    again = run_users(es01.url, elastic, kibana, credentials, ca=str(stack_certs["ca_dir"] / "ca.crt"))
    assert again.returncode == 0 and "generated" not in again.stderr
    assert [r["body"]["password"] for r in es01.requests[4:]] == [passwords[job] for job in JOBS]


def test_users_job_retries_while_elasticsearch_is_not_ready(peers, credentials):
    es01 = peers(security_api({"/_security/user/kibana_system": [503, 502, 200]}))
    done = run_users(es01.url, "elastic-pw-123", "kibana-pw-123", credentials)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("waiting for Elasticsearch") == 2 and "kibana_system password set" in done.stdout
    assert len(es01.requests) == 3 + 3 + 3


def test_users_job_fails_at_once_when_elasticsearch_refuses(peers, credentials):
    es01 = peers(security_api({"/_security/role/": [400]}))
    done = run_users(es01.url, "elastic-pw-123", "kibana-pw-123", credentials)
    assert done.returncode == 1 and len(es01.requests) == 2, "a 4xx must not be retried"
    assert "put the role aiswatch_detect (HTTP 400" in done.stderr and "at least [6] characters" in done.stderr
    es01 = peers(security_api({"/_security/user/kibana_system": [401]}))
    done = run_users(es01.url, "not-the-first-one", "kibana-pw-123", credentials)
    assert done.returncode == 1 and len(es01.requests) == 1
    assert "HTTP 401" in done.stderr and "first boot of the esdata volume" in done.stderr
    assert "not-the-first-one" not in done.stdout + done.stderr


def test_users_job_refuses_placeholders_and_short_passwords(peers, credentials):
    es01 = peers(security_api())
    for elastic, kibana, message in [
            ("change-me-elastic", "kibana-pw-123", "ELASTIC_PASSWORD in .env is still the placeholder"),
            ("elastic-pw-123", "Change-Me-kibana", "KIBANA_SYSTEM_PASSWORD in .env is still the placeholder"),
            ("elastic-pw-123", "short", "KIBANA_SYSTEM_PASSWORD must be at least 6 characters"),
            ("", "kibana-pw-123", "ELASTIC_PASSWORD is not set")]:
        done = run_users(es01.url, elastic, kibana, credentials)
        assert done.returncode == 1 and message in done.stderr, (elastic, kibana, done.stderr)
    assert es01.requests == [], "nothing is sent with a placeholder or a password Elasticsearch would refuse"


def test_users_job_gives_up_when_elasticsearch_never_answers(credentials):
    done = run_users("http://127.0.0.1:9", "elastic-pw-123", "kibana-pw-123", credentials, wait=1)
    assert done.returncode == 1
    assert "no answer from Elasticsearch at http://127.0.0.1:9 after 1s (last: HTTP 000)" in done.stderr


def test_users_job_stops_at_once_on_a_certificate_the_ca_did_not_sign(stack_certs, peers, credentials, tmp_path):
    need("openssl")
    cert, key = other_ca_certificate(tmp_path)
    impostor = peers(security_api(), certfile=cert, keyfile=key)
    started = time.monotonic()
    done = run_users(impostor.url, "elastic-pw-123", "kibana-pw-123", credentials,
                     ca=str(stack_certs["ca_dir"] / "ca.crt"), wait=30)
    assert done.returncode == 1 and "TLS with Elasticsearch" in done.stderr, done.stderr
    assert time.monotonic() - started < 10 and impostor.requests == []
    assert not any((credentials / job / "password").exists() for job in JOBS)


# -- least privilege: each job's user, role and credentials --------------------------------------------

def stack_names() -> IndexNames:
    """The index names of the stack: the image's config, namespace included."""
    return IndexNames(load_config(DOCKER / "aiswatch.yaml", environ={})["elasticsearch"]["namespace"])


def anchorages(names: IndexNames) -> str:
    # the detector's learnt anchorages: a change under way adds the index to IndexNames
    return getattr(names, "anchorages", None) or f"{names.namespace}aiswatch-anchorages"


def test_each_job_logs_in_as_its_own_user_with_its_own_password_file(rendered):
    s = rendered["services"]
    for name, user in JOB_USERS.items():
        env = s[name]["environment"]
        assert env["ES_USERNAME"] == user, name
        # its password: a file in the one credentials volume it mounts, read-only; none in its environment
        own = [v for v in s[name]["volumes"] if "-credentials:" in str(v) or
               (isinstance(v, dict) and str(v.get("source", "")).endswith("-credentials"))]
        assert len(own) == 1, (name, own)
        job = user.removeprefix("aiswatch_")
        target = mount(s[name], f"{job}-credentials")
        assert target and env["AISWATCH_ELASTICSEARCH__PASSWORD_FILE"] == target + "/password"
        assert str(own[0]).endswith(":ro") or (isinstance(own[0], dict) and own[0].get("read_only"))
        secrets = {"ES_PASSWORD", "ES_API_KEY", "ELASTIC_PASSWORD", "KIBANA_PASSWORD", "KIBANA_USERNAME"}
        assert not secrets & set(env), name
    # the superuser's password goes to es01 and the users job only (and Kibana's own to Kibana)
    holders = {name for name, svc in s.items()
               if env_example()["ELASTIC_PASSWORD"] in json.dumps(svc.get("environment", {}))}
    assert holders == {"es01", "users"}
    # the users job makes exactly these users, each with the role of the same name
    assert {f"aiswatch_{job}" for job in JOBS} == set(JOB_USERS.values()) == set(role_files())
    assert 'JOBS=${JOBS:-ingest detect setup}' in USERS_SCRIPT.read_text()


def granted(role: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in role.get("indices", []):
        for name in entry["names"]:
            out.setdefault(name, set()).update(entry["privileges"])
    return out


def test_roles_name_exactly_the_indices_of_each_job():
    """Index names from es_templates.IndexNames: the daemon writes its three, the detector reads the
    daemon's and writes its own, setup manages the daily indices for ILM. Nothing broader anywhere."""
    names, roles = stack_names(), role_files()
    ingest, detect, setup = (granted(roles[f"aiswatch_{job}"]) for job in JOBS)
    assert set(ingest) == {names.messages_pattern, names.ships, names.metrics}
    assert set(detect) == {names.messages_pattern, names.ships, names.events, names.state, anchorages(names)}
    assert set(setup) == {names.messages_pattern}
    writes = {"index", "create_doc", "create", "write", "all", "delete", "delete_index", "manage"}
    assert not writes & detect[names.messages_pattern], "the detector only reads the raw messages"
    assert not {"delete", "delete_index", "manage", "all", "write"} & set().union(*ingest.values(), *detect.values())
    assert setup[names.messages_pattern] == {"manage"}   # ILM deletes as the user who last put the policy
    assert roles["aiswatch_setup"]["cluster"] == ["manage_index_templates", "manage_ilm"]
    assert roles["aiswatch_ingest"]["cluster"] == ["monitor"] and "cluster" not in roles["aiswatch_detect"]
    for name, role in roles.items():
        assert not {"all", "manage", "manage_security", "manage_api_key"} & set(role.get("cluster", [])), name
        assert all(not entry.get("allow_restricted_indices") for entry in role.get("indices", [])), name
    assert all("applications" not in roles[r] for r in ("aiswatch_ingest", "aiswatch_detect"))
    assert roles["aiswatch_setup"]["applications"] == [{"application": "kibana-.kibana", "resources": ["space:default"],
                                                        "privileges": ["feature_savedObjectsManagement.all"]}]


def es_api_types() -> Path:
    path = ES_API_TYPES / "node_modules" / "@elastic" / "elasticsearch" / "lib" / "api" / "types.d.ts"
    if not path.is_file() or shutil.which("node") is None:
        pytest.skip("Elasticsearch's API types are not installed: npm ci --prefix tests/es-api-types "
                    "(run-tests.sh does it where npm is available)")
    return path


def spec_literals(type_name: str) -> set[str]:
    """The names Elasticsearch's specification lists for a string-literal union type."""
    m = re.search(rf"^export type {type_name} = (.*);$", es_api_types().read_text(), re.M)
    assert m, type_name
    return set(re.findall(r"'([^']+)'", m.group(1)))


def test_role_privileges_are_named_as_elasticsearch_names_them():
    """The spec's privilege types end in ``| string`` (so tsc accepts any name): the names are checked here
    against the literals the specification lists, and Kibana's against Kibana's privilege format."""
    cluster, index = spec_literals("SecurityClusterPrivilege"), spec_literals("SecurityIndexPrivilege")
    assert {"monitor", "manage_ilm"} <= cluster and {"auto_configure", "create_doc"} <= index, "parsed too little"
    for name, role in role_files().items():
        assert set(role.get("cluster", [])) <= cluster, (name, set(role.get("cluster", [])) - cluster)
        for entry in role.get("indices", []):
            assert set(entry["privileges"]) <= index, (name, set(entry["privileges"]) - index)
        for app in role.get("applications", []):
            # Kibana stores feature privileges as application privileges of kibana-<kibana.index>:
            # feature_<feature id>.<all|read> on resources space:<space id>
            assert app["application"] == "kibana-.kibana"
            assert all(re.fullmatch(r"feature_[A-Za-z0-9_-]+\.(all|read)", p) for p in app["privileges"])
            assert all(re.fullmatch(r"space:[a-z0-9_-]+|\*", r) for r in app["resources"])


def type_check(bodies: list[tuple[str, str, object]], work: Path) -> subprocess.CompletedProcess:
    """tsc --strict on each body typed as the request of Elasticsearch's client 8.15 (excess keys fail)."""
    tsc = ES_API_TYPES / "node_modules" / "typescript" / "bin" / "tsc"
    es_api_types()
    lines = ["import type * as estypes from '@elastic/elasticsearch/lib/api/types'"]
    for k, (what, type_expr, body) in enumerate(bodies):
        lines.append(f"// {what}\nconst body{k}: {type_expr} = {json.dumps(body, indent=1)}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "node_modules").symlink_to(ES_API_TYPES / "node_modules")
    (work / "bodies.ts").write_text("\n".join(lines) + "\nexport {}\n")
    return subprocess.run(["node", str(tsc), "--noEmit", "--strict", "--skipLibCheck", "bodies.ts"], cwd=work,
                          capture_output=True, text=True, timeout=120)


def test_security_request_bodies_type_check_against_elasticsearchs_specification(peers, credentials, tmp_path):
    """The bodies the users job really sends (recorded from a run), typed as the client's
    SecurityChangePasswordRequest / SecurityPutRoleRequest / SecurityPutUserRequest."""
    es_api_types()
    es01 = peers(security_api())
    done = run_users(es01.url, "elastic-pw-123", "kibana-pw-123", credentials)
    assert done.returncode == 0, done.stderr
    kinds = {"_password": "Omit<estypes.SecurityChangePasswordRequest, 'username'>",
             "role": "Omit<estypes.SecurityPutRoleRequest, 'name'>",
             "user": "Omit<estypes.SecurityPutUserRequest, 'username'>"}
    bodies = []
    for r in es01.requests:
        kind = "_password" if r["path"].endswith("/_password") else r["path"].split("/")[2]
        bodies.append((f"{r['method']} {r['path']}", kinds[kind], r["body"]))
    assert len(bodies) == 7
    checked = type_check(bodies, tmp_path / "sent")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the check can fail: a misspelt key and a misplaced one
    bad = json.loads(json.dumps(bodies[1][2]))
    bad["indicies"] = bad.pop("indices")
    worse = json.loads(json.dumps(bodies[-1][2]))
    worse["role"] = worse.pop("roles")
    refused = type_check([("misspelt", kinds["role"], bad), ("misplaced", kinds["user"], worse)], tmp_path / "bad")
    assert refused.returncode != 0 and "'\"indicies\"' does not exist" in refused.stdout
    assert "'\"role\"' does not exist" in refused.stdout


# -- what each job really asks of Elasticsearch, against what its role grants ---------------------------

class AuthorizingProxy(ThreadingHTTPServer):
    """Between the jobs and the test server (which has no security): each request is checked against the
    role of the job that sends it, as Elasticsearch would with Elastic's documented privileges
    (``request_needs``, ``COVERED_BY``), then forwarded, or answered 403 the way Elasticsearch refuses
    (security_exception). Indices are matched without the test's namespace (``namespace``); a write into
    an index that does not exist yet needs auto_configure (``known``: the indices that exist). Every
    request is recorded with the job, the user it logged in as, what it needed and what was refused."""

    def __init__(self, backend: str, namespace: str):
        self.backend, self.namespace = urlsplit(backend), namespace
        self.job: str | None = None
        self.role: dict = {}
        self.known: set[str] = set()
        self.records: list[dict] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, headers: list, data: bytes, head_length: str | None = None):
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                head = self.command == "HEAD" and head_length
                self.send_header("content-length", head_length if head else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def forward(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                auth = self.headers.get("authorization", "")
                url = urlsplit(self.path)
                record = {"job": proxy.job, "method": self.command, "path": url.path, "query": parse_qs(url.query),
                          "body": body, "user": base64.b64decode(auth.split()[1]).decode().split(":")[0]
                          if auth.startswith("Basic ") else None}
                with proxy._lock:
                    record["needs"], record["refused"], written = proxy.authorize(record)
                    proxy.records.append(record)
                if record["refused"]:
                    reason = (f"action [{self.command} {url.path}] is unauthorized for user [{record['user']}]: "
                              + "; ".join(record["refused"]))
                    data = json.dumps({"error": {"type": "security_exception", "reason": reason},
                                       "status": 403}).encode()
                    return self.reply(403, [("content-type", "application/json"),
                                            ("x-elastic-product", "Elasticsearch")], data)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn = http.client.HTTPConnection(proxy.backend.hostname, proxy.backend.port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    if resp.status < 300:
                        with proxy._lock:
                            proxy.known |= written
                    self.reply(resp.status, resp.getheaders(), data, resp.getheader("content-length"))
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = forward

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def authorize(self, record: dict) -> tuple[list, list[str], set[str]]:
        """(needs as (index without the namespace or None, privilege, entry/privilege pairs that allow it),
        what the role refuses, the concrete indices it writes)."""
        needs, refused, written = [], [], set()
        for index, privilege in request_needs(record):
            if index is not None:
                if not index.startswith(self.namespace):
                    refused.append(f"{index} is outside the test's namespace")
                    continue
                if privilege in ("index", "create_doc") and "*" not in index:
                    written.add(index)
                    if index not in self.known:
                        needs.append((index.removeprefix(self.namespace), "auto_configure"))
                index = index.removeprefix(self.namespace)
            needs.append((index, privilege))
        out = []
        for index, privilege in needs:
            allowed = grants(self.role, index, privilege)
            if not allowed:
                refused.append(f"{privilege} on {index or 'the cluster'}")
            out.append((index, privilege, allowed))
        return out, refused, written


def bulk_needs(body: bytes, default_index: str | None) -> list[tuple[str, str]]:
    needs, lines = [], [line for line in body.split(b"\n") if line.strip()]
    i = 0
    while i < len(lines):
        (op, meta), = json.loads(lines[i]).items()
        index = meta.get("_index", default_index)
        needs.append((index, {"index": "index" if "_id" in meta else "create_doc", "create": "create_doc",
                              "update": "index", "delete": "delete"}[op]))
        i += 1 if op == "delete" else 2
    return needs


def request_needs(r: dict) -> list[tuple[str | None, str]]:
    """(index expression, or None for the cluster; privilege) a request needs, as Elastic's privileges
    page defines them. A request of a kind not listed here is (None, 'unknown: ...'): the test fails
    until someone reads what it needs."""
    method, parts = r["method"], [p for p in r["path"].split("/") if p]
    if not parts:
        return [(None, "monitor")] if method in ("GET", "HEAD") else [(None, f"unknown: {method} /")]
    if parts[0] == "_bulk":
        return bulk_needs(r["body"], None)
    if parts[0] == "_cat" and parts[1:2] == ["indices"]:
        return [(None, "monitor")] + [(i, "monitor") for i in (parts[2].split(",") if len(parts) > 2 else ["*"])]
    if parts[0] == "_index_template" and method == "PUT":
        return [(None, "manage_index_templates")]
    if parts[0] == "_ilm" and parts[1:2] == ["policy"] and method == "PUT":
        return [(None, "manage_ilm")]
    if parts[0].startswith("_"):
        return [(None, f"unknown: {method} {r['path']}")]
    indices, api = parts[0].split(","), parts[1] if len(parts) > 1 else None
    if api is None and method == "HEAD":
        privilege = "view_index_metadata"   # index exists (indices:admin/get)
    elif api in ("_search", "_count", "_mget") or (api == "_doc" and method in ("GET", "HEAD")):
        privilege = "read"
    elif api == "_doc" and method in ("PUT", "POST"):
        privilege = "create_doc" if r["query"].get("op_type") == ["create"] or len(parts) == 2 else "index"
    elif api == "_create":
        privilege = "create_doc"
    elif api == "_update":
        privilege = "index"
    elif api == "_bulk":
        return bulk_needs(r["body"], parts[0])
    elif api == "_refresh":
        privilege = "maintenance"
    else:
        return [(None, f"unknown: {method} {r['path']}")]
    return [(i, privilege) for i in indices]


# which granted privilege covers a needed one (Elastic's privileges page: all > write > index > create_doc ...)
COVERED_BY = {
    "read": {"read", "all"},
    "view_index_metadata": {"view_index_metadata", "manage", "all"},
    "monitor": {"monitor", "manage", "all"},
    "maintenance": {"maintenance", "manage", "all"},
    "index": {"index", "write", "all"},
    "create_doc": {"create_doc", "create", "index", "write", "all"},
    "delete": {"delete", "write", "all"},
    "auto_configure": {"auto_configure", "create_index", "manage", "all"},   # the first write creates the index
    "manage_index_templates": {"manage_index_templates", "manage", "all"},
    "manage_ilm": {"manage_ilm", "manage", "all"},
}


def grants(role: dict, index: str | None, privilege: str) -> list[tuple[int, str]]:
    """The role's (entry number, privilege) pairs that allow ``privilege`` on ``index`` (None: the cluster)."""
    allowed = COVERED_BY.get(privilege, set())
    if index is None:
        return [(-1, p) for p in role.get("cluster", []) if p in allowed]
    return [(k, p) for k, entry in enumerate(role.get("indices", [])) for p in entry["privileges"]
            if p in allowed and any(fnmatch.fnmatchcase(index, pattern) for pattern in entry["names"])]


def jump_vessel_lines(t0: int) -> list[str]:
    """NMEA lines (the simulator's tag blocks carry the message times) of the planted scenario's MIRAGE:
    a position jump of 40 nm at hour 5, which the detector reports as spoofing (an event, and a risk
    score on ships-seen)."""
    from aiswatch.behavior.scenarios import planted
    from aiswatch.ingest.simulation import Simulator

    vessels = [v for v in planted(t0) if v[0].mmsi == 219123005]
    return [line for _, lines in Simulator(vessels, t0, seed=1, station="jump").messages(8 * 3600) for line in lines]


def aiswatch(args: list[str], env: dict, cwd: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from aiswatch.cli import main; main()", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_each_job_works_with_its_role_and_uses_all_of_it(rendered, es_url, tmp_path):
    """setup, the daemon and the detector run with the compose file's commands and users against the test
    server behind a proxy that authorizes each request with the job's role as Elastic defines the
    privileges: each job must do its work (templates; messages, ships and metrics indexed; an event
    detected and written), nothing may be refused but what the code expects to be refused, and every
    privilege a role grants must be used by its job. What requests cannot show is listed where it is
    excused: ILM's deletions run as the setup user (manage on ais-*), Kibana's privileges (the import
    goes to Kibana, checked above), and the anchorages index until the detector writes it."""
    from aiswatch.embedded import free_port
    from aiswatch.ingest.esclient import make_client

    from helpers import delete_namespace

    s, roles = rendered["services"], role_files()
    names = IndexNames(f"tj{uuid.uuid4().hex[:6]}-")
    proxy = AuthorizingProxy(es_url, names.namespace)
    direct = make_client(es_url)
    password_file = tmp_path / "password"
    password_file.write_text("job-password-123\n")
    port = free_port()
    config = tmp_path / "aiswatch.yaml"
    config.write_text(f"sources:\n  - type: udp\n    host: 127.0.0.1\n    port: {port}\n")

    def job_env(service: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "AISWATCH_", "KIBANA_"))}
        env.update({k: str(v) for k, v in s[service]["environment"].items() if k.startswith(("ES_", "AISWATCH_"))})
        env.update(ES_URL=proxy.url, AISWATCH_ELASTICSEARCH__PASSWORD_FILE=str(password_file),
                   AISWATCH_HOME=str(tmp_path / "home"), AISWATCH_METRICS__STATUS_FILE=str(tmp_path / "status.json"))
        env.pop("ES_CA_CERTS")   # the proxy speaks plain HTTP; TLS is tested above
        return env

    def command(service: str) -> list[str]:
        cmd = s[service]["command"]
        return (cmd.split() if isinstance(cmd, str) else list(cmd)) + ["--namespace", names.namespace]

    def start(job: str) -> None:
        proxy.job, proxy.role = job, roles[JOB_USERS[job]]
        proxy.known = {row["index"] for row in direct.cat.indices(index=names.namespace + "*", format="json")}

    try:
        # setup: templates and the retention policy
        start("setup")
        done = aiswatch(command("setup"), job_env("setup"), tmp_path)
        out, _ = done.communicate(timeout=120)
        assert done.returncode == 0, out
        templates = direct.indices.get_index_template(name=names.namespace + "*")["index_templates"]
        assert {t["name"] for t in templates} == set(es_templates_names(names))

        # the daemon: a jump vessel's eight hours over UDP, its status (as the daemon's user), then SIGTERM
        t0 = int((time.time() - 8 * 3600) // 600 * 600) + 270
        lines = jump_vessel_lines(t0)
        start("aiswatch")
        env = job_env("aiswatch") | {"AISWATCH_METRICS__INDEX_SECONDS": "1"}
        cmd = ["--config", str(config)] + [w if w != "--simulate" else "--no-simulate" for w in command("aiswatch")]
        daemon = aiswatch(cmd, env, tmp_path)
        try:
            status = tmp_path / "status.json"
            deadline = time.monotonic() + 60
            while not status.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            import socket
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for k, line in enumerate(lines):
                    sock.sendto((line + "\r\n").encode(), ("127.0.0.1", port))
                    if k % 50 == 49:
                        time.sleep(0.01)
            counters = {}
            while time.monotonic() < deadline:
                counters = json.loads(status.read_text())["counters"]
                if counters.get("lines_in", 0) >= len(lines) and counters.get("documents_indexed", 0) > 0:
                    break
                time.sleep(0.2)
            assert counters.get("lines_in") == len(lines) and counters.get("documents_indexed"), counters
            time.sleep(2.5)   # a metrics document or two
            shown = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "status",
                                    "--namespace", names.namespace], env=env, cwd=tmp_path, capture_output=True,
                                   text=True, timeout=60)
            daemon.send_signal(15)
            out, _ = daemon.communicate(timeout=60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.communicate()
        assert daemon.returncode == 0, out
        summary = dict(re.findall(r"^(documents indexed|bulk errors|dead letters)\s+(\d+)$", out, re.M))
        assert int(summary["documents indexed"]) > 0 and summary.get("bulk errors", "0") == "0", out
        # the daemon's user may list its own indices, not the detector's: status leaves those out
        assert shown.returncode == 0 and names.ships in shown.stdout and names.events not in shown.stdout, shown.stdout

        # the detector: one scheduled run over the eight hours
        direct.indices.refresh(index=names.namespace + "*")
        start("detect")
        env = job_env("detect") | {"AISWATCH_DETECT__SCHEDULE__MAX_WINDOW_HOURS": "9",
                                   "AISWATCH_DETECT__SCHEDULE__LAG_MINUTES": "0"}
        detect = aiswatch(command("detect") + ["--max-runs", "1", "--from", str(t0)], env, tmp_path)
        # after its last run the scheduler waits out the period (10 minutes) before it exits: once the run
        # is reported, SIGTERM ends the wait (as `docker compose stop` would)
        timer = threading.Timer(180, detect.kill)
        timer.start()
        out = ""
        for line in detect.stdout:
            out += line
            if re.search(r" events \(\d+ new", line):
                detect.send_signal(15)
        timer.cancel()
        detect.wait(timeout=60)
        assert detect.returncode == 0 and re.search(r": [1-9]\d* events \([1-9]\d* new", out), out
        direct.indices.refresh(index=names.namespace + "*")
        assert direct.count(index=names.events)["count"] >= 1
        assert direct.get(index=names.ships, id="219123005")["_source"].get("risk"), "the identity update of ships-seen"
    finally:
        proxy.shutdown()
        proxy.server_close()
        delete_namespace(direct, names.namespace)
        direct.close()

    for job in ("setup", "aiswatch", "detect"):
        records = [r for r in proxy.records if r["job"] == job]
        assert records and {r["user"] for r in records} == {JOB_USERS[job]}, f"{job} must log in as {JOB_USERS[job]}"
    assert not any(r["path"].startswith(("/_index_template", "/_ilm")) for r in proxy.records if r["job"] != "setup")
    # refused: only what the code expects and handles
    refused = [(r["job"], r["method"], r["path"].replace(names.namespace, ""), r["refused"])
               for r in proxy.records if r["refused"]]
    expected = [("aiswatch", "GET", f"/_cat/indices/{stack_names().events}", [f"monitor on {stack_names().events}"])]
    assert refused == expected, refused

    # every privilege granted is used, but for what requests cannot show (see the docstring)
    names0 = stack_names()
    unused = []
    for job in ("setup", "aiswatch", "detect"):
        role = roles[JOB_USERS[job]]
        used = {pair for r in proxy.records if r["job"] == job and not r["refused"] for _, _, allowed in r["needs"]
                for pair in allowed}
        offered = {(-1, p) for p in role.get("cluster", [])}
        offered |= {(k, p) for k, entry in enumerate(role.get("indices", [])) for p in entry["privileges"]}
        for k, p in sorted(offered - used):
            entry = role["indices"][k] if k >= 0 else None
            if job == "setup" and entry and entry["names"] == [names0.messages_pattern] and p == "manage":
                continue   # ILM's delete phase runs with the privileges of the user who last put the policy
            if job == "detect" and entry and anchorages(names0) in entry["names"] and not any(
                    anchorages(names0) in r["path"] for r in proxy.records):
                continue   # the anchorages index: granted ahead of the detector writing it
            unused.append(f"{job}: {p} on {entry['names'] if entry else 'the cluster'}")
    assert not unused, "granted but never used: " + "; ".join(unused)


def es_templates_names(names: IndexNames) -> list[str]:
    from aiswatch import es_templates

    return list(es_templates.all_templates(names.namespace))
