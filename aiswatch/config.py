"""Configuration: defaults <- YAML file <- environment.

Every option is documented in ``aiswatch.example.yaml``. Environment overrides use
``AISWATCH_<SECTION>__<KEY>`` (e.g. ``AISWATCH_SINK__BATCH_SIZE=5000``); ``ES_URL`` sets
``elasticsearch.url``. Secrets (the aisstream API key, Elasticsearch credentials) are read only
from the environment or from key files named in the config, never from the YAML itself, and
``Config.redacted()`` is what gets logged.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from aiswatch.common.errors import ConfigError
from aiswatch.common.merge import deep_merge
from aiswatch.common.secrets import has_url_credentials, is_secret_key, read_secret, redact_url

__all__ = ["Config", "ConfigError", "DATA_HOME", "DEFAULTS", "load_config", "read_secret"]

DATA_HOME = Path(os.environ.get("AISWATCH_HOME", Path.home() / ".local" / "share" / "aiswatch"))

DEFAULTS: dict[str, Any] = {
    "elasticsearch": {
        "url": None,              # None: start the embedded server (noida-db) under embedded.data_dir
        "namespace": "",          # prefix for every index and template name
        "api_key_file": None,     # file holding an encoded API key (or env ES_API_KEY)
        "username": None,         # basic auth user; the password comes from env ES_PASSWORD or password_file
        "password_file": None,
        "ca_certs": None,
        "verify_certs": True,
        "request_timeout": 30,
        "retention_days": 90,     # ILM delete phase for ais-* where the server supports ILM
    },
    "embedded": {"data_dir": str(DATA_HOME / "es"), "port": 9200},
    "sink": {
        "batch_size": 2000,       # documents per bulk request at most
        "batch_bytes": 8_000_000, # bytes per bulk request at most
        "flush_seconds": 1.0,     # send a partial batch after this long
        "queue_size": 20000,      # documents buffered in memory before spooling to disk
        "spool_dir": str(DATA_HOME / "spool"),   # each process's spool is a directory under it (--spool-dir: exact)
        "spool_max_bytes": None,  # a spool's size bound in bytes; None: a tenth of its file system
        "max_wait": "10m",        # how long a replay (ingest file / iq) waits for a cluster that is down
        "dead_letter": str(DATA_HOME / "dead-letter.ndjson"),
    },
    "assembler": {"timeout_seconds": 10.0, "max_pending": 10000},
    "metrics": {"log_seconds": 30, "index_seconds": 60, "status_file": str(DATA_HOME / "status.json")},
    "sources": [],                # list of {type: udp|tcp|file|aisstream|sdr|iq|simulate, ...}
    "detect": {},                 # behaviour detector thresholds (see behavior/)
    "geography": {},              # ports/regions overrides (see behavior/)
}

def _coerce(text: str) -> Any:
    return yaml.safe_load(text) if text != "" else ""


def _env_overrides(environ: dict[str, str]) -> dict:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("AISWATCH_") or "__" not in key:
            continue
        path = key[len("AISWATCH_"):].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _coerce(value)
    if environ.get("ES_URL"):
        out.setdefault("elasticsearch", {})["url"] = environ["ES_URL"]
    return out


def _check_no_inline_secrets(data: Any, where: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if is_secret_key(key) and value:
                raise ConfigError(f"{where}{key}: secrets are not read from the config file; use an environment "
                                  f"variable or a key file ({key}_file)")
            if has_url_credentials(value):
                raise ConfigError(f"{where}{key}: a password inside a URL is not read from the config file; put "
                                  "the user in username and the password in ES_PASSWORD or password_file "
                                  "(or the whole URL in ES_URL)")
            _check_no_inline_secrets(value, f"{where}{key}.")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            _check_no_inline_secrets(item, f"{where}{i}.")


class Config(dict):
    """The merged configuration as a plain nested dict."""

    def redacted(self) -> dict:
        def scrub(node: Any) -> Any:
            if isinstance(node, dict):
                return {k: ("***" if is_secret_key(k) and v else scrub(v)) for k, v in node.items()}
            if isinstance(node, list):
                return [scrub(v) for v in node]
            if isinstance(node, str) and "://" in node and "@" in node:
                return redact_url(node)
            return node
        return scrub(dict(self))


def load_config(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Config:
    """Defaults, then the YAML file (``path``, else ./aiswatch.yaml if it exists), then the environment."""
    environ = dict(os.environ if environ is None else environ)
    data: dict = {}
    if path is None and Path("aiswatch.yaml").is_file():
        path = "aiswatch.yaml"
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        _check_no_inline_secrets(data)
    return Config(deep_merge(deep_merge(DEFAULTS, data), _env_overrides(environ)))
