"""Detector thresholds: the defaults (Global Fishing Watch's published definitions) and the merge
with the ``detect:`` section of the YAML config. Every number a detector uses lives here, so the
README table, the docstrings and the config agree.
"""
from __future__ import annotations

from typing import Any

from aiswatch.common.merge import deep_merge

DETECTOR_VERSION = "1.0"

DEFAULTS: dict[str, Any] = {
    "slot_minutes": 10,              # tracks are resampled to 10-minute slots (as GFW does)
    "detectors": ["gap", "loitering", "encounter", "spoofing", "identity"],
    "gap": {
        "min_hours": 12.0,           # GFW "suspected AIS disabling": >= 12 h (satellite revisit time)
        "short_min_hours": 1.0,      # shorter gaps down to this are reported with severity "low"
        "min_shore_nm": 50.0,        # both ends > 50 nm from shore (GFW); 0 turns the filter off
        "lookback_days": 7,          # how far back to look for the position before a gap / a dark vessel
        "dark_now": True,            # also report vessels silent now (from ships-seen), as ongoing gaps
    },
    "loitering": {
        "max_speed_kn": 2.0,         # average speed < 2 kn
        "min_hours": 4.0,            # GFW reports use >= 4 h
        "min_shore_nm": 20.0,        # >= 20 nm from shore
        "max_slot_gap_hours": 1.0,   # a silence longer than this splits the episode
    },
    "encounter": {
        "max_distance_m": 500.0,     # <= 500 m apart
        "min_hours": 2.0,            # for >= 2 h
        "max_speed_kn": 2.0,         # both slow: median speed < 2 kn
        "min_port_km": 10.0,         # >= 10 km from any port/anchorage
        "max_slot_gap_hours": 1.0,   # GFW does not interpolate across gaps > 1 h
        "refine": True,              # refine start/end with 1-minute slots of the pair
    },
    "spoofing": {
        "max_speed_kn": 50.0,        # implied speed above this between positions is impossible
        "tolerance": 1.2,            # ... times this factor (GPS noise, timing jitter)
        "min_jump_nm": 2.0,          # jumps shorter than this are noise, whatever the implied speed
        "stationary_max_sog_kn": 0.5,    # "reported speed 0" means every report below this ...
        "stationary_min_implied_kn": 3.0,  # ... while the positions move at least this fast
        "mismatch_kn": 10.0,         # reported vs implied speed differ by more than this ...
        "mismatch_ratio": 0.5,       # ... and by more than this fraction of the larger one
        "min_slots": 3,              # stationary/mismatch must hold over this many consecutive slots
        "max_refines": 20,           # 1-minute localisations of jump chains per run; past it, slot-level times
    },
    "identity": {
        "flags_of_convenience": None,   # None: the ITF list in data/flags.yaml
    },
    "risk": {
        "window_days": 30,
        "weights": {"identity": 40, "flag_of_convenience": 15, "gap": 20, "gap_short": 5,
                    "loitering": 10, "encounter": 25, "spoofing": 30},
        "max_per_type": 2,
    },
    "schedule": {
        "every": "10m",
        "lag_minutes": 2.0,          # leave the newest minutes alone: ingest may still be writing them
        "max_window_hours": 6.0,     # catch up after downtime in steps of at most this
        "initial_lookback_hours": 24.0,
    },
}


def detect_settings(config: dict | None) -> dict:
    """DEFAULTS overridden by ``config['detect']`` (config may be the whole Config or None)."""
    section = (config or {}).get("detect", {}) if config else {}
    return deep_merge(DEFAULTS, section or {})


def context_ms(settings: dict) -> int:
    """How far before a window the detectors must read so an episode crossing its start is seen whole.

    Long episodes (a 10 h loitering) are still one event: the event store extends the existing
    event instead of creating a second one.
    """
    hours = max(settings["loitering"]["min_hours"], settings["encounter"]["min_hours"]) + 1.0
    return int(hours * 3_600_000)


def parse_duration(text: str | float | int) -> float:
    """Seconds from '10m', '24h', '2d', '90s' or a number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    text = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)
