"""Whose a spool is: the cluster and namespace its documents are for, the process that holds it,
and the directory each process takes.

- ``SpoolTarget``: the cluster (its UUID where the server reports one, else its URL without
  credentials) and the namespace; ``target.json`` in the spool directory records it, and a spool
  with documents for another target is refused (``SpoolForeign``) in one line that says how to
  deliver or discard them.
- ``lock_directory``: the ``lock`` file, ``flock``ed with the holder's pid in it; a second process
  gets ``SpoolBusy``.
- ``spool_dir_for``: a directory under a root for a target that no running process holds, so
  every process has a spool of its own.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson

log = logging.getLogger(__name__)

SEGMENT = re.compile(r"^seg-(\d{9})\.ndjson$")
TARGET_FILE = "target.json"


class SpoolError(OSError):
    """The spool could not be used (disk error, permissions, taken, foreign): nothing was lost."""


class SpoolBusy(SpoolError):
    """Another process holds the spool directory."""


class SpoolForeign(SpoolError):
    """The spool holds documents meant for another cluster or namespace."""


@dataclass(frozen=True)
class SpoolTarget:
    """Where a spool's documents are meant to go: the cluster (its UUID where the server reports
    one, else its URL, without credentials) and the namespace."""

    url: str
    namespace: str = ""
    cluster_uuid: str | None = None

    @staticmethod
    def for_url(url: str, namespace: str = "", cluster_uuid: str | None = None) -> "SpoolTarget":
        return SpoolTarget(normalize_url(url), namespace, cluster_uuid or None)

    def same_cluster(self, other: "SpoolTarget") -> bool:
        if self.cluster_uuid and other.cluster_uuid:
            return self.cluster_uuid == other.cluster_uuid
        return self.url == other.url

    def accepts(self, other: "SpoolTarget") -> bool:
        """Documents spooled for ``other`` may be delivered to this target."""
        return self.namespace == other.namespace and self.same_cluster(other)

    def describe(self) -> str:
        uuid = f" (cluster {self.cluster_uuid})" if self.cluster_uuid else ""
        return f"{self.url}{uuid}, namespace {self.namespace!r}"

    def as_json(self) -> dict:
        return {"url": self.url, "namespace": self.namespace, "cluster_uuid": self.cluster_uuid}


def normalize_url(url: str) -> str:
    """``scheme://host:port/path`` without credentials, the default port made explicit."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    scheme = (parts.scheme or "http").lower()
    port = parts.port or (443 if scheme == "https" else 9200)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def read_target(directory: Path) -> SpoolTarget | None:
    """The target recorded in ``directory`` (None: none, or unreadable)."""
    try:
        data = orjson.loads((directory / TARGET_FILE).read_bytes())
        return SpoolTarget(str(data["url"]), str(data.get("namespace") or ""), data.get("cluster_uuid") or None)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("spool target file %s is unreadable (%s); treating the spool as unclaimed",
                  directory / TARGET_FILE, exc)
        return None


def write_target(directory: Path, target: SpoolTarget) -> None:
    tmp = directory / (TARGET_FILE + ".tmp")
    tmp.write_bytes(orjson.dumps(target.as_json()))
    os.replace(tmp, directory / TARGET_FILE)


def lock_directory(directory: Path):
    """The directory's lock file, locked (two processes appending and acknowledging in one spool
    would corrupt each other's position), with this process's pid in it."""
    lock_file = open(directory / "lock", "a+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock_file.seek(0)
        holder = lock_file.read().strip()
        lock_file.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise SpoolBusy(f"spool directory {directory} is in use by another aiswatch process{who}; "
                        "give this one its own --spool-dir") from None
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(str(os.getpid()))
    lock_file.flush()
    return lock_file


def foreign_message(directory: Path, depth: int, recorded: SpoolTarget, target: SpoolTarget) -> str:
    """The one line that refuses a spool meant for another cluster, and says what to do."""
    ns = f" --namespace {recorded.namespace}" if recorded.namespace else ""
    return (f"spool {directory} holds {depth} documents meant for {recorded.describe()}, not for "
            f"{target.describe()}: deliver them with `aiswatch ingest file /dev/null --es {recorded.url}{ns} "
            f"--spool-dir {directory}`, or discard them by deleting {directory} (to send them here instead, "
            f"delete {directory / TARGET_FILE})")


def spool_dir_for(root: str | os.PathLike, target: SpoolTarget) -> Path:
    """A spool directory under ``root`` for ``target`` that no running process holds, so that every
    process has its own: one with documents for ``target`` first (a previous run's), else an empty
    one of ``target``'s, else a new one (``<host>-<port>-<namespace>[-<n>]``). Spools of other
    targets are left alone (their own runs deliver them)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _warn_about_unowned_segments(root)
    stem = _slug(target)
    candidates = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith(stem)),
                        key=lambda p: (p.name != stem, len(p.name), p.name))
    free_empty = None
    for path in candidates:
        recorded = read_target(path)
        if recorded is not None and not target.accepts(recorded):
            continue
        if not _unlocked(path):
            continue
        if _holds_records(path):
            return path
        if free_empty is None:
            free_empty = path
    if free_empty is not None:
        return free_empty
    n = 1
    while True:
        path = root / (stem if n == 1 else f"{stem}-{n}")
        if not path.exists():
            return path
        n += 1


def _slug(target: SpoolTarget) -> str:
    parts = urlsplit(target.url)
    raw = f"{parts.hostname or 'es'}-{parts.port or 9200}-{target.namespace.rstrip('-_.') or 'default'}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def _unlocked(path: Path) -> bool:
    try:
        with open(path / "lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        return True
    except OSError:
        return False


def _holds_records(path: Path) -> bool:
    return any(SEGMENT.match(p.name) and p.stat().st_size for p in path.iterdir())


def _warn_about_unowned_segments(root: Path) -> None:
    """Segments directly under ``root`` were written by an aiswatch that used it as the spool itself."""
    segments = [p for p in root.iterdir() if SEGMENT.match(p.name)]
    if segments:
        log.warning("%s holds %d spool segments of an older aiswatch that did not record their cluster; deliver "
                    "them with `aiswatch ingest file /dev/null --es URL --spool-dir %s`", root, len(segments), root)
