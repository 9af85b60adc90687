"""Identity: what an MMSI says about its station, whether it is plausible, and a per-vessel risk score.

MMSI classes (ITU-R M.585), for a 9-digit number with MID = three digits from 2-7:
- ``MIDxxxxxx``  vessel (ship station)                  ``8MIDxxxxx`` handheld VHF
- ``0MIDxxxxx``  group of ships                         ``00MIDxxxx`` coast station
- ``111MIDxxx``  SAR aircraft                           ``99MIDxxxx`` aid to navigation (AtoN)
- ``98MIDxxxx``  craft associated with a parent ship    ``970xxxxxx`` AIS-SART
- ``972xxxxxx``  man overboard (MOB)                    ``974xxxxxx`` EPIRB-AIS
Problems reported (``identity.problems``): ``length`` (not 9 digits), ``test_number`` (000000000,
123456789, 111111111, 999999999 ... and any number of one repeated digit or a plain sequence),
``mid_unallocated`` (the MID is not in the ITU table, ``data/mid.yaml``). ``valid`` is true when
there is no problem. ``flag`` / ``flag_code`` come from the MID; ``flag_of_convenience`` from the
ITF list (``data/flags.yaml``).

Ships (``is_ship``): a ship station's number, MID 201-775 in front of six digits. Only ships take part
in encounters and loitering; a ship together with other numbers (fishing gear, net buoys: often
numbers outside every class, e.g. 941xxxxxx) is a ``gear`` event (``behavior.encounter``).
``gear_kind`` says which numbers count as transponders a ship may carry or tow: every non-ship
number but coast stations, groups, AtoN and SAR aircraft.

An invalid MMSI seen at sea is an ``identity`` event (subtype = the first problem), one per vessel
(its id does not depend on time; a later run extends it).

Risk score (``risk.score``, 0-100, on ships-seen), over the last ``risk.window_days`` (30) days:

    score = min(100, sum over event kinds k of weight_k * min(count_k, max_per_type)
                     + weight_identity * [MMSI invalid] + weight_flag_of_convenience * [FOC])

with weights gap 20 (long gaps; short gaps 5), loitering 10, encounter 25, spoofing 30, invalid
identity 40, flag of convenience 15, and ``max_per_type`` 2, so one noisy detector cannot fill the
scale alone. The counts come from one terms aggregation over the events index (mmsi x type x
subtype), computed in the cluster.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from elasticsearch import helpers

log = logging.getLogger(__name__)

DATA = Path(__file__).parent / "data"
TEST_NUMBERS = {"000000000", "123456789", "111111111", "999999999", "987654321", "012345678", "100000000",
                "200000000", "300000000", "400000000", "500000000", "600000000", "700000000", "800000000",
                "900000000"}


@functools.lru_cache(maxsize=1)
def mid_table() -> dict[str, tuple[str, str]]:
    data = yaml.safe_load((DATA / "mid.yaml").read_text())
    return {str(k): (v[0], v[1]) for k, v in data["mid"].items()}


@functools.lru_cache(maxsize=1)
def _foc_default() -> tuple[frozenset, frozenset]:
    data = yaml.safe_load((DATA / "flags.yaml").read_text())
    return frozenset(data["itf_flags_of_convenience"]), frozenset(str(m) for m in data.get("itf_mids", []))


@dataclass
class Identity:
    mmsi: str
    valid: bool
    station_type: str
    mid: str | None = None
    flag: str | None = None
    flag_code: str | None = None
    flag_of_convenience: bool = False
    problems: list[str] = field(default_factory=list)

    def document(self) -> dict:
        return {"valid": self.valid, "station_type": self.station_type, "mid": self.mid, "flag": self.flag,
                "flag_code": self.flag_code, "flag_of_convenience": self.flag_of_convenience,
                "problems": self.problems}


@functools.lru_cache(maxsize=100_000)
def is_ship(mmsi: str) -> bool:
    """ITU-R M.585 ship station: nine digits, MID 201-775 first (first digit 2-7)."""
    m = str(mmsi)
    return len(m) == 9 and m.isdigit() and 201 <= int(m[:3]) <= 775


# station types that are fixed or airborne: never gear travelling with a ship
NOT_GEAR = frozenset({"coast_station", "group", "aton", "sar_aircraft"})


@functools.lru_cache(maxsize=100_000)
def gear_kind(mmsi: str) -> str | None:
    """The station type of a number that may be gear or a device with a ship (not a ship, not a
    coast station, group, AtoN or SAR aircraft), else None."""
    if is_ship(mmsi):
        return None
    station = classify(mmsi).station_type
    return None if station in NOT_GEAR else station


def _station(m: str) -> tuple[str, str | None]:
    """(station type, MID digits or None) from a 9-digit MMSI."""
    if m.startswith("970"):
        return "sart", None
    if m.startswith("972"):
        return "mob", None
    if m.startswith("974"):
        return "epirb", None
    if m.startswith("111"):
        return "sar_aircraft", m[3:6]
    if m.startswith("99"):
        return "aton", m[2:5]
    if m.startswith("98"):
        return "craft_of_parent_ship", m[2:5]
    if m.startswith("00"):
        return "coast_station", m[2:5]
    if m.startswith("0"):
        return "group", m[1:4]
    if m.startswith("8"):
        return "handheld", m[1:4]
    if m[0] in "234567":
        return "vessel", m[:3]
    return "unknown", None


def classify(mmsi: str | int, foc_flags: list[str] | None = None) -> Identity:
    m = str(mmsi).strip()
    problems: list[str] = []
    if not m.isdigit() or len(m) != 9:
        # AIS carries MMSI as a 30-bit number: short ones lose their leading zeros, so pad
        # numbers that fit before judging the length (a coast station 002...: 7 digits in the int)
        if m.isdigit() and len(m) < 9 and int(m) >= 1_000_000:
            m = m.zfill(9)
        else:
            return Identity(mmsi=str(mmsi), valid=False, station_type="unknown", problems=["length"])
    if m in TEST_NUMBERS or len(set(m)) == 1 or m in "0123456789" or m in "9876543210":
        problems.append("test_number")
    station, mid = _station(m)
    flag = code = None
    if mid is not None:
        entry = mid_table().get(mid)
        if entry is None:
            problems.append("mid_unallocated")
        else:
            code, flag = entry
    elif station == "unknown":
        problems.append("mid_unallocated")
    foc_codes, foc_mids = _foc_default()
    if foc_flags is not None:
        foc_codes = frozenset(foc_flags)
    foc = bool(code and (code in foc_codes or mid in foc_mids))
    return Identity(mmsi=m, valid=not problems, station_type=station, mid=mid, flag=flag, flag_code=code,
                    flag_of_convenience=foc, problems=problems)


def risk_scores(client, events_index: str, mmsis: list[str], identities: dict[str, Identity], cfg: dict,
                until_ms: int) -> dict[str, dict]:
    """{mmsi: {"score", "events"}} from an in-cluster aggregation of each vessel's recent events."""
    weights = cfg["weights"]
    cap = int(cfg["max_per_type"])
    counts: dict[str, dict[str, int]] = {m: {} for m in mmsis}
    if mmsis and client.indices.exists(index=events_index):
        since = until_ms - int(cfg["window_days"] * 86_400_000)
        for start in range(0, len(mmsis), 1000):
            chunk = mmsis[start:start + 1000]
            body = {"size": 0, "query": {"bool": {"filter": [
                        {"terms": {"mmsi": chunk}}, {"range": {"end": {"gte": since, "format": "epoch_millis"}}}]}},
                    "aggs": {"m": {"terms": {"field": "mmsi", "size": len(chunk) * 2}, "aggs": {
                        "t": {"terms": {"field": "type", "size": 20}, "aggs": {
                            "s": {"terms": {"field": "subtype", "size": 20}}}}}}}}
            resp = client.search(index=events_index, body=body)
            for mb in resp["aggregations"]["m"]["buckets"]:
                if mb["key"] not in counts:
                    continue
                for tb in mb["t"]["buckets"]:
                    for sb in tb["s"]["buckets"]:
                        kind = "gap_short" if tb["key"] == "gap" and sb["key"] == "short" else tb["key"]
                        counts[mb["key"]][kind] = counts[mb["key"]].get(kind, 0) + sb["doc_count"]
    out = {}
    for m in mmsis:
        ident = identities.get(m)
        score = 0.0
        kinds = counts.get(m, {})
        for kind, n in kinds.items():
            if kind == "identity":
                continue  # counted once below, from the identity itself
            score += weights.get(kind, 0) * min(n, cap)
        if ident is not None and not ident.valid:
            score += weights["identity"]
        if ident is not None and ident.flag_of_convenience:
            score += weights["flag_of_convenience"]
        out[m] = {"score": min(100.0, score), "events": sorted(kinds)}
    return out


def update_ships_seen(client, ships_index: str, updates: dict[str, dict]) -> tuple[int, int]:
    """Partial updates (``doc``) of identity/area/risk on ships-seen. Returns (updated, missing).

    Missing documents (no ships-seen entry yet) are counted, not created: the ingest sink owns
    the document and writes it whole with an external version.
    """
    if not updates or not client.indices.exists(index=ships_index):
        return 0, len(updates)
    actions = [{"_op_type": "update", "_index": ships_index, "_id": m, "doc": doc} for m, doc in updates.items()]
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh=True)
    missing = sum(1 for e in errors if (e.get("update") or {}).get("status") == 404)
    for e in errors:
        if (e.get("update") or {}).get("status") != 404:
            log.warning("ships-seen update failed: %s", e)
    return ok, missing
