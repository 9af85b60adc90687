"""Configuration: defaults <- YAML file <- environment, checked against one schema.

Every option is documented in ``aiswatch.example.yaml``; the schema is the models below (each
source kind's settings come from its module, the ``detect:`` keys from
``aiswatch.behavior.settings.DEFAULTS``). Environment overrides use ``AISWATCH_<SECTION>__<KEY>``
(e.g. ``AISWATCH_SINK__BATCH_SIZE=5000``); ``ES_URL`` sets ``elasticsearch.url``. An unknown key
(with the nearest known name), a value of the wrong type or out of range is a ConfigError that
names the key's path and where it came from (the file or the environment variable).

Secrets (the aisstream API key, Elasticsearch credentials) are read only from the environment or
from key files named in the config, never from the YAML itself; ``Config.redacted()`` is what
gets shown. ``load_config`` returns the merged configuration as a plain nested dict (``Config``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import Field, ValidationError, field_validator

from aiswatch.common.durations import parse_duration
from aiswatch.common.errors import ConfigError, did_you_mean
from aiswatch.common.merge import deep_merge
from aiswatch.common.schema import Settings, describe_errors, dotted
from aiswatch.common.secrets import has_url_credentials, is_secret_key, read_secret, redact_url

__all__ = ["Config", "ConfigError", "DATA_HOME", "load_config", "read_secret", "defaults"]

DATA_HOME = Path(os.environ.get("AISWATCH_HOME", Path.home() / ".local" / "share" / "aiswatch"))
ENV_PREFIX = "AISWATCH_"
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _expand(value: Optional[str]) -> Optional[str]:
    return None if value is None else os.path.expanduser(str(value))


class ElasticsearchSection(Settings):
    url: Optional[str] = None              # None: the embedded server
    namespace: str = ""
    api_key_file: Optional[str] = None
    username: Optional[str] = None
    password_file: Optional[str] = None
    ca_certs: Optional[str] = None
    verify_certs: bool = True
    request_timeout: float = Field(30, gt=0)
    retention_days: Optional[int] = Field(90, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value):
        if value is None or value == "":
            return None
        from aiswatch.ingest.esclient import check_url

        return check_url(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value):
        if value and not _NAMESPACE.fullmatch(value):
            raise ValueError(f"{value!r}: index names are lower case letters, digits, '.', '_' and '-', "
                             "not starting with '.', '_' or '-'")
        return value

    _files = field_validator("api_key_file", "password_file", "ca_certs")(classmethod(lambda cls, v: _expand(v)))


class EmbeddedSection(Settings):
    data_dir: str = str(DATA_HOME / "es")
    port: int = Field(9250, ge=1, le=65535)   # not 9200: a real Elasticsearch's port (the compose stack's)

    _dir = field_validator("data_dir")(classmethod(lambda cls, v: _expand(v)))


class SinkSection(Settings):
    batch_size: int = Field(2000, gt=0)
    batch_bytes: int = Field(8_000_000, gt=0)
    flush_seconds: float = Field(1.0, gt=0)
    queue_size: int = Field(20000, gt=0)
    spool_dir: str = str(DATA_HOME / "spool")      # each process's spool is a directory under it (--spool-dir: exact)
    spool_max_bytes: Optional[int] = Field(None, gt=0)   # None: a tenth of the spool's file system
    max_wait: str = "10m"                          # how long a replay waits for a cluster that is down
    dead_letter: str = str(DATA_HOME / "dead-letter.ndjson")

    @field_validator("max_wait")
    @classmethod
    def _duration(cls, value):
        parse_duration(value, "max_wait")
        return value

    _paths = field_validator("spool_dir", "dead_letter")(classmethod(lambda cls, v: _expand(v)))


class AssemblerSection(Settings):
    timeout_seconds: float = Field(10.0, gt=0)
    max_pending: int = Field(10000, gt=0)


class MetricsSection(Settings):
    log_seconds: float = Field(30, gt=0)
    index_seconds: float = Field(60, gt=0)
    status_file: str = str(DATA_HOME / "status.json")

    _path = field_validator("status_file")(classmethod(lambda cls, v: _expand(v)))


class ExtraPort(Settings):
    name: str
    country: Optional[str] = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(5.0, gt=0)


class ExtraRegion(Settings):
    name: str
    box: tuple[float, float, float, float]   # south, west, north, east


class GeographySection(Settings):
    port_sets: Optional[list[str]] = None
    region_sets: Optional[list[str]] = None
    extra_ports: list[ExtraPort] = []
    extra_regions: list[ExtraRegion] = []


class ConfigModel(Settings):
    elasticsearch: ElasticsearchSection = ElasticsearchSection()
    embedded: EmbeddedSection = EmbeddedSection()
    sink: SinkSection = SinkSection()
    assembler: AssemblerSection = AssemblerSection()
    metrics: MetricsSection = MetricsSection()
    sources: list[Any] = []        # each entry checked by its kind's settings (aiswatch.sources)
    detect: dict = {}              # checked against aiswatch.behavior.settings.DEFAULTS
    geography: GeographySection = GeographySection()


def defaults() -> dict:
    """Every setting with its default, as a plain nested dict."""
    return ConfigModel().model_dump()


class Config(dict):
    """The merged configuration as a plain nested dict; ``source`` says where it was read from."""

    source: str = "defaults"

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


# -- reading ---------------------------------------------------------------------------------

def _env_overrides(environ: dict[str, str]) -> tuple[dict, dict[tuple, str]]:
    """The AISWATCH_<SECTION>__<KEY> overrides as a nested dict, and each path's variable name."""
    out: dict[str, Any] = {}
    origins: dict[tuple, str] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {'.'.join(path[:-1])} is not a section")
        node[path[-1]] = yaml.safe_load(value) if value != "" else ""
        origins[tuple(path)] = key
    if environ.get("ES_URL"):
        out.setdefault("elasticsearch", {})["url"] = environ["ES_URL"]
        origins[("elasticsearch", "url")] = "ES_URL"
    return out, origins


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


