"""Who a simulated vessel is: ``VesselSpec`` (its static AIS data) and realistic random identities.

The spec is exactly what the vessel broadcasts in type 5 (class A) or type 24 A/B (class B); the
MMSI may be anything that fits AIS's 30 bits, including invalid or fake ones (a planted fake
MMSI is just a VesselSpec with e.g. mmsi=123456789 or 1000).
"""
from __future__ import annotations

import dataclasses
import random
import string
from dataclasses import dataclass

# AIS 6-bit text: upper-case letters, digits, space and these punctuation characters
AIS_TEXT_CHARS = set(string.ascii_uppercase + string.digits + " !\"#$%&'()*+,-./:;<=>?@[\\]^_")


def _ais_text(value: str, field: str, max_len: int) -> str:
    text = (value or "").upper()
    bad = sorted(set(text) - AIS_TEXT_CHARS)
    if bad:
        raise ValueError(f"VesselSpec.{field}: characters {bad!r} cannot be sent in AIS 6-bit text")
    if len(text) > max_len:
        raise ValueError(f"VesselSpec.{field}: {text!r} is longer than AIS's {max_len} characters")
    return text


@dataclass(frozen=True)
class VesselSpec:
    """Static and voyage data of one simulated vessel.

    mmsi: any integer 0 .. 2**30-1 (valid ones have 9 digits starting with a real MID; anything
          else plants a fake/invalid MMSI). name (<= 20 chars), callsign (<= 7), imo (0 = none),
    ship_type: ITU code (30 fishing, 36 sailing, 37 pleasure, 52 tug, 60-69 passenger, 70-79
          cargo, 80-89 tanker ...). length / beam in metres; to_bow/to_stern/to_port/to_starboard
          (GPS antenna position) are derived from them when not given.
    cls: 'A' (types 1/3 + 5) or 'B' (types 18 + 24). destination (<= 20 chars), draught (m),
    eta: (month, day, hour, minute) or None (sent as "not available").
    send_static: False for a vessel that never sends static data (typical of fake identities).
    reports_heading: False for a transponder without a heading sensor (heading sent as 511, common
          on class B); the track's heading is then not broadcast.
    """

    mmsi: int
    name: str = ""
    callsign: str = ""
    imo: int = 0
    ship_type: int = 70
    length: int = 100
    beam: int = 16
    cls: str = "A"
    destination: str = ""
    draught: float = 0.0
    to_bow: int | None = None
    to_stern: int | None = None
    to_port: int | None = None
    to_starboard: int | None = None
    eta: tuple[int, int, int, int] | None = None
    send_static: bool = True
    reports_heading: bool = True

    def __post_init__(self):
        if not 0 <= int(self.mmsi) < 2 ** 30:
            raise ValueError(f"VesselSpec.mmsi {self.mmsi} does not fit AIS's 30 bits")
        if self.cls not in ("A", "B"):
            raise ValueError(f"VesselSpec.cls must be 'A' or 'B', not {self.cls!r}")
        if not 0 <= self.ship_type <= 255:
            raise ValueError(f"VesselSpec.ship_type {self.ship_type} is not an 8-bit ITU ship type")
        if not 0 <= self.imo < 2 ** 30:
            raise ValueError(f"VesselSpec.imo {self.imo} does not fit 30 bits")
        set_ = object.__setattr__  # frozen dataclass: normalise in place once
        set_(self, "mmsi", int(self.mmsi))
        set_(self, "name", _ais_text(self.name, "name", 20))
        set_(self, "callsign", _ais_text(self.callsign, "callsign", 7))
        set_(self, "destination", _ais_text(self.destination, "destination", 20))
        # GPS antenna near the bridge, ~80 % of the length from the bow for most ships
        bow = self.to_bow if self.to_bow is not None else round(self.length * 0.8)
        stern = self.to_stern if self.to_stern is not None else max(0, self.length - bow)
        port = self.to_port if self.to_port is not None else self.beam // 2
        starboard = self.to_starboard if self.to_starboard is not None else max(0, self.beam - port)
        for field, value, limit in (("to_bow", bow, 511), ("to_stern", stern, 511), ("to_port", port, 63),
                                    ("to_starboard", starboard, 63)):
            if not 0 <= value <= limit:
                raise ValueError(f"VesselSpec.{field} {value} outside AIS range 0..{limit}")
            set_(self, field, int(value))
        if not 0 <= self.draught <= 25.5:
            raise ValueError(f"VesselSpec.draught {self.draught} outside AIS range 0..25.5 m")

    @property
    def dimension_length(self) -> int:
        return self.to_bow + self.to_stern

    @property
    def dimension_beam(self) -> int:
        return self.to_port + self.to_starboard

    def replace(self, **changes) -> "VesselSpec":
        """A copy with some fields changed (e.g. a second ship claiming the same MMSI)."""
        derived = {"to_bow", "to_stern", "to_port", "to_starboard"}
        if {"length", "beam"} & set(changes):
            changes = {**{k: None for k in derived if k not in changes}, **changes}
        return dataclasses.replace(self, **changes)


