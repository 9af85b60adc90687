"""The embedded ES-compatible server used when no Elasticsearch is configured.

aiswatch runs noida-db (an Elasticsearch-8-flavoured server from PyPI that keeps its data on disk)
as a child process. We start the bundled binary directly, not its Python wrapper, so that stopping
or killing this object really stops the server.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from importlib.resources import files
from pathlib import Path

from aiswatch.common.processes import pid_alive

log = logging.getLogger(__name__)


class EmbeddedServerError(RuntimeError):
    exit_status = 1   # one Error: line on the command line (aiswatch.cli.errors)


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


# -- one embedded server per data directory, shared by every aiswatch process that needs it --------

RECORD = "server.json"   # where the running server is: {"pid", "port", "url"}
USERS = "users"          # one file per process using it: the last to leave stops it


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class SharedServer:
    """The embedded server of one data directory, found (or started) and shared.

    ``acquire`` reuses the server recorded in ``<data_dir>/server.json`` if its process lives and
    answers; otherwise it starts one on ``port`` if that is free, else on any free port, so it never
    takes (or talks to) a port some other Elasticsearch holds, and records where it runs. Each
    process using it registers itself; ``release`` leaves it running for the others and stops it
    when the last one leaves, whoever started it.
    """

    def __init__(self, data_dir: str | os.PathLike, port: int = 9250):
        self.data_dir = Path(data_dir)
        self.port = port
        self.url: str | None = None
        self.pid: int | None = None
        self.started_here = False

    def _locked(self):
        import fcntl

        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.data_dir / ".lock", "a+")
        fcntl.flock(lock, fcntl.LOCK_EX)
        return lock

    def _recorded(self) -> dict | None:
        try:
            record = json.loads((self.data_dir / RECORD).read_text())
            pid, url = int(record["pid"]), str(record["url"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not pid_alive(pid):
            return None
        probe = EmbeddedServer(self.data_dir, port=int(record["port"]))
        return record if probe.healthy() and probe.url == url else None

    def find(self) -> str | None:
        """The URL of this data directory's running server, or None."""
        record = self._recorded()
        return None if record is None else record["url"]

    def acquire(self, start: bool = True, timeout: float = 30.0) -> str:
        """The URL of the running server (started if needed and ``start``); EmbeddedServerError else."""
        lock = self._locked()
        try:
            record = self._recorded()
            if record is None:
                if not start:
                    raise EmbeddedServerError(f"no embedded server runs for {self.data_dir}")
                port = self.port if _port_free(self.port) else free_port()
                if port != self.port:
                    log.info("port %d is taken by another program: the embedded server uses %d", self.port, port)
                server = EmbeddedServer(self.data_dir, port=port).start(timeout)
                assert server.process is not None
                record = {"pid": server.process.pid, "port": port, "url": server.url}
                (self.data_dir / RECORD).write_text(json.dumps(record))
                self.started_here = True
            self.url, self.pid = record["url"], int(record["pid"])
            users = self.data_dir / USERS
            users.mkdir(exist_ok=True)
            (users / str(os.getpid())).touch()
            return record["url"]
        finally:
            lock.close()

    def release(self, grace: float = 10.0) -> None:
        """This process no longer uses the server; the last user stops it."""
        if self.pid is None:
            return
        lock = self._locked()
        try:
            users = self.data_dir / USERS
            (users / str(os.getpid())).unlink(missing_ok=True)
            others = [u for u in users.iterdir() if u.name.isdigit() and pid_alive(int(u.name))] if users.is_dir() else []
            for stale in (users.iterdir() if users.is_dir() else []):
                if stale.name.isdigit() and stale not in others:
                    stale.unlink(missing_ok=True)
            if others:
                log.info("the embedded server keeps running for %d other aiswatch process(es)", len(others))
                return
            _terminate(self.pid, grace)
            (self.data_dir / RECORD).unlink(missing_ok=True)
        finally:
            self.pid = None
            lock.close()


def _terminate(pid: int, grace: float) -> None:
    """SIGTERM (the server saves its data), SIGKILL after ``grace`` seconds; reaped if our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:   # not our child: poll its existence
            if not pid_alive(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
