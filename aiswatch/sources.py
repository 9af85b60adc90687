"""The registry of source kinds: one line each, the module that defines it (its ``SourceType``).

``aiswatch run`` builds the config's ``sources:`` entries from here, ``aiswatch ingest <name>``
makes one command per kind from the same settings, and the configuration check validates each
entry against its kind's settings. Modules are imported only when their kind is used, so
``aiswatch ingest udp`` never loads the radio (numpy, scipy).
"""
from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from aiswatch.common.errors import ConfigError, did_you_mean
from aiswatch.common.schema import describe_errors, dotted
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.sources import Source, SourceType

# name -> (where its SourceType is, imported on use; its one line of help, which listing the
# commands shows without importing every kind's module, and numpy with the radio's)
KINDS: dict[str, tuple[str, str]] = {
    "udp": ("aiswatch.ingest.sources.udp:SOURCE",
            "Receive NMEA datagrams from rtl_ais / AIS-catcher (UDP 127.0.0.1:10110)."),
    "tcp": ("aiswatch.ingest.sources.tcp:SOURCE", "Read NMEA from a TCP feed at HOST:PORT (reconnects with backoff)."),
    "file": ("aiswatch.ingest.sources.file:SOURCE",
             "Replay NMEA log files (plain or .gz); stops at the end with a summary."),
    "aisstream": ("aiswatch.ingest.sources.aisstream:SOURCE",
                  "Subscribe to the aisstream.io websocket (API key from AISSTREAM_API_KEY or --api-key-file)."),
    "simulate": ("aiswatch.ingest.sources.simulate:SOURCE", "Play simulated North Sea traffic in real time."),
    "sdr": ("aiswatch.demod.sources:SDR",
            "Receive from an RTL-SDR with aiswatch's own demodulator (no rtl_ais needed)."),
    "iq": ("aiswatch.demod.sources:IQ",
           "Demodulate an IQ recording (or discriminator audio) into Elasticsearch; stops at the end."),
}


def summary(name: str) -> str:
    """The one line of help of the kind ``name``."""
    return KINDS[name][1]


def source_type(name: Any) -> SourceType:
    """The kind named ``name``; ConfigError naming the known ones (and the nearest) otherwise."""
    entry = KINDS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ConfigError(f"unknown source type {name!r}{did_you_mean(str(name), KINDS)}; "
                          f"known: {', '.join(sorted(KINDS))}")
    module, attr = entry[0].split(":")
    return getattr(importlib.import_module(module), attr)


def _kind_and_settings(entry: Any) -> tuple[SourceType | None, Any, list[tuple[tuple, str]]]:
    """(kind, settings, problems) of one ``sources:`` entry: validated once, problems by path."""
    if not isinstance(entry, dict):
        return None, None, [((), f"expected a mapping with a type (one of {', '.join(sorted(KINDS))}), got {entry!r}")]
    if "type" not in entry:
        return None, None, [((), f"needs a type: one of {', '.join(sorted(KINDS))}")]
    try:
        kind = source_type(entry["type"])
    except ConfigError as exc:
        return None, None, [(("type",), str(exc))]
    try:
        return kind, kind.settings.model_validate({k: v for k, v in entry.items() if k != "type"}), []
    except ValidationError as exc:
        return kind, None, describe_errors(exc, kind.settings)


def check_entry(entry: Any) -> list[tuple[tuple, str]]:
    """The problems of one ``sources:`` entry as (path inside the entry, message); [] if none."""
    return _kind_and_settings(entry)[2]


def make_source(entry: Any, counters: Counters) -> Source:
    """One source from a config entry such as ``{type: udp, host: 127.0.0.1, port: 10110}``;
    ConfigError saying what is wrong with the entry."""
    kind, settings, problems = _kind_and_settings(entry)
    if problems or kind is None:
        raise ConfigError("; ".join(f"{dotted(loc)}: {message}" if loc else message for loc, message in problems))
    return kind.build(settings, counters)
