"""Receiver sources: where NMEA lines come from, and how each kind is described.

Every source only says how to get lines; reassembly, decoding and indexing never know where a
line came from (the shape of pyais's ``AssembleMessages`` subclasses). A source is any object with

* ``id``: a stable name (``udp:127.0.0.1:10110``, ``tcp:host:port``, ``file:feed.nmea``, ``aisstream``)
  used in ``Line.source`` and in counter names ``source.<id>.*``;
* ``lines()``: a blocking generator of ``aiswatch.ingest.lines.Line`` (or of already decoded
  ``aiswatch.ingest.documents.Report`` items, for feeds that arrive decoded); it ends at the end of
  a file, or soon after ``close()`` is called from another thread;
* ``close()``.

A kind of source is one module that ends with ``SOURCE = SourceType(...)``: its settings (a
``SourceSettings`` model: the ``sources:`` entry of aiswatch.yaml and the options of ``aiswatch
ingest <name>``, one schema for both) and how to build it. The shell's registry
(``aiswatch.sources``) lists the modules; nothing else needs to change to add one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, runtime_checkable


from aiswatch.common.schema import Settings
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line


@runtime_checkable
class Source(Protocol):
    id: str

    def lines(self) -> Iterator[Line]: ...

    def close(self) -> None: ...


class SourceSettings(Settings):
    """The settings of one kind of source: unknown keys are refused, values checked and converted.

    A field's ``description`` is its help text; ``json_schema_extra`` may say ``{"cli": "argument"}``
    (a positional argument of ``aiswatch ingest <name>``), ``{"cli": None}`` (configuration only),
    ``{"cli": "--name"}`` (an option named otherwise than the key) and ``{"multiple": True}``
    (a repeatable option)."""


@dataclass(frozen=True)
class SourceType:
    """One kind of source.

    name: the ``type:`` of a config entry and the ``aiswatch ingest <name>`` command (its one-line
        help is the registry's, so listing the commands imports none of the kinds).
    settings: its SourceSettings model.
    build: (settings, counters) -> a Source; may raise ConfigError (a key file missing, say).
    finite: it ends by itself (a file, a recording): the run waits for the writer instead of
        spooling, refreshes the indices at the end and exits 1 if documents are left in the spool.
    """

    name: str
    settings: type[SourceSettings]
    build: Callable[[Any, Counters], Source]
    finite: bool = False
