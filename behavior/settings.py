"""Detector thresholds: the defaults (Global Fishing Watch's published definitions) and the merge
with the ``detect:`` section of the YAML config. Every number a detector uses lives here, so the
table in docs/detection.md, the docstrings and the config agree.
"""
from __future__ import annotations

from typing import Any

from aiswatch.common.merge import deep_merge

DETECTOR_VERSION = "1.0"

DEFAULTS: dict[str, Any] = {
    "slot_minutes": 10,              # tracks are resampled to 10-minute slots (as GFW does)
    "detectors": ["gap", "loitering", "encounter", "gear", "spoofing", "identity"],
    "gap": {
        "min_hours": 12.0,           # GFW "suspected AIS disabling": >= 12 h (satellite revisit time)
        "short_min_hours": 1.0,      # shorter gaps down to this are reported with severity "low"
        "min_shore_nm": 50.0,        # both ends > 50 nm from shore (GFW); 0 turns the filter off
        "lookback_days": 7,          # how far back to look for the position before a gap / a dark vessel
        "dark_now": True,            # also report vessels silent now (from ships-seen), as ongoing gaps
        "ships_only": True,          # ships' MMSIs only (ITU-R M.585): a buoy or SART going silent is not a gap
    },
    "loitering": {
        "max_speed_kn": 2.0,         # average speed < 2 kn
        "min_hours": 4.0,            # GFW reports use >= 4 h
        "min_shore_nm": 20.0,        # >= 20 nm from shore
        "max_slot_gap_hours": 1.0,   # a silence longer than this splits the episode
        "ships_only": True,          # only ships' MMSIs (ITU-R M.585): a drifting net buoy does not loiter
    },
    "encounter": {
        "max_distance_m": 500.0,     # <= 500 m apart
        "min_hours": 2.0,            # for >= 2 h
        "max_speed_kn": 2.0,         # both slow: median speed < 2 kn
        "min_port_km": 10.0,         # >= 10 km from any port/anchorage (shipped, configured or learnt)
        "min_shore_nm": 1.0,         # >= 1 nm from shore: docks outside every port list are where boats raft
        "max_slot_gap_hours": 1.0,   # GFW does not interpolate across gaps > 1 h
        "refine": True,              # refine start/end with 1-minute slots of the pair
        "ships_only": True,          # both MMSIs ships' (ITU-R M.585): a buoy beside its fishing vessel is gear
    },
    "anchorages": {                  # learnt from the data: where ships stop (behavior/anchorages.py)
        "learn": True,               # false: anchorages are neither learnt nor used
        "cell_deg": 0.005,           # ~0.55 km north-south (GFW: ~0.5 km cells)
        "max_speed_kn": 1.0,         # a stationary ship's slots are slower than this ...
        "max_drift_m": 500.0,        # ... within this of the stay's mean (GFW: moves < 0.5 km) ...
        "min_hours": 4.0,            # ... for at least this long (a scheduled run reads 5 h of context)
        "max_slot_gap_hours": 1.0,
        "max_shore_nm": 20.0,        # stays farther out (fishing grounds, transshipments) make no anchorage
        "min_vessels": 3,            # distinct ships in the cell or its neighbours, not all at one time
        "radius_km": 1.0,            # an anchorage cell acts as a port circle of this radius
        "write_every_hours": 1.0,    # a known stay is written again when it grew this much
    },
    "gear": {                        # a ship with a non-ship transponder (net buoys, ...): info, never an encounter
        "max_distance_m": 1000.0,    # gear lies along a line from the vessel
        "min_hours": 2.0,            # ports, anchorages and shore as for encounters
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
        "shared_margin_nm": 1.0,     # a slot's positions spread beyond what the speed allows by this much ...
        "shared_min_slots": 2,       # ... in at least this many slots ...
        "shared_join_hours": 1.0,    # ... each within this of the previous one: one MMSI in two places
    },
    "identity": {
        "flags_of_convenience": None,   # None: the ITF list in data/flags.yaml
    },
    "risk": {
        "window_days": 30,
        "weights": {"identity": 40, "flag_of_convenience": 15, "gap": 20, "gap_short": 5,
                    "loitering": 10, "encounter": 25, "spoofing": 30, "gear": 0},
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
