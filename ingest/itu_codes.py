"""ITU-R M.1371 code tables the documents spell out: navigational status (Table 45) and type of
ship (Table 53, with the category aiswatch groups it into)."""
from __future__ import annotations


# ITU-R M.1371-5, Table 45: navigational status.
NAV_STATUS_TEXT = {
    0: "under way using engine", 1: "at anchor", 2: "not under command",
    3: "restricted manoeuvrability", 4: "constrained by her draught", 5: "moored", 6: "aground",
    7: "engaged in fishing", 8: "under way sailing", 9: "reserved for HSC", 10: "reserved for WIG",
    11: "power-driven vessel towing astern", 12: "power-driven vessel pushing ahead or towing alongside",
    13: "reserved", 14: "AIS-SART active", 15: "not defined",
}

_HAZARD = {1: "hazardous category A", 2: "hazardous category B", 3: "hazardous category C",
           4: "hazardous category D", 9: "no additional information"}
_FIRST_DIGIT = {2: ("wing in ground", "other"), 4: ("high speed craft", "high_speed"),
                6: ("passenger", "passenger"), 7: ("cargo", "cargo"), 8: ("tanker", "tanker"),
                9: ("other type", "other")}
_SPECIAL = {
    30: ("fishing", "fishing"), 31: ("towing", "tug"),
    32: ("towing, length over 200 m or breadth over 25 m", "tug"),
    33: ("dredging or underwater operations", "other"), 34: ("diving operations", "other"),
    35: ("military operations", "military"), 36: ("sailing", "sailing"),
    37: ("pleasure craft", "pleasure"), 38: ("reserved", "unknown"), 39: ("reserved", "unknown"),
    50: ("pilot vessel", "pilot"), 51: ("search and rescue vessel", "sar"), 52: ("tug", "tug"),
    53: ("port tender", "other"), 54: ("anti-pollution equipment", "other"),
    55: ("law enforcement", "law_enforcement"), 56: ("spare, local vessel", "other"),
    57: ("spare, local vessel", "other"), 58: ("medical transport", "other"),
    59: ("noncombatant ship (RR Resolution 18)", "other"),
}


def _ship_type_table() -> dict[int, tuple[str, str]]:
    """ITU-R M.1371-5 Table 53 (type of ship) as code -> (text, category), for codes 0-255."""
    table: dict[int, tuple[str, str]] = {0: ("not available", "unknown")}
    for code in range(1, 256):
        first, second = divmod(code, 10)
        if code in _SPECIAL:
            table[code] = _SPECIAL[code]
        elif first in _FIRST_DIGIT and code < 100:
            text, category = _FIRST_DIGIT[first]
            if first == 9:
                detail = _HAZARD.get(second, "reserved for future use") if second else ""
            else:
                detail = _HAZARD.get(second, "reserved for future use") if second else "all ships of this type"
            table[code] = (f"{text}, {detail}" if detail else text, category)
        else:  # 1-19 reserved for future use, 100-199 regional use, 200-255 future use
            table[code] = ("regional use" if 100 <= code < 200 else "reserved for future use", "unknown")
    return table


SHIP_TYPE = _ship_type_table()


def ship_type_info(code: int | None) -> tuple[str | None, str | None]:
    """(ship_type_text, ship_category) for an AIS ship type code."""
    if code is None:
        return None, None
    return SHIP_TYPE.get(code, ("reserved for future use", "unknown"))
