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

    def sentences(self, message: bytes, channel: str, *, timestamp: float | None = None,
                  level_db: float | None = None, freq_offset_hz: float | None = None) -> list[str]:
        payload, fill = armor(message)
        parts = [payload[i:i + self.max_chars] for i in range(0, len(payload), self.max_chars)] or [""]
        total = len(parts)
        seq = ""
        if total > 1:
            seq = str(self._seq)
            self._seq = (self._seq + 1) % 10
        prefix = ""
        if self.tags:
            fields = []
            if self.station:
                fields.append(("s", self.station))
            if timestamp is not None:
                fields.append(("c", str(int(timestamp))))
            if level_db is not None:
                fields.append(("L", f"{level_db:.1f}"))
            if freq_offset_hz is not None:
                fields.append(("F", f"{freq_offset_hz:.0f}"))
            if fields:
                prefix = tag_block(fields)
        out = []
        for number, part in enumerate(parts, start=1):
            body = f"{self.prefix},{total},{number},{seq},{channel},{part},{fill if number == total else 0}"
            out.append(f"{prefix}!{body}*{checksum(body)}")
        return out

    def frame_sentences(self, frame, start_time: float | None = None) -> list[str]:
        """Sentences for a :class:`demod.receiver.Frame` (timestamp = start_time + its offset)."""
        ts = None if start_time is None else start_time + frame.time_offset
        return self.sentences(frame.message, frame.channel, timestamp=ts, level_db=frame.level_db,
                              freq_offset_hz=frame.freq_offset_hz)
