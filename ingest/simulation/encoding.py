"""AIS payloads and NMEA lines for the simulator.

Static messages (types 5 and 24) go through ``pyais.encode_dict`` once per vessel and are cached;
only their sequence id and channel change between broadcasts. Position reports (types 1, 3 and
18) are the bulk of the traffic, so they are packed here directly as 168-bit integers and armored
two characters at a time, which is several times faster than building pyais payload objects; the
tests decode every generated line with pyais to keep this honest.

Every line carries an NMEA 4.10 tag block with the station and the message time
(``\\s:sim,c:1700000000*hh\\!AIVDM,...``) so the time survives files and UDP.
"""
from __future__ import annotations

from functools import reduce
from operator import xor

from pyais.encode import encode_dict

from aiswatch.ingest.simulation.tracks import TrackState
from aiswatch.ingest.simulation.vessels import VesselSpec


def _armor_char(v: int) -> str:
    return chr(v + 48 if v < 40 else v + 56)


# 12 bits -> 2 armored characters, and the XOR of their codes (for the checksum)
_ARMOR2 = [_armor_char(i >> 6) + _armor_char(i & 63) for i in range(4096)]
_ARMOR2_XOR = [ord(s[0]) ^ ord(s[1]) for s in _ARMOR2]


def checksum(text: str) -> int:
    """NMEA checksum: XOR of the characters between the start delimiter and '*'."""
    return reduce(xor, text.encode("ascii"), 0)


def tag_block(station: str, t: int, group: str | None = None) -> str:
    """``\\s:<station>,c:<unix seconds>*hh\\`` (NMEA 4.10 tag block), with ``g:<group>`` first if given."""
    body = f"s:{station},c:{t}" if group is None else f"g:{group},s:{station},c:{t}"
    return f"\\{body}*{checksum(body):02X}\\"


def _speed(sog: float | None, scale: int, none: int, top: int) -> int:
    if sog is None:
        return none
    return min(top, max(0, int(round(sog * scale))))


def position_payload(msg_type: int, mmsi: int, s: TrackState, second: int, accuracy: bool = True,
                     repeat: int = 0) -> tuple[str, int]:
    """Armored 28-character payload of a type 1/3 (class A) or 18 (class B) report, and its XOR.

    Sentinels for None: speed 1023 (102.3 kn), course 3600, heading 511, rate of turn -128.
    """
    sog = _speed(s.sog, 10, 1023, 1022)
    cog = 3600 if s.cog is None else int(round(s.cog * 10)) % 3600
    heading = 511 if s.heading is None else int(s.heading) % 360
    lon = int(round(s.lon * 600_000)) & 0xFFFFFFF
    lat = int(round(s.lat * 600_000)) & 0x7FFFFFF
    if msg_type == 18:
        # reserved 8 | speed | accuracy | lon | lat | course | heading | second | reserved 2 |
        # cs=1 display=0 dsc=1 band=1 msg22=1 assigned=0 raim=0 | radio 20 (CS unit: 1100000000000000110)
        v = (18 << 162) | (repeat << 160) | (mmsi << 130) | (sog << 112) | (int(accuracy) << 111) | (lon << 83) \
            | (lat << 56) | (cog << 44) | (heading << 35) | (second << 29) | (0b1011100 << 20) | 0b11000000000000000110
    else:
        rot = s.rot
        if rot is None:
            turn = 0x80  # -128: not available
        else:
            # ROT_AIS = 4.733 * sqrt(ROT deg/min), signed, +-126 max (127 = "more than 5 deg/30 s")
            mag = min(126, int(round(4.733 * abs(rot) ** 0.5)))
            turn = (mag if rot >= 0 else -mag) & 0xFF
        status = s.nav_status & 0xF
        v = (msg_type << 162) | (repeat << 160) | (mmsi << 130) | (status << 126) | (turn << 118) | (sog << 108) \
            | (int(accuracy) << 107) | (lon << 79) | (lat << 52) | (cog << 40) | (heading << 31) | (second << 25)
        # maneuver 0, spare, raim 0, radio: SOTDMA sync state 0, slot timeout 3
        v |= 3 << 14
    a2, x2 = _ARMOR2, _ARMOR2_XOR
    chars = []
    acc = 0
    for shift in range(156, -1, -12):
        k = (v >> shift) & 0xFFF
        chars.append(a2[k])
        acc ^= x2[k]
    return "".join(chars), acc


# XOR of "AIVDM,1,1,," and of "A," / "B," and of ",0" so a position line's checksum needs only the payload
_XOR_HEAD = checksum("AIVDM,1,1,,")
_XOR_CHANNEL = {"A": checksum("A,"), "B": checksum("B,")}
_XOR_TAIL = checksum(",0")


def single_sentence(payload: str, payload_xor: int, channel: str) -> str:
    """``!AIVDM,1,1,,<channel>,<payload>,0*hh`` for a 168-bit payload (no fill bits)."""
    cs = _XOR_HEAD ^ _XOR_CHANNEL[channel] ^ payload_xor ^ _XOR_TAIL
    return f"!AIVDM,1,1,,{channel},{payload},0*{cs:02X}"


def sentences(payload: str, fill: int, channel: str, seq_id: int | None) -> list[str]:
    """Split an armored payload into ``!AIVDM`` sentences of <= 60 payload characters (as pyais does)."""
    parts = [payload[i:i + 60] for i in range(0, len(payload), 60)] or [""]
    n = len(parts)
    seq = "" if n == 1 or seq_id is None else str(seq_id)
    out = []
    for k, part in enumerate(parts, start=1):
        body = f"AIVDM,{n},{k},{seq},{channel},{part},{fill if k == n else 0}"
        out.append(f"!{body}*{checksum(body):02X}")
    return out


def _payload_of(data: dict) -> tuple[str, int]:
    """(armored payload, fill bits) of a message dict, via pyais."""
    lines = encode_dict(data, talker_id="AI", sentence_type="VDM", radio_channel="A", seq_id=0)
    payload = "".join(line.split(",")[5] for line in lines)
    fill = int(lines[-1].split(",")[6].split("*")[0])
    return payload, fill


def static_payloads(spec: VesselSpec) -> list[tuple[int, str, int]]:
    """The vessel's static messages as (msg_type, armored payload, fill bits), in broadcast order.

    Class A: one type 5 (two sentences). Class B: type 24 part A (name) then part B (type,
    call sign, dimensions).
    """
    if spec.cls == "A":
        month, day, hour, minute = spec.eta if spec.eta else (0, 0, 24, 60)
        data = dict(type=5, mmsi=spec.mmsi, ais_version=2, imo=spec.imo, callsign=spec.callsign,
                    shipname=spec.name, ship_type=spec.ship_type, to_bow=spec.to_bow, to_stern=spec.to_stern,
                    to_port=spec.to_port, to_starboard=spec.to_starboard, epfd=1, month=month, day=day,
                    hour=hour, minute=minute, draught=spec.draught, destination=spec.destination, dte=0)
        return [(5, *_payload_of(data))]
    part_a = dict(type=24, mmsi=spec.mmsi, partno=0, shipname=spec.name)
    part_b = dict(type=24, mmsi=spec.mmsi, partno=1, ship_type=spec.ship_type, vendorid="SIM", model=1,
                  serial=spec.mmsi % 1_000_000, callsign=spec.callsign, to_bow=spec.to_bow, to_stern=spec.to_stern,
                  to_port=spec.to_port, to_starboard=spec.to_starboard)
    return [(24, *_payload_of(part_a)), (24, *_payload_of(part_b))]
