"""NMEA 0183 AIS sentences: one received line in, one validated ``Sentence`` out (or a counted rejection).

A line may look like any of::

    !AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26
    \\s:2573485,c:1700000000*00\\!BSVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*3F
    1700000000.250 !AIVDM,1,1,,B,...           (a logger's time prefix, see ingest.timeprefix)

``parse_line`` checks everything that can be checked on one line: the NMEA 4.10 tag block and its
checksum, the sentence checksum, the talker (any two uppercase letters: AI, AB, BS, SA, ...), the
formatter (VDM from other stations, VDO from our own ship), the fragment fields, the fill bits and
the 6-bit payload alphabet. Every line it is given is counted (``sentences_in``, and ``lines_in``,
which also holds the lines the sources rejected before parsing); every line it
turns away is counted under ``rejected.<reason>`` and logged at DEBUG (rate-limited), never
dropped silently. Reasons: ``empty``, ``not_nmea``, ``bad_time`` (a time prefix outside
1973-2286), ``bad_tag_block``, ``bad_checksum``, ``not_vdm``, ``bad_field``, ``bad_payload``.

It runs on every received line, so it sticks to ``str.split``/slicing and dict look-ups.
The message time comes from the tag block ``c:`` (seconds, or milliseconds when > 1e11), else
from a leading time prefix, else it stays None (the document builder then uses the receive time).
"""
from __future__ import annotations

import functools
import logging
import operator
import re
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from aiswatch.ingest.counters import Counts
from aiswatch.ingest.lines import Line
from aiswatch.ingest.timeprefix import split_time_prefix

log = logging.getLogger(__name__)

MAX_PAYLOAD_CHARS = 200     # pyais's limit per sentence (82-character NMEA lines carry ~60)
MAX_FRAGMENTS = 9           # IEC 61162-1: 1-9 sentences per message

# Lookup tables instead of int() + range checks: a failed look-up is the rejection.
_FRAGMENT_COUNT = {str(i): i for i in range(1, MAX_FRAGMENTS + 1)}
_SEQ_ID = {str(i): i for i in range(10)}
_FILL_BITS = {str(i): i for i in range(6)}
_HEX = {**{f"{i:02X}": i for i in range(256)}, **{f"{i:02x}": i for i in range(256)}}
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TALKERS = frozenset(a + b for a in _UPPER for b in _UPPER)
_CHANNELS = frozenset(["A", "B", "1", "2", "C", "D", ""])   # C/D: long-range channels 75/76
# The AIS 6-bit armour alphabet: '0'..'W' and '`'..'w'. A character class is the fastest check here.
_PAYLOAD_CHARS = re.compile(r"[0-W`-w]+")
_MILLIS_THRESHOLD = 1e11    # tag block c: values above this are epoch milliseconds
_TIME_MIN, _TIME_MAX = 1e8, 1e10


@dataclass(slots=True, eq=False)
class Sentence:
    """One valid AIVDM/AIVDO sentence (one fragment of a message) with where and when it came from.

    raw: the sentence text ``!AIVDM,...*hh`` without tag block or time prefix.
    total/number: fragment count and this fragment's number (1-based); seq_id: the sequential
    message id that ties fragments together (None when empty). fill: fill bits (0-5) at the end
    of the payload. msg_time: unix seconds from the tag block ``c:`` or the line's time prefix.
    station: tag block ``s:``; group: tag block ``g:`` (``part-total-id``); tags: every tag block
    field as text, including ones we do not interpret (e.g. signal data from our demodulator);
    a read-only mapping, shared by the sentences that carry the same tag block. A line with
    ``tags`` given as data (an in-process source) has those here instead, values as given.
    """

    raw: str
    talker: str
    formatter: str
    total: int
    number: int
    seq_id: int | None
    channel: str
    payload: str
    fill: int
    msg_time: float | None
    station: str | None
    group: str | None
    source: str
    received_at: float
    offset: int | None
    tags: Mapping[str, object] = field(default_factory=lambda: _NO_TAGS)


