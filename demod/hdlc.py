"""The AIS link layer on bit vectors: NRZI, HDLC flags, bit stuffing, CRC-16 (X.25), bit <-> byte order.

Transmit order (ITU-R M.1371 annex 2 §3.2): message octets go out least-significant bit first,
followed by the complemented CRC-16 (X.25, low byte first); five 1s in a row are followed by a
stuffed 0 so the flag 0x7E (01111110) never appears inside the data; the whole frame
(ramp, training sequence 0101..., flag, stuffed data + CRC, flag, buffer) is NRZI-coded, where a 0
is a change of level and a 1 keeps the level.

Everything here works on numpy uint8 arrays of 0/1 so the receiver can search whole blocks at
once; only the few candidate frames between two flags reach the (cheap) per-frame code.
"""
from __future__ import annotations

import numpy as np

FLAG = np.array([0, 1, 1, 1, 1, 1, 1, 0], dtype=np.uint8)
TRAINING_BITS = 24
RAMP_BITS = 8
# smallest AIS message is 72 bits (types 7/10/13), largest fits in 5 slots (1008 bits)
MIN_MESSAGE_BITS = 72
MAX_MESSAGE_BITS = 1008
CRC_GOOD_RESIDUE = 0xF0B8  # X.25 CRC over data + its own complemented FCS


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_CRC_TABLE = [int(v) for v in _crc_table()]


def crc16_x25_raw(data: bytes, crc: int = 0xFFFF) -> int:
    """The X.25 CRC register after ``data`` (reflected polynomial 0x8408, not complemented)."""
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def crc16_x25(data: bytes) -> int:
    """The CRC-16/X.25 frame check sequence of ``data`` (init 0xFFFF, complemented)."""
    return crc16_x25_raw(data) ^ 0xFFFF


def crc_ok(data_with_fcs: bytes) -> bool:
    """True when the last two bytes are the (low byte first) FCS of the bytes before them."""
    return len(data_with_fcs) > 2 and crc16_x25_raw(data_with_fcs) == CRC_GOOD_RESIDUE


def bytes_to_bits_lsb(data: bytes) -> np.ndarray:
    """Octets to bits in air order: least-significant bit of each octet first."""
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8), bitorder="little")


def bits_to_bytes_lsb(bits: np.ndarray) -> bytes:
    """Bits in air order (a multiple of 8) back to octets."""
    return np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little").tobytes()


def message_bits_to_bytes(bits) -> bytes:
    """AIS message bits (MSB first, as in the NMEA payload) to octets; the length must be a multiple of 8."""
    bits = np.asarray(bits, dtype=np.uint8)
    if len(bits) % 8:
        raise ValueError(f"an AIS frame carries whole octets, got {len(bits)} bits")
    return np.packbits(bits, bitorder="big").tobytes()


def bytes_to_message_bits(data: bytes) -> np.ndarray:
    """Octets to AIS message bits, MSB first (the order of the 6-bit NMEA payload)."""
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8), bitorder="big")


def stuff(bits: np.ndarray) -> np.ndarray:
    """Insert a 0 after every run of five 1s."""
    out = []
    run = 0
    for bit in np.asarray(bits, dtype=np.uint8).tolist():
        out.append(bit)
        if bit:
            run += 1
            if run == 5:
                out.append(0)
                run = 0
        else:
            run = 0
    return np.array(out, dtype=np.uint8)


def destuff(bits: np.ndarray) -> np.ndarray | None:
    """Remove the 0 after every five 1s; None when six 1s occur (not a valid frame body)."""
    bits = np.asarray(bits, dtype=np.uint8)
    # position of every bit within its run of 1s (1-based), vectorised
    ones = bits.astype(np.int32)
    idx = np.arange(len(bits))
    last_zero = np.maximum.accumulate(np.where(ones == 0, idx, -1))
    run = idx - last_zero  # run length of 1s ending at i (when bits[i] == 1)
    run[ones == 0] = 0
    if np.any(run >= 6):
        return None
    fives = np.flatnonzero(run == 5)
    # the bit after five 1s is a stuffed 0 (it must be 0 or run would reach 6)
    drop = fives + 1
    drop = drop[drop < len(bits)]
    keep = np.ones(len(bits), dtype=bool)
    keep[drop] = False
    return bits[keep]


def nrzi_encode(bits: np.ndarray, level: int = 0) -> np.ndarray:
    """NRZI: a 0 toggles the level, a 1 keeps it. Returns levels 0/1, one per bit."""
    bits = np.asarray(bits, dtype=np.uint8)
    toggles = (bits == 0).astype(np.uint8)
    return (np.cumsum(toggles) + level) % 2


def nrzi_decode(levels: np.ndarray, previous: int | None = None) -> np.ndarray:
    """Inverse of :func:`nrzi_encode`: 1 where the level did not change. Polarity does not matter."""
    levels = np.asarray(levels, dtype=np.uint8)
    if len(levels) == 0:
        return levels
    first = levels[0] if previous is None else previous
    prev = np.concatenate(([first], levels[:-1]))
    return (levels == prev).astype(np.uint8)


def build_frame(message: bytes) -> np.ndarray:
    """The bits of one AIS frame before NRZI: ramp, training, flag, stuffed data + FCS, flag, buffer."""
    fcs = crc16_x25(message)
    body = bytes_to_bits_lsb(bytes(message) + bytes([fcs & 0xFF, fcs >> 8]))
    training = np.tile(np.array([0, 1], dtype=np.uint8), TRAINING_BITS // 2)
    ramp = np.zeros(RAMP_BITS, dtype=np.uint8)
    buffer = np.zeros(8, dtype=np.uint8)  # tail after the end flag (ramp-down)
    return np.concatenate([ramp, training, FLAG, stuff(body), FLAG, buffer])


def flag_positions(bits: np.ndarray) -> np.ndarray:
    """Start indices of every 01111110 in a bit vector (vectorised)."""
    bits = np.asarray(bits, dtype=np.uint8)
    n = len(bits) - 7
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    word = np.zeros(n, dtype=np.uint8)
    for k in range(8):
        word |= bits[k:k + n] << k
    return np.flatnonzero(word == 0x7E)


def candidate_bodies(bits: np.ndarray, min_bits: int = MIN_MESSAGE_BITS + 16,
                     max_bits: int | None = None):
    """(start, end) index pairs of the stuffed bits between consecutive flags of a plausible length."""
    if max_bits is None:
        max_bits = (MAX_MESSAGE_BITS + 16) * 6 // 5 + 1
    flags = flag_positions(bits)
    if len(flags) < 2:
        return []
    starts = flags[:-1] + 8
    ends = flags[1:]
    lengths = ends - starts
    ok = (lengths >= min_bits) & (lengths <= max_bits)
    return list(zip(starts[ok].tolist(), ends[ok].tolist()))


def decode_body(stuffed: np.ndarray) -> bytes | None:
    """Destuff the bits between two flags and check the CRC: the message octets, or None."""
    bits = destuff(stuffed)
    if bits is None or len(bits) % 8 or len(bits) < MIN_MESSAGE_BITS + 16:
        return None
    data = bits_to_bytes_lsb(bits)
    if not crc_ok(data):
        return None
    return data[:-2]


def find_messages(decoded_bits: np.ndarray):
    """Every CRC-valid message in an NRZI-decoded bit vector: list of (end_flag_index, message bytes)."""
    found = []
    for start, end in candidate_bodies(decoded_bits):
        message = decode_body(decoded_bits[start:end])
        if message is not None:
            found.append((end, message))
    return found