# Maritime Identification Digits of North Sea / flag-of-convenience states, with call sign prefixes
MIDS = {
    211: ("Germany", ["DA", "DB", "DC", "DD", "DF", "DG", "DH"]),
    219: ("Denmark", ["OU", "OW", "OX", "OY", "OZ"]),
    235: ("United Kingdom", ["MA", "MB", "MC", "MG", "MH", "ZQ"]),
    244: ("Netherlands", ["PA", "PB", "PC", "PD", "PE", "PF", "PH"]),
    245: ("Netherlands", ["PB", "PC", "PD"]),
    257: ("Norway", ["LA", "LB", "LC", "LF", "LG", "LH", "LJ", "LK", "LM", "LN"]),
    265: ("Sweden", ["SA", "SB", "SC", "SE", "SF", "SG", "SH", "SI", "SJ", "SK", "SL", "SM"]),
    205: ("Belgium", ["OO", "OR", "OT"]),
    227: ("France", ["FA", "FB", "FH", "FM", "FN"]),
    636: ("Liberia", ["A8", "D5", "EL"]),
    538: ("Marshall Islands", ["V7"]),
    249: ("Malta", ["9H"]),
    477: ("Hong Kong", ["VR"]),
    351: ("Panama", ["3E", "3F", "H3", "H8", "H9", "HO", "HP"]),
}
FLAG_WEIGHTS = {211: 8, 219: 7, 235: 9, 244: 10, 245: 3, 257: 7, 265: 4, 205: 3, 227: 3, 636: 6, 538: 5, 249: 4,
                477: 3, 351: 5}

DESTINATIONS = ["NLRTM", "DEHAM", "BEANR", "GBFXT", "GBLGP", "DEBRV", "DKEBJ", "NOSVG", "GBTYN", "GBHUL",
                "FRDKK", "NLAMS", "BEZEE", "DEWVN", "GBIMM", "NOKRS", "DKAAR", "GBSOU", "FRLEH", "NLIJM",
                "ROTTERDAM", "HAMBURG", "ANTWERP", "FELIXSTOWE", "ESBJERG", "IJMUIDEN", "ABERDEEN", "FOR ORDERS"]

_NAME_A = ["NORD", "NORTHERN", "BALTIC", "ATLANTIC", "ARCTIC", "NORDIC", "SEA", "OCEAN", "CAPE", "STAR", "GOLDEN",
           "SILVER", "BLUE", "NEW", "GRAND", "EUROPEAN", "HANSA", "VIKING", "POLAR", "TIDE", "WADDEN", "DOGGER",
           "FRISIAN", "JUTLAND", "HUMBER", "THAMES", "SCHELDE", "ELBE", "WESER", "FORTH"]
_NAME_B = ["STAR", "SPIRIT", "PIONEER", "HORIZON", "TRADER", "EXPRESS", "CARRIER", "VOYAGER", "BREEZE", "WAVE",
           "ENDEAVOUR", "FORTUNE", "GUARDIAN", "NAVIGATOR", "RUNNER", "HAWK", "EAGLE", "LIGHT", "QUEEN", "PRIDE",
           "MARINER", "PROGRESS", "HARMONY", "ISLANDER", "BRIDGE", "CROWN", "VENTURE", "DAWN", "MIST", "SWAN"]
_SMALL_NAMES = ["ALBATROS", "MEERMIN", "ZEEMEEUW", "SEAGULL", "HAVFRUE", "SKARV", "MOWE", "KITTIWAKE", "LIBERTY",
                "SOLVEIG", "INGRID", "MARIJKE", "ANNA", "FREYA", "TJALK", "NOORDERLICHT", "WINDROOS", "KESTREL",
                "OSPREY", "PUFFIN", "BRAVO", "ODYSSEY", "SEA DANCER", "BLUE MOON", "WILD GOOSE"]