class RateLimitedLog:
    """DEBUG lines for rejections, at most ``burst`` per ``window`` seconds, so a flood of garbage
    costs one comparison per line instead of filling the log. The counters carry the totals."""

    def __init__(self, logger: logging.Logger, burst: int = 20, window: float = 60.0) -> None:
        self.logger = logger
        self.burst = burst
        self.window = window
        self._window_start = 0.0
        self._logged = 0
        self._suppressed = 0

    def __call__(self, reason: str, detail: object) -> None:
        if not self.logger.isEnabledFor(logging.DEBUG):
            return
        now = time.monotonic()
        if now - self._window_start >= self.window:
            if self._suppressed:
                self.logger.debug("%d more rejections not logged in the last %.0f s",
                                  self._suppressed, self.window)
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged < self.burst:
            self._logged += 1
            # Cut long input: a hostile or broken source must not blow up the log.
            self.logger.debug("rejected (%s): %.200r", reason, detail)
        else:
            self._suppressed += 1


_log_reject = RateLimitedLog(log)


# Compiled by mypyc (ingest/native.py) a loop over the bytes is native code; as Python it is not.
_COMPILED = not __file__.endswith(".py")


def nmea_checksum(text: str) -> int:
    """XOR of the characters between the start character and ``*`` (or of a tag block's body).

    Compiled: a loop over the bytes. As Python: the bytes as one integer, folded onto itself by
    halves, the XOR of all its bytes in eight big-int operations, under half the time of the loop
    there (this runs on every line). Eight folds cover 256 bytes; a longer text (rejected later
    anyway) takes the loop."""
    data = text.encode("latin-1", "replace")
    if _COMPILED:
        checksum = 0
        for i in range(len(data)):  # indexing is a native primitive; iterating bytes is not
            checksum ^= data[i]
        return checksum
    if len(data) > 256:
        return functools.reduce(operator.xor, data, 0)
    v = int.from_bytes(data, "little")
    v ^= v >> 1024
    v ^= v >> 512
    v ^= v >> 256
    v ^= v >> 128
    v ^= v >> 64
    v ^= v >> 32
    v ^= v >> 16
    v ^= v >> 8
    return v & 0xFF


def parse_tag_block(block: str) -> dict[str, str] | None:
    """The fields of an NMEA 4.10 tag block body (``s:x,c:123*hh``) as a dict, None if malformed
    or if its checksum (when present) does not match."""
    star = block.rfind("*")
    if star >= 0:
        expected = _HEX.get(block[star + 1:])
        block = block[:star]
        if expected is None or expected != nmea_checksum(block):
            return None
    tags: dict[str, str] = {}
    for item in block.split(","):
        key, sep, value = item.partition(":")
        if not sep or not key:
            return None
        tags[key] = value
    return tags