def _check_detect(given: Any, shape: Any, loc: tuple) -> list[tuple[tuple, str]]:
    """``detect:`` against the detectors' DEFAULTS: known keys, and values of the defaults' kinds."""
    problems: list[tuple[tuple, str]] = []
    if isinstance(shape, dict):
        if not isinstance(given, dict):
            return [(loc, f"expected a mapping, got {given!r}")]
        for key, value in given.items():
            if key not in shape:
                problems.append((loc + (key,), f"unknown key{did_you_mean(str(key), shape)}"))
            else:
                problems += _check_detect(value, shape[key], loc + (key,))
        return problems
    if shape is None:   # a default of None takes any value
        return []
    if isinstance(shape, bool):
        ok = isinstance(given, bool)
        what = "true or false"
    elif isinstance(shape, (int, float)):
        ok = isinstance(given, (int, float)) and not isinstance(given, bool) and given >= 0
        what = "a number of zero or more"
    elif isinstance(shape, list):
        ok = isinstance(given, list)
        what = "a list"
    else:
        ok = isinstance(given, str)
        what = "text"
        if ok and loc[-1:] == ("every",):
            try:
                parse_duration(given)
            except ConfigError as exc:
                return [(loc, str(exc))]
    return [] if ok else [(loc, f"expected {what}, got {given!r}")]


def _validate(data: dict, origins: dict[tuple, str], file_label: str) -> Config:
    problems: list[tuple[tuple, str]] = []
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        problems += describe_errors(exc, ConfigModel)
        model = None
    from aiswatch.sources import check_entry

    sources = data.get("sources")
    for i, entry in enumerate(sources if isinstance(sources, list) else []):   # not a list: the model says so
        problems += [(("sources", i) + loc, message) for loc, message in check_entry(entry)]
    if isinstance(data.get("detect"), dict):
        from aiswatch.behavior.settings import DEFAULTS as DETECT

        problems += _check_detect(data["detect"], DETECT, ("detect",))
    if problems:
        raise ConfigError(_summary([(_where(loc, origins, file_label), dotted(loc), _nested_hint(loc, message))
                                    for loc, message in problems]))
    config = Config(model.model_dump())
    config["detect"] = data.get("detect") or {}
    config["geography"] = data.get("geography") or {}
    config["sources"] = list(data.get("sources") or [])
    config.source = file_label
    return config


def _where(loc: tuple, origins: dict[tuple, str], file_label: str) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origins:
            return origins[loc[:n]]
    return file_label if file_label != "defaults" else ""


def _nested_hint(loc: tuple, message: str) -> str:
    """An unknown top-level key that is a key of a section (``namespace``): say where it goes."""
    if len(loc) != 1 or not message.startswith("unknown key") or "did you mean" in message:
        return message
    leaves = [f"{section}.{key}" for section, field in ConfigModel.model_fields.items()
              for key in getattr(field.annotation, "model_fields", {})]
    hint = did_you_mean(str(loc[0]), [leaf.split(".", 1)[1] for leaf in leaves])
    if hint:
        key = hint.split("'")[1]
        return f"unknown key (did you mean {next(l for l in leaves if l.endswith('.' + key))!r}, inside its section?)"
    return message


def _summary(problems: list[tuple[str, str, str]]) -> str:
    """One line: the source once when every problem comes from the same place."""
    places = {where for where, _, _ in problems}
    if len(places) == 1:
        where = places.pop()
        count = f"{len(problems)} problems: " if len(problems) > 1 else ""
        body = "; ".join(f"{path}: {message}" for _, path, message in problems)
        return f"{where}: {count}{body}" if where else count + body
    return "; ".join(f"{where + ': ' if where else ''}{path}: {message}" for where, path, message in problems)


def load_config(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Config:
    """Defaults, then the YAML file (``path``, else ./aiswatch.yaml if it exists), then the
    environment; checked. ConfigError lists every problem found."""
    environ = dict(os.environ if environ is None else environ)
    data: dict = {}
    if path is None and Path("aiswatch.yaml").is_file():
        path = "aiswatch.yaml"
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a directory") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
        _check_no_inline_secrets(data)
    overrides, origins = _env_overrides(environ)
    return _validate(deep_merge(data, overrides), origins, str(path) if path is not None else "defaults")