# (ITU ship type, class, weight, length range m, speed range kn)
SHIP_PROFILES = {
    "A": [
        (70, 20, (90, 200), (10.0, 15.0)),   # general cargo
        (71, 4, (80, 180), (10.0, 14.0)),
        (79, 10, (150, 366), (14.0, 21.0)),  # large cargo / container
        (80, 12, (100, 250), (10.0, 14.5)),  # tanker
        (84, 3, (180, 330), (11.0, 15.0)),
        (60, 6, (120, 230), (16.0, 24.0)),   # passenger / ferry
        (69, 3, (60, 140), (12.0, 20.0)),
        (40, 1, (30, 60), (25.0, 35.0)),     # high-speed craft
        (30, 10, (20, 70), (7.0, 11.0)),     # fishing
        (52, 4, (25, 40), (8.0, 12.0)),      # tug
        (31, 1, (25, 45), (6.0, 9.0)),       # towing
        (33, 2, (60, 160), (9.0, 13.0)),     # dredging
        (50, 1, (15, 25), (12.0, 20.0)),     # pilot
        (90, 3, (40, 100), (9.0, 13.0)),     # other (offshore supply)
    ],
    "B": [
        (37, 40, (7, 25), (5.0, 18.0)),      # pleasure craft
        (36, 35, (8, 20), (4.0, 7.5)),       # sailing
        (30, 20, (10, 24), (6.0, 10.0)),     # small fishing
        (52, 5, (12, 25), (6.0, 10.0)),      # harbour tug
    ],
}


def _imo_number(rng: random.Random) -> int:
    """A 7-digit IMO number with a valid check digit (sum of digits 1-6 weighted 7..2, mod 10)."""
    digits = [9, *[rng.randrange(10) for _ in range(5)]]
    check = sum(d * w for d, w in zip(digits, range(7, 1, -1))) % 10
    return int("".join(map(str, digits)) + str(check))


def imo_is_valid(imo: int) -> bool:
    s = str(imo)
    if len(s) != 7:
        return False
    return sum(int(d) * w for d, w in zip(s[:6], range(7, 1, -1))) % 10 == int(s[6])


def random_mmsi(rng: random.Random, mid: int | None = None, used: set[int] | None = None) -> int:
    """A valid-looking 9-digit ship MMSI: MID + 6 digits (not starting with 0), unique within ``used``."""
    while True:
        if mid is None:
            mids, weights = zip(*FLAG_WEIGHTS.items())
            m = rng.choices(mids, weights)[0]
        else:
            m = mid
        mmsi = m * 1_000_000 + rng.randrange(100_000, 1_000_000)
        if used is None or mmsi not in used:
            if used is not None:
                used.add(mmsi)
            return mmsi


def random_vessel(rng: random.Random, cls: str = "A", used_mmsi: set[int] | None = None,
                  used_names: set[str] | None = None) -> tuple[VesselSpec, float]:
    """A realistic random vessel of class ``cls`` and its typical service speed (kn)."""
    profiles = SHIP_PROFILES[cls]
    ship_type, _, (lmin, lmax), (vmin, vmax) = rng.choices(profiles, [p[1] for p in profiles])[0]
    mmsi = random_mmsi(rng, used=used_mmsi)
    country_prefixes = MIDS[mmsi // 1_000_000][1]
    length = rng.randint(lmin, lmax)
    beam = max(3, min(63, round(length / rng.uniform(5.5, 7.5))))
    for _ in range(100):
        if cls == "A" and ship_type not in (30, 31, 52, 50):
            name = f"{rng.choice(_NAME_A)} {rng.choice(_NAME_B)}"
        else:
            name = rng.choice(_SMALL_NAMES) + ("" if rng.random() < 0.5 else f" {rng.randint(1, 99)}")
        if used_names is None or name not in used_names:
            break
        name = f"{name} {rng.randint(2, 9)}"
        if name not in used_names:
            break
    if used_names is not None:
        used_names.add(name)
    prefix = rng.choice(country_prefixes)
    callsign = prefix + "".join(rng.choice(string.digits + string.ascii_uppercase[:10]) for _ in range(7 - len(prefix) - 1))
    speed = rng.uniform(vmin, vmax)
    if cls == "A":
        draught = round(min(25.5, max(1.5, length / rng.uniform(14.0, 20.0))), 1)
        spec = VesselSpec(mmsi=mmsi, name=name, callsign=callsign, imo=_imo_number(rng), ship_type=ship_type,
                          length=length, beam=beam, cls="A", destination=rng.choice(DESTINATIONS), draught=draught,
                          eta=(rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.choice([0, 15, 30, 45])))
    else:
        # most class B sets have no heading sensor
        spec = VesselSpec(mmsi=mmsi, name=name, callsign=callsign, ship_type=ship_type, length=length, beam=beam,
                          cls="B", reports_heading=rng.random() < 0.3)
    return spec, speed
