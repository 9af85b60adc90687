"""Durations as people write them: ``90``, ``90s``, ``10m``, ``1.5h``, ``2d``, ``1w``, ``1 minute``.

``parse_duration`` gives seconds (a number passes through) or ConfigError naming the text and
the units it accepts; ``format_duration`` writes seconds back the short way (``90s``, ``10m``).
"""
from __future__ import annotations

import re

from aiswatch.common.errors import ConfigError

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*")


def parse_duration(text: str | float | int, what: str = "duration") -> float:
    """Seconds of ``text``: a number (seconds) or a number with a unit (s, m, h, d, w, or the words)."""
    if isinstance(text, bool):
        raise ConfigError(f"{what} {text!r}: expected a duration such as 90s, 10m, 1h or 2d")
    if isinstance(text, (int, float)):
        if text != text or text < 0:
            raise ConfigError(f"{what} {text!r}: expected a duration of zero or more seconds")
        return float(text)
    m = _DURATION.fullmatch(str(text).lower())
    if not m or m.group(2) not in ("", *_UNITS):
        raise ConfigError(f"{what} {text!r}: expected a number with a unit s, m, h, d or w (e.g. 90s, 10m, 1h, 2d)")
    return float(m.group(1)) * _UNITS.get(m.group(2), 1)


def format_duration(seconds: float) -> str:
    """``90s``, ``10m``, ``2h``, ``3d``: exact in the largest whole unit, else about so many minutes."""
    seconds = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 120:
        return f"{seconds:g}s"
    return f"{round(seconds / 60)}m"
