"""Times: ISO-8601 UTC text with milliseconds (the documents' date format) and back, and the
times users type (``now``, ISO-8601, epoch seconds, or a duration back from now such as ``24h``).

A naive ISO time is UTC. ``parse_time`` raises ConfigError naming the forms it accepts.
(The per-message document builder keeps its own cached formatter, ``ingest.documents.iso_millis``,
tested equal to ``iso_from_ms``.)
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from aiswatch.common.durations import parse_duration
from aiswatch.common.errors import ConfigError


def iso_from_ms(ms: float | int) -> str:
    """Epoch milliseconds -> ``2026-11-22T05:00:00.250Z``."""
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def iso_from_seconds(seconds: float) -> str:
    """Epoch seconds -> ``2026-11-22T05:00:00.250Z`` (milliseconds rounded down)."""
    return iso_from_ms(int(seconds * 1000))


def parse_iso(text: str) -> datetime:
    """An aware datetime from ISO-8601 text (``Z`` or an offset; naive = UTC); ValueError if not ISO."""
    moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def ms_from_iso(text: str | None) -> int | None:
    """Epoch milliseconds of ISO-8601 text; None for None, empty or unparsable text."""
    if not text:
        return None
    try:
        return round(parse_iso(text).timestamp() * 1000)
    except ValueError:
        return None


def parse_time(text: str | float | int, now: float | None = None, what: str = "time") -> float:
    """Epoch seconds of ``now``, an ISO-8601 time, epoch seconds, or a duration back from ``now``
    (``24h``: 24 hours ago)."""
    now = time.time() if now is None else now
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip()
    if value.lower() == "now":
        return now
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_iso(value).timestamp()
    except ValueError:
        pass
    try:
        return now - parse_duration(value)
    except ConfigError:
        raise ConfigError(f"{what} {text!r}: expected 'now', ISO-8601 (2026-11-22T06:00:00Z), epoch seconds "
                          "or a duration back from now (24h, 7d)") from None


def epoch_ms(value: str | float | int) -> int:
    """Epoch milliseconds of a stored time: a number already, or ISO-8601 text (ValueError if neither)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    ms = ms_from_iso(str(value))
    if ms is None:
        raise ValueError(f"not an ISO-8601 time: {value!r}")
    return ms
