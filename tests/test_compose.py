"""The one-command stack: docker-compose.yml is valid for a real compose client, every image is pinned,
the services start in the right order with healthchecks, and no secret is in the repository.

``docker-compose config`` (the Debian ``docker-compose`` client) or ``docker compose config`` parses
and validates the file without a Docker engine; the test is skipped, saying so, when neither exists.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aiswatch.config import load_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


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
    assert set(rendered["services"]) == {"es01", "kibana-password", "kibana", "setup", "aiswatch", "detect"}


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


def test_services_order_health_and_resources(rendered):
    s = rendered["services"]
    for name in ("es01", "kibana", "aiswatch"):
        assert s[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    assert s["kibana"]["depends_on"]["es01"]["condition"] == "service_healthy"
    assert s["kibana"]["depends_on"]["kibana-password"]["condition"] == "service_completed_successfully"
    assert s["setup"]["depends_on"]["kibana"]["condition"] == "service_healthy"
    assert s["aiswatch"]["depends_on"]["es01"]["condition"] == "service_healthy"
    assert s["detect"]["depends_on"]["es01"]["condition"] == "service_healthy"
    # the commands the stack runs
    assert s["setup"]["command"][:3] == ["setup", "--kibana", "http://kibana:5601"]
    assert s["aiswatch"]["command"] in ("run --simulate", ["run", "--simulate"])
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
    assert {"esdata", "kibanadata", "aiswatch-data"} <= set(rendered["volumes"])
    for name in ("es01", "kibana", "aiswatch"):
        assert any(str(v).split(":")[0] in rendered["volumes"] or (isinstance(v, dict) and v.get("source") in rendered["volumes"])
                   for v in s[name]["volumes"])


def test_every_image_is_pinned_and_the_stack_versions_match():
    doc = yaml.safe_load(COMPOSE.read_text())
    images = {name: svc.get("image") for name, svc in doc["services"].items()}
    assert all(images.values()), f"services without an image tag: {images}"
    for name, image in images.items():
        assert "${" not in image, f"{name}: image version must be written down, not a variable"
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
    es = images["es01"].rpartition(":")[2]
    assert images["kibana"].rpartition(":")[2] == es and es.startswith("8.")
    from aiswatch.kibana.saved_objects import KIBANA_VERSION
    assert KIBANA_VERSION == es, "the dashboard panels should carry the Kibana version the stack runs"
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), f"Dockerfile base {base} is not pinned"
    assert "librtlsdr0" in dockerfile
    assert 'ENTRYPOINT ["aiswatch"]' in dockerfile


def test_the_image_config_is_valid_and_listens_for_receivers():
    cfg = load_config(ROOT / "docker" / "aiswatch.yaml", environ={})
    assert cfg["sources"] == [{"type": "udp", "host": "0.0.0.0", "port": 10110}]
    assert "docker/aiswatch.yaml" in (ROOT / "Dockerfile").read_text()


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
        found.append(f"{name}={value[:4]}…")
    return found


def test_the_secret_scan_finds_secrets():
    assert secrets_in("ELASTIC_PASSWORD=Tr0ub4dor&3")
    assert secrets_in('{"APIKey": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}')
    assert secrets_in("  password: hunter2hunter2")
    assert not secrets_in("ES_PASSWORD: ${ELASTIC_PASSWORD:?set it}\nELASTIC_PASSWORD=change-me-elastic\n"
                          "password = read_secret(env)\napi_key=api_key or None\npassword_file: null")


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


# -- the kibana-password one-shot and es01's placeholder check, run here with bash and curl ------------

KIBANA_PASSWORD_SCRIPT = ROOT / "docker" / "kibana-password.sh"


class PasswordEndpoint:
    """Elasticsearch's ``POST /_security/user/kibana_system/_password`` answering a scripted list of statuses
    (the last one repeats), recording each request's credentials and body."""

    def __init__(self, statuses):
        import base64
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses, self.requests = list(statuses), []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                auth = base64.b64decode(self.headers.get("authorization", "Basic ").split()[1]).decode()
                peer.requests.append({"path": self.path, "auth": auth, "body": json.loads(body),
                                      "type": self.headers.get("content-type")})
                status = peer.statuses.pop(0) if len(peer.statuses) > 1 else peer.statuses[0]
                answer = {} if status == 200 else {"error": {"type": "action_request_validation_exception",
                          "reason": "Validation Failed: 1: passwords must be at least [6] characters long;"},
                          "status": status}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def password_endpoint():
    peers = []

    def start(*statuses):
        peers.append(PasswordEndpoint(statuses))
        return peers[-1]
    yield start
    for p in peers:
        p.close()


