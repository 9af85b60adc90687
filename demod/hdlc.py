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


_SIX_ONES = b"\x01" * 6
_STUFFED = b"\x01" * 5 + b"\x00"


def destuff(bits: np.ndarray) -> np.ndarray | None:
    """Remove the 0 after every five 1s; None when six 1s occur (not a valid frame body).

    Runs of 1s are at most five long in valid data, so every 111110 is a whole run plus its stuffed
    0, and a left-to-right byte-string replace removes exactly the stuffed bits (fast on the few
    hundred bits of a frame, which matters because repair attempts call this often)."""
    raw = np.asarray(bits, dtype=np.uint8).tobytes()
    if _SIX_ONES in raw:
        return None
    return np.frombuffer(raw.replace(_STUFFED, _STUFFED[:5]), dtype=np.uint8)


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


# message types whose length on the air is fixed (bits): only these are worth repairing, and the
# length + type check keeps repairs of random noise between two chance flags from passing the CRC
FIXED_LENGTHS = {1: (168,), 2: (168,), 3: (168,), 4: (168,), 5: (424,), 9: (168,), 11: (168,), 18: (168,),
                 19: (312,), 24: (160, 168), 27: (96,)}


_REPAIRABLE_BITS = sorted({n + 16 for lengths in FIXED_LENGTHS.values() for n in lengths})


def _plausible(stuffed: np.ndarray) -> bool:
    """Could these stuffed bits hold a fixed-length message plus CRC (allowing for errors that
    added or removed a stuffed bit)? The type itself is checked after the repair, since a bit
    error may sit in the type field."""
    bits = destuff(stuffed)
    n = len(bits) if bits is not None else len(stuffed) - len(stuffed) // 62
    return any(abs(n - size) <= 2 for size in _REPAIRABLE_BITS)


def repair_body(decoded: np.ndarray, start: int, end: int, reliability: np.ndarray,
                candidates: int = 8, max_flips: int = 2, span: int = 1) -> bytes | None:
    """Soft-decision repair of a frame that failed its CRC: flip the ``candidates`` least
    reliable symbols, one and two at a time, until the CRC passes.

    A wrong symbol i shows up after NRZI decoding as errors in bits i and i + ``span``: a level
    from the discriminator changes bits i and i+1 (span 1); a coherent pseudo-symbol c_i changes
    bits i and i+2 (span 2, see :func:`demod.coherent.data_bits`). Only fixed-length message
    types of the right length are tried.
    """
    body = decoded[start:end]
    # symbols whose flip stays inside the body (the flags stay as received)
    rel = reliability[start:end - span]
    order = np.argsort(rel)[:candidates]
    trials = [(i,) for i in order]
    if max_flips >= 2:
        trials += [(order[a], order[b]) for a in range(len(order)) for b in range(a + 1, len(order))]
    for flips in trials:
        trial = body.copy()
        for i in flips:
            trial[i] ^= 1
            trial[i + span] ^= 1
        message = decode_body(trial)
        if message is not None and (8 * len(message)) in FIXED_LENGTHS.get(message[0] >> 2, ()):
            return message
    return None


_TRAINING_TAIL = np.tile(np.array([0, 1], dtype=np.uint8), 4)


def _after_training(bits: np.ndarray, flag: int) -> bool:
    """Is the flag at ``flag`` preceded by the training sequence (at most one of its last 8 bits
    wrong)? Chance flags in noise pass this 1 time in 28, which keeps repair attempts rare."""
    if flag < 8:
        return False
    return int(np.sum(bits[flag - 8:flag] != _TRAINING_TAIL)) <= 1


def repair_candidates(decoded_bits: np.ndarray, exclude_ends=()) -> list[tuple[int, int]]:
    """Bodies between flags that fail the CRC but follow a training sequence and have the length
    of a fixed-length message: the ones worth a repair attempt. ``exclude_ends``: end-flag indices
    (sorted) near which a message was already found (within 8 bits)."""
    out = []
    ends = np.asarray(sorted(exclude_ends), dtype=np.int64)
    for start, end in candidate_bodies(decoded_bits):
        if len(ends):
            k = np.searchsorted(ends, end)
            near = [ends[j] for j in (k - 1, k) if 0 <= j < len(ends)]
            if any(abs(int(e) - end) <= 8 for e in near):
                continue
        if not _after_training(decoded_bits, start - 8) or not _plausible(decoded_bits[start:end]):
            continue
        if decode_body(decoded_bits[start:end]) is None:
            out.append((start, end))
    return out


def find_messages(decoded_bits: np.ndarray, reliability: np.ndarray | None = None):
    """Every CRC-valid message in an NRZI-decoded bit vector: list of (end_flag_index, message bytes,
    repaired). With ``reliability`` (one non-negative value per bit: the slicer's margin), frames
    that fail the CRC and follow a training sequence get a soft-decision repair attempt
    (:func:`repair_body`)."""
    found = []
    for start, end in candidate_bodies(decoded_bits):
        message = decode_body(decoded_bits[start:end])
        repaired = False
        if (message is None and reliability is not None and _after_training(decoded_bits, start - 8)
                and _plausible(decoded_bits[start:end])):
            message = repair_body(decoded_bits, start, end, reliability)
            repaired = message is not None
        if message is not None:
            found.append((end, message, repaired))
    return found
