"""The embedded ES-compatible server used when no Elasticsearch is configured.

aiswatch runs noida-db (an Elasticsearch-8-flavoured server from PyPI that keeps its data on disk)
as a child process. We start the bundled binary directly, not its Python wrapper, so that stopping
or killing this object really stops the server.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from importlib.resources import files
from pathlib import Path


class EmbeddedServerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def noida_binary() -> str:
    try:
        path = files("noida_db").joinpath("noida-db")
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedServerError("noida-db is not installed: pip install noida-db, or give --es URL") from exc
    if not path.is_file():
        raise EmbeddedServerError(f"noida-db binary not found at {path}")
    os.chmod(str(path), 0o755)
    return str(path)


class EmbeddedServer:
    """A noida-db Elasticsearch endpoint on 127.0.0.1, data kept in ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, log_path: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else self.data_dir / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "EmbeddedServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [noida_binary(), "start", "--data-dir", str(self.data_dir), "--only", "elasticsearch",
             "--host", "127.0.0.1", "--elasticsearch-port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(f"noida-db exited with {self.process.returncode}; see {self.log_path}")
            if self.healthy():
                return self
            time.sleep(0.1)
        self.kill()
        raise EmbeddedServerError(f"noida-db did not answer on {self.url} within {timeout} s; see {self.log_path}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1) as resp:
                return "version" in json.loads(resp.read())
        except (OSError, ValueError):
            return False

    def stop(self, grace: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, data saved), then kill after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