def run_password_script(es_url: str, elastic: str, kibana: str, wait: float = 20):
    if not (shutil.which("bash") and shutil.which("curl")):
        pytest.skip("bash and curl are needed to run docker/kibana-password.sh")
    env = {"PATH": os.environ["PATH"], "ES_URL": es_url, "ELASTIC_PASSWORD": elastic,
           "KIBANA_SYSTEM_PASSWORD": kibana, "WAIT_SECONDS": str(wait), "RETRY_SECONDS": "0.1"}
    return subprocess.run(["bash", str(KIBANA_PASSWORD_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_the_compose_file_runs_the_password_script():
    doc = yaml.safe_load(COMPOSE.read_text())
    svc = doc["services"]["kibana-password"]
    assert svc["volumes"] == ["./docker/kibana-password.sh:/usr/local/bin/kibana-password.sh:ro"]
    assert svc["command"] == ["bash", "/usr/local/bin/kibana-password.sh"]
    assert svc["environment"]["ES_URL"] == "http://es01:9200"


def test_password_script_retries_while_elasticsearch_is_not_ready(password_endpoint):
    es = password_endpoint(503, 502, 200)
    tricky = 'kib"ana\\sys-pw'  # a quote and a backslash: the JSON body must still carry it exactly
    done = run_password_script(es.url, "elastic-pw-123", tricky)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("waiting for Elasticsearch") == 2 and "kibana_system password set" in done.stdout
    assert len(es.requests) == 3
    assert es.requests[-1] == {"path": "/_security/user/kibana_system/_password", "auth": "elastic:elastic-pw-123",
                               "body": {"password": tricky}, "type": "application/json"}
    assert tricky not in done.stdout + done.stderr and "elastic-pw-123" not in done.stdout + done.stderr


def test_password_script_fails_at_once_when_elasticsearch_refuses(password_endpoint):
    es = password_endpoint(400)
    done = run_password_script(es.url, "elastic-pw-123", "kibana-pw-123")
    assert done.returncode == 1 and len(es.requests) == 1, "a 4xx must not be retried"
    assert "HTTP 400" in done.stderr and "passwords must be at least [6] characters long" in done.stderr
    es = password_endpoint(401)
    done = run_password_script(es.url, "not-the-first-one", "kibana-pw-123")
    assert done.returncode == 1 and len(es.requests) == 1
    assert "HTTP 401" in done.stderr and "first boot of the esdata volume" in done.stderr
    assert "not-the-first-one" not in done.stdout + done.stderr


def test_password_script_refuses_placeholders_and_short_passwords(password_endpoint):
    es = password_endpoint(200)
    for elastic, kibana, message in [
            ("change-me-elastic", "kibana-pw-123", "ELASTIC_PASSWORD in .env is still the placeholder"),
            ("elastic-pw-123", "Change-Me-kibana", "KIBANA_SYSTEM_PASSWORD in .env is still the placeholder"),
            ("elastic-pw-123", "short", "KIBANA_SYSTEM_PASSWORD must be at least 6 characters"),
            ("", "kibana-pw-123", "ELASTIC_PASSWORD is not set")]:
        done = run_password_script(es.url, elastic, kibana)
        assert done.returncode == 1 and message in done.stderr, (elastic, kibana, done.stderr)
    assert es.requests == [], "nothing is sent with a placeholder or a password Elasticsearch would refuse"


def test_password_script_gives_up_when_elasticsearch_never_answers():
    done = run_password_script("http://127.0.0.1:9", "elastic-pw-123", "kibana-pw-123", wait=1)
    assert done.returncode == 1
    assert "no answer from Elasticsearch at http://127.0.0.1:9 after 1s (last: HTTP 000)" in done.stderr


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
