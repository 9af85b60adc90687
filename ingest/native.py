"""Which ingest modules are compiled with mypyc (setup.py), and the guard that keeps them honest.

A compiled module (``ingest/nmea.cpython-311-x86_64-linux-gnu.so`` beside ``ingest/nmea.py``)
wins over its source on import, so after an edit or a ``git pull`` the old code would run. The
build writes the SHA-256 of each compiled source to ``SOURCES_FILE``; ``ingest/__init__.py``
calls ``guard()`` first thing, and if any source differs, or ``AISWATCH_PURE_PYTHON=1`` is set,
every module of the list is loaded from its source (all of them: compiled modules call each
other directly, so a fresh one beside a stale one would still run the stale one's code).

Imported by setup.py on its own (no ``ingest`` package yet), so it imports only the standard library.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

# one line's way from text to document (sources excepted), the counts it keeps, the decode
# process's hand-over, and the indexing side's per-document work: the sink's queue and batches,
# the bulk exchange, the batch's delivery and the ships-seen merge (the spool, the dead letters
# and the cluster's availability run per batch or per outage and stay Python)
COMPILED = ("lines", "timeprefix", "counters", "nmea", "assembler", "decoder", "geohash", "documents",
            "ships_seen", "pipeline", "worker", "batching", "bulk", "ships_seen_updater", "delivery", "sink")
SOURCES_FILE = "native-sources.txt"
PACKAGE = "aiswatch.ingest"  # the import name of this folder (setup.cfg's package_dir)

_HERE = Path(__file__).resolve().parent
_state = {"mode": None, "reason": ""}


def mode() -> str:
    """'compiled', 'python' or 'python (<why>)': how the COMPILED modules run in this process."""
    return _state["mode"] or "python"


class _SourceFinder:
    """Finds ``aiswatch.ingest.<name>`` for the COMPILED names as their ``.py`` sources, never the extension."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in COMPILED:
            return None
        source = _HERE / f"{name}.py"
        return importlib.util.spec_from_file_location(
            fullname, source, loader=importlib.machinery.SourceFileLoader(fullname, str(source)))


def _compiled_present() -> bool:
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return any((_HERE / f"{name}{suffix}").exists() for name in COMPILED for suffix in suffixes)


def source_digests() -> dict[str, str]:
    """SHA-256 of each COMPILED module's source beside this file (those that exist): what the
    build records in SOURCES_FILE and the guard compares with it."""
    digests = {}
    for name in COMPILED:
        try:
            digests[name] = hashlib.sha256((_HERE / f"{name}.py").read_bytes()).hexdigest()
        except OSError:
            continue  # installed without sources: nothing to prefer
    return digests


def _stale_sources() -> list[str]:
    """The COMPILED sources that differ from what the extensions were built from."""
    try:
        built = dict(line.split() for line in (_HERE / SOURCES_FILE).read_text().splitlines() if line.strip())
    except (OSError, ValueError):
        return list(COMPILED)
    return [name for name, digest in source_digests().items() if built.get(name) != digest]


def guard() -> None:
    """Decide once per process how the COMPILED modules load (see the module docstring)."""
    if _state["mode"] is not None:
        return
    if not _compiled_present():
        _state["mode"] = "python"
        return
    if os.environ.get("AISWATCH_PURE_PYTHON") == "1":
        reason = "AISWATCH_PURE_PYTHON=1"
    else:
        stale = _stale_sources()
        if not stale:
            _state["mode"] = "compiled"
            return
        reason = f"{', '.join(f'ingest/{n}.py' for n in stale)} changed since compiled"
        print(f"aiswatch: {reason}: running the Python sources (pip install -e . compiles them again)",
              file=sys.stderr)
    sys.meta_path.insert(0, _SourceFinder())
    _state["mode"] = f"python ({reason})"
