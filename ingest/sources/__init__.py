"""Receiver sources: where NMEA lines come from.

Every source only says how to get lines; reassembly, decoding and indexing never know where a
line came from (the shape of pyais's ``AssembleMessages`` subclasses). A source is any object with

* ``id``: a stable name (``udp:127.0.0.1:10110``, ``tcp:host:port``, ``file:feed.nmea``, ``aisstream``)
  used in ``Line.source`` and in counter names ``source.<id>.*``;
* ``lines()``: a blocking generator of ``ingest.lines.Line``; it ends at the end of a file, or
  soon after ``close()`` is called from another thread;
* ``close()``.

``make_source`` builds one from a config entry (the ``sources:`` list of aiswatch.yaml).
"""
from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from aiswatch.common.errors import ConfigError
from aiswatch.common.hostport import check_port, parse_hostport
from aiswatch.common.secrets import read_secret
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line

AISSTREAM_KEY_ENV = "AISSTREAM_API_KEY"


@runtime_checkable
class Source(Protocol):
    id: str

    def lines(self) -> Iterator[Line]: ...

    def close(self) -> None: ...


def _udp(spec: dict, counters: Counters):
    from aiswatch.ingest.sources.udp import UDPSource
    if "address" in spec:
        host, port = parse_hostport(spec["address"], 10110, allow_zero=True)
    else:
        host = spec.get("host", "127.0.0.1")
        port = check_port(spec.get("port", 10110), "udp source", allow_zero=True)
    return UDPSource(host, port, counters)


def _tcp(spec: dict, counters: Counters):
    from aiswatch.ingest.sources.tcp import TCPSource
    if "address" in spec:
        host, port = parse_hostport(spec["address"])
    elif "host" in spec and "port" in spec:
        host, port = spec["host"], spec["port"]       # TCPSource checks the port
    else:
        raise ConfigError("tcp source needs address: host:port")
    return TCPSource(host, port, counters, backoff_initial=float(spec.get("backoff_initial", 1.0)),
                     backoff_max=float(spec.get("backoff_max", 60.0)))


def _file(spec: dict, counters: Counters):
    from aiswatch.ingest.sources.file import FileSource
    paths = spec.get("paths") or ([spec["path"]] if spec.get("path") else None)
    if not paths:
        raise ConfigError("file source needs paths: [...]")
    return FileSource(paths, rate=spec.get("rate", "max"), counters=counters, progress=bool(spec.get("progress", False)))


def _aisstream(spec: dict, counters: Counters):
    key = read_secret(AISSTREAM_KEY_ENV, spec.get("api_key_file"))
    if not key:
        raise ConfigError(f"aisstream source needs an API key: set {AISSTREAM_KEY_ENV} or api_key_file")
    bboxes = spec.get("bboxes")
    if not bboxes:
        raise ConfigError("aisstream source needs bboxes: [[[lat, lon], [lat, lon]], ...]")
    from aiswatch.ingest.sources.aisstream import DEFAULT_URL, AisstreamSource
    options = {k: spec[k] for k in ("ping_interval", "silence_timeout", "backoff_initial", "backoff_max") if k in spec}
    return AisstreamSource(key, bboxes, message_types=spec.get("types") or spec.get("message_types"),
                           mmsis=spec.get("mmsis"), url=spec.get("url", DEFAULT_URL), counters=counters, **options)


_FACTORIES = {"udp": _udp, "tcp": _tcp, "file": _file, "aisstream": _aisstream}


def make_source(spec: dict, counters: Counters) -> Source:
    """A source from one config entry such as ``{type: udp, host: 127.0.0.1, port: 10110}``.

    Types: udp (host, port | address), tcp (address: host:port), file (paths, rate: max|realtime),
    aisstream (bboxes, types, mmsis, api_key_file; the key else from $AISSTREAM_API_KEY).
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a source entry needs a type, got {spec!r}")
    kind = spec["type"]
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise ValueError(f"unknown source type {kind!r}; known: {', '.join(sorted(_FACTORIES))}")
    return factory(spec, counters)
