"""The one thing every source produces: a line of text with its receive time and source id."""
from __future__ import annotations

from typing import Mapping, NamedTuple


class Line(NamedTuple):
    """One received NMEA line (immutable; a named tuple, since every source makes one per line and
    a frozen dataclass took three times as long to build).

    text: the line as received, without its line ending; it may carry an NMEA 4.10 tag block
          (``\\s:station,c:1700000000*hh\\!AIVDM,...``) or a leading epoch / ISO timestamp.
    received_at: unix seconds when this process received it.
    source: a stable source id such as ``udp:127.0.0.1:10110`` or ``file:feed.nmea``.
    offset: for replayable sources (files, IQ recordings), the line's position in the source
            (line number), so a replay of an untimed log gives the same document ids; else None.
    tags: what an in-process source knows about the line as data, under the tag-block names it
          would otherwise write as text: ``c`` message time (unix s, a float), ``s`` station,
          ``L`` signal level (dBFS) and ``F`` carrier offset (Hz) from the software radio; None
          for text input, whose tag block (if any) is part of ``text``.
    """

    text: str
    received_at: float
    source: str
    offset: int | None = None
    tags: Mapping[str, object] | None = None
