"""AIS message octets -> !AIVDM sentences, as rtl_ais and AIS-catcher print them.

6-bit armouring (value + 48, + 8 more above 39), fill bits to a whole character, messages longer
than 60 characters split into numbered sentences sharing a sequence id that rotates 0-9 (per
formatter, as receivers do), channel A/B, XOR checksum. Optionally an NMEA 4.10 tag block on every
sentence: ``c:`` (unix seconds of reception), ``s:`` (station name) and two fields of our own for
the radio measurements, ``L:`` (signal level, dB full scale) and ``F:`` (carrier offset, Hz), so a
reader that ignores unknown tag fields still gets the standard ones.
"""
from __future__ import annotations

from functools import reduce

import numpy as np

MAX_PAYLOAD_CHARS = 60


def checksum(body: str) -> str:
    """NMEA checksum: XOR of the characters between the start character and '*', as two hex digits."""
    return f"{reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


def armor(message: bytes) -> tuple[str, int]:
    """(6-bit ASCII payload, fill bits) of message octets."""
    bits = np.unpackbits(np.frombuffer(bytes(message), dtype=np.uint8), bitorder="big")
    n_chars = -(-len(bits) // 6)
    fill = n_chars * 6 - len(bits)
    if fill:
        bits = np.concatenate([bits, np.zeros(fill, dtype=np.uint8)])
    values = bits.reshape(-1, 6) @ np.array([32, 16, 8, 4, 2, 1])
    chars = np.where(values < 40, values + 48, values + 56)
    return bytes(chars.astype(np.uint8)).decode("ascii"), fill


def tag_block(fields: list[tuple[str, str]]) -> str:
    body = ",".join(f"{k}:{v}" for k, v in fields)
    return f"\\{body}*{checksum(body)}\\"


class NmeaFormatter:
    """Formats frames as sentences; keeps the rotating sequence id for multi-sentence messages.

    talker: 'AI'; sentence: 'VDM' (received from others); tags: add a tag block with time, level
    and offset; station: the ``s:`` tag value (None = no s: field).
    """

    def __init__(self, talker: str = "AI", sentence: str = "VDM", *, tags: bool = False,
                 station: str | None = None, max_chars: int = MAX_PAYLOAD_CHARS):
        self.prefix = f"{talker}{sentence}"
        self.tags = tags
        self.station = station
        self.max_chars = max_chars
        self._seq = 0

    def tag_fields(self, *, timestamp: float | None = None, level_db: float | None = None,
                   freq_offset_hz: float | None = None) -> dict[str, object]:
        """The tag-block fields of a sentence as data: ``s`` station, ``c`` time (unix seconds),
        ``L`` level (dBFS) and ``F`` carrier offset (Hz), those that are known."""
        fields: dict[str, object] = {}
        if self.station:
            fields["s"] = self.station
        if timestamp is not None:
            fields["c"] = timestamp
        if level_db is not None:
            fields["L"] = float(level_db)
        if freq_offset_hz is not None:
            fields["F"] = float(freq_offset_hz)
        return fields

    def sentences(self, message: bytes, channel: str, *, timestamp: float | None = None,
                  level_db: float | None = None, freq_offset_hz: float | None = None,
                  tags: bool | None = None) -> list[str]:
        """The sentences of one message; ``tags`` (default: the formatter's) prefixes each with the
        tag block of :meth:`tag_fields` as text (``c:`` whole seconds, ``L:`` tenths, ``F:`` Hz)."""
        payload, fill = armor(message)
        parts = [payload[i:i + self.max_chars] for i in range(0, len(payload), self.max_chars)] or [""]
        total = len(parts)
        seq = ""
        if total > 1:
            seq = str(self._seq)
            self._seq = (self._seq + 1) % 10
        prefix = ""
        if self.tags if tags is None else tags:
            fields = self.tag_fields(timestamp=timestamp, level_db=level_db, freq_offset_hz=freq_offset_hz)
            if fields:
                prefix = tag_block([(key, _TAG_TEXT[key](value)) for key, value in fields.items()])
        out = []
        for number, part in enumerate(parts, start=1):
            body = f"{self.prefix},{total},{number},{seq},{channel},{part},{fill if number == total else 0}"
            out.append(f"{prefix}!{body}*{checksum(body)}")
        return out

    def frame_sentences(self, frame, start_time: float | None = None, tags: bool | None = None) -> list[str]:
        """Sentences for a :class:`demod.receiver.Frame` (timestamp = start_time + its offset)."""
        return self.sentences(frame.message, frame.channel, timestamp=self.frame_time(frame, start_time),
                              level_db=frame.level_db, freq_offset_hz=frame.freq_offset_hz, tags=tags)

    def frame_tags(self, frame, start_time: float | None = None) -> dict[str, object]:
        """:meth:`tag_fields` of a frame, as data."""
        return self.tag_fields(timestamp=self.frame_time(frame, start_time), level_db=frame.level_db,
                               freq_offset_hz=frame.freq_offset_hz)

    @staticmethod
    def frame_time(frame, start_time: float | None) -> float | None:
        return None if start_time is None else start_time + frame.time_offset


# how each tag field is written as text in a tag block
_TAG_TEXT = {"s": str, "c": lambda v: str(int(v)), "L": lambda v: f"{v:.1f}", "F": lambda v: f"{v:.0f}"}
