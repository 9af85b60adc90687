"""Helpers shared by the tests: reading a source, answering like Elasticsearch over HTTP, the
installed package layout."""
import configparser
import json
import shutil
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, str]:
    """setup.cfg's package_dir: import name -> folder (``aiswatch.ingest`` -> ``ingest``)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    rows = [r.split("=") for r in cfg["options"]["package_dir"].strip().splitlines() if r.strip()]
    return {name.strip(): folder.strip() for name, folder in rows}


def installed_layout(dest: Path, extensions: bool = True) -> Path:
    """A copy of the sources laid out as a wheel installs them (``dest/aiswatch/ingest/...``), for
    tools that walk a package's directory (import-linter) or runs from a modified copy; ``dest``."""
    ignore = ["__pycache__"] + ([] if extensions else ["*.so"])
    for name, folder in sorted(package_dirs().items()):
        shutil.copytree(ROOT / folder, dest.joinpath(*name.split(".")), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*ignore))
    return dest


def reply_json(handler, status: int, payload) -> None:
    """Answer an ``http.server`` request as Elasticsearch does: JSON with its product header."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("X-Elastic-Product", "Elasticsearch")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def collect(src, n: int, timeout: float = 15.0) -> list:
    """The first n lines of src, closing it from a watchdog if they do not come; src is closed after."""
    out = []
    watchdog = threading.Timer(timeout, src.close)
    watchdog.start()
    try:
        for line in src.lines():
            out.append(line)
            if len(out) == n:
                break
    finally:
        watchdog.cancel()
        src.close()
    return out