def _tag_time(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds > _MILLIS_THRESHOLD:
        seconds /= 1000.0
    # 1973..2286, as ingest.timeprefix: anything else is a broken clock, not a message time.
    if not _TIME_MIN <= seconds < _TIME_MAX:    # also rules out nan and inf
        return None
    return seconds


# Shore feeds send the same tag block (station, second) on many consecutive lines: remember the
# last few hundred parsed ones. The cached dicts are shared between sentences: read-only.
# (fields, message time, station s:, group g:)
_TagInfo = tuple[Mapping[str, str], "float | None", "str | None", "str | None"]
_tag_cache: dict[str | None, _TagInfo] = {}
_TAG_CACHE_SIZE = 512
_TAG_CACHE_MAX_CHARS = 200
_NO_TAGS: Mapping[str, str] = MappingProxyType({})


def _read_tag_block(block: str | None) -> _TagInfo | None:
    """(fields, message time, station, group) of a tag block body, cached; None if it is invalid."""
    if block is None:
        return None
    tags = parse_tag_block(block)
    if tags is None:
        return None
    tag_time = None
    if "c" in tags:
        tag_time = _tag_time(tags["c"])
        if tag_time is None:
            return None
    cached = (MappingProxyType(tags), tag_time, tags.get("s"), tags.get("g"))
    if len(block) <= _TAG_CACHE_MAX_CHARS:     # a flood of huge junk blocks must not pin memory
        if len(_tag_cache) >= _TAG_CACHE_SIZE:
            _tag_cache.clear()
        _tag_cache[block] = cached
    return cached


def _reject(counters: Counts, reason: str, text: str) -> None:
    counters.reject(reason)
    _log_reject(reason, text)


def parse_line(line: Line, counters: Counts) -> Sentence | None:
    """Validate one received line; return its ``Sentence`` or None after counting the rejection."""
    counters.add(("lines_in", 1), ("sentences_in", 1))
    text = line.text.strip()
    if not text:
        _reject(counters, "empty", text)
        return None

    msg_time = None
    first = text[0]
    if first != "!" and first != "\\" and first != "$":
        msg_time, text = split_time_prefix(text)
        if msg_time is not None and not _TIME_MIN <= msg_time < _TIME_MAX:
            _reject(counters, "bad_time", line.text)    # e.g. year 0001: a broken logger clock
            return None
        first = text[0]

    tags: Mapping[str, object] = _NO_TAGS
    station = group = None
    if first == "\\":
        end = text.find("\\", 1)
        block = text[1:end] if end > 0 else None
        cached = _tag_cache.get(block)
        if cached is None:
            cached = _read_tag_block(block)
            if cached is None:
                _reject(counters, "bad_tag_block", text)
                return None
        tags, tag_time, station, group = cached
        if tag_time is not None:
            msg_time = tag_time
        text = text[end + 1:]
        first = text[:1]

    if first != "!" and first != "$":
        _reject(counters, "not_nmea", line.text)
        return None
    given = line.tags
    if given is not None:   # an in-process source's tag fields as data, not text to parse back
        tags = given
        given_time = given.get("c")
        if given_time is not None:
            msg_time = float(given_time)  # type: ignore[arg-type]
        given_station = given.get("s")
        if given_station is not None:
            station = str(given_station)

    star = text.rfind("*")
    if star < 0:
        _reject(counters, "bad_checksum", text)
        return None
    expected = _HEX.get(text[star + 1:star + 3])
    trailer = text[star + 3:]
    # Some loggers append data after the checksum; accept it only behind a separator.
    if trailer and trailer[0] not in ", \t;":
        expected = None
    body = text[1:star]
    if expected is None or expected != nmea_checksum(body):
        _reject(counters, "bad_checksum", text)
        return None

    fields = body.split(",")
    address = fields[0]
    formatter = address[2:]
    if len(address) != 5 or (formatter != "VDM" and formatter != "VDO"):
        _reject(counters, "not_vdm", text)
        return None
    talker = address[:2]
    if talker not in _TALKERS or len(fields) != 7:
        _reject(counters, "bad_field", text)
        return None

    total = _FRAGMENT_COUNT.get(fields[1])
    number = _FRAGMENT_COUNT.get(fields[2])
    fill = _FILL_BITS.get(fields[6])
    seq_text = fields[3]
    seq_id = _SEQ_ID.get(seq_text) if seq_text else None
    channel = fields[4]
    if (total is None or number is None or number > total or fill is None
            or (seq_text and seq_id is None) or channel not in _CHANNELS):
        _reject(counters, "bad_field", text)
        return None

    payload = fields[5]
    if len(payload) > MAX_PAYLOAD_CHARS or _PAYLOAD_CHARS.fullmatch(payload) is None:
        _reject(counters, "bad_payload", text)
        return None

    return Sentence(
        text[:star + 3], talker, formatter, total, number, seq_id, channel, payload, fill,
        msg_time, station, group, line.source, line.received_at, line.offset, tags,
    )
