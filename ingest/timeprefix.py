"""Split a leading timestamp off an NMEA log line.

Many receivers and loggers write each sentence after the time they received it, e.g.::

    1700000000.123 !AIVDM,1,1,,A,...        epoch seconds (fraction optional)
    1700000000123;!AIVDM,1,1,,A,...          epoch milliseconds
    2026-11-22T05:00:00Z !AIVDM,...          ISO 8601 with T (Z, offset and fraction optional)
    2026-11-22 05:00:00.123,!AIVDM,...       ISO 8601 with a space

The prefix is separated from the sentence (``!``/``$``) or its NMEA 4.10 tag block (``\\``) by
spaces, commas, semicolons or tabs. ``split_time_prefix`` returns the time as unix seconds and the
rest of the line. The NMEA parser calls it on every line, so the common case (a line starting with
``!``, ``$`` or ``\\``) returns at once after one character test.

ISO times without an offset are taken as UTC (loggers on receivers almost always log UTC, and a
local-time guess would silently shift every message). Epoch numbers are read as seconds when they
have 9-10 integer digits (1973-2286) and as milliseconds with 12-13 digits; anything else is not
taken as a time, so a line that merely starts with a number is left alone.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

# The prefix: digits and the characters of epoch/ISO-8601 times, the shortest run that is
# followed by separators and then the start of a sentence or tag block.
_PREFIX = re.compile(r"([0-9][0-9.:+\-TtZz ]*?)[ \t,;]+(?=[!$\\])")

_SECONDS_MIN, _SECONDS_MAX = 1e8, 1e10      # 1973-03-03 .. 2286-11-20 as seconds
_MILLIS_MIN, _MILLIS_MAX = 1e11, 1e14       # same span, roughly, as milliseconds


def _parse_epoch(prefix: str) -> float | None:
    try:
        value = float(prefix)
    except ValueError:
        return None
    if _SECONDS_MIN <= value < _SECONDS_MAX:
        return value
    if _MILLIS_MIN <= value < _MILLIS_MAX:
        return value / 1000.0
    return None


def _parse_iso(prefix: str) -> float | None:
    try:
        moment = datetime.fromisoformat(prefix)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def split_time_prefix(text: str) -> tuple[float | None, str]:
    """``(unix seconds, rest of the line)`` if ``text`` starts with a time prefix, else ``(None, text)``.

    The rest starts at the sentence (``!``/``$``) or its tag block (``\\``). A prefix that looks
    like a time but does not parse (``2026-13-45 ...``) leaves the line unchanged, so the caller
    rejects it as not NMEA rather than indexing it with a wrong time.
    """
    if not text or not ("0" <= text[0] <= "9"):
        return None, text
    match = _PREFIX.match(text)
    if match is None:
        return None, text
    prefix = match.group(1).rstrip()
    if len(prefix) > 4 and prefix[4] == "-":
        seconds = _parse_iso(prefix)
    else:
        seconds = _parse_epoch(prefix)
    if seconds is None:
        return None, text
    return seconds, text[match.end():]
