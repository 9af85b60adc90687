"""The link layer on bit vectors: CRC, bit order, stuffing, NRZI, framing, and the NMEA formatter."""
import numpy as np
import pyais
import pytest

from aiswatch.demod import hdlc
from aiswatch.demod.nmea_out import NmeaFormatter, armor, checksum


def test_crc16_x25_check_value():
    # the catalogued check value of CRC-16/X-25 for "123456789"
    assert hdlc.crc16_x25(b"123456789") == 0x906E
    fcs = hdlc.crc16_x25(b"123456789")
    assert hdlc.crc_ok(b"123456789" + bytes([fcs & 0xFF, fcs >> 8]))
    assert not hdlc.crc_ok(b"123456780" + bytes([fcs & 0xFF, fcs >> 8]))


def test_bits_are_sent_lsb_first():
    assert hdlc.bytes_to_bits_lsb(b"\x01\x80").tolist() == [1, 0, 0, 0, 0, 0, 0, 0] + [0] * 7 + [1]
    rng = np.random.default_rng(0)
    data = bytes(rng.integers(0, 256, 40, dtype=np.uint8))
    assert hdlc.bits_to_bytes_lsb(hdlc.bytes_to_bits_lsb(data)) == data
    assert hdlc.message_bits_to_bytes(hdlc.bytes_to_message_bits(data)) == data
    with pytest.raises(ValueError):
        hdlc.message_bits_to_bytes(np.ones(10, dtype=np.uint8))


def test_stuffing_inserts_zero_after_five_ones_and_destuff_inverts():
    assert hdlc.stuff(np.array([1, 1, 1, 1, 1, 1, 0])).tolist() == [1, 1, 1, 1, 1, 0, 1, 0]
    rng = np.random.default_rng(1)
    for _ in range(200):
        bits = (rng.random(rng.integers(1, 400)) < 0.8).astype(np.uint8)  # many runs of 1s
        stuffed = hdlc.stuff(bits)
        assert len(hdlc.flag_positions(stuffed)) == 0  # the flag cannot occur inside stuffed data
        assert hdlc.destuff(stuffed).tolist() == bits.tolist()
    assert hdlc.destuff(np.array([0, 1, 1, 1, 1, 1, 1, 0])) is None  # six 1s: not data


def test_nrzi_zero_is_a_transition_and_polarity_does_not_matter():
    bits = np.array([0, 1, 1, 0, 0, 1, 0], dtype=np.uint8)
    levels = hdlc.nrzi_encode(bits)
    assert levels.tolist() == [1, 1, 1, 0, 1, 1, 0]
    assert hdlc.nrzi_decode(levels, previous=0).tolist() == bits.tolist()
    assert hdlc.nrzi_decode(1 - levels, previous=1).tolist() == bits.tolist()


def test_frame_found_in_a_noisy_bit_stream():
    rng = np.random.default_rng(2)
    message = bytes(rng.integers(0, 256, 21, dtype=np.uint8))
    frame = hdlc.build_frame(message)
    # frame layout: ramp, 24-bit training 0101..., flag
    assert frame[8:32].tolist() == [0, 1] * 12 and frame[32:40].tolist() == hdlc.FLAG.tolist()
    levels = hdlc.nrzi_encode(frame)
    stream = np.concatenate([rng.integers(0, 2, 333).astype(np.uint8), levels,
                             rng.integers(0, 2, 500).astype(np.uint8)])
    found = hdlc.find_messages(hdlc.nrzi_decode(stream))
    assert [m for _, m, _ in found] == [message]
    # one flipped bit inside the body: the CRC rejects it
    broken = stream.copy()
    broken[333 + 100] ^= 1
    assert hdlc.find_messages(hdlc.nrzi_decode(broken)) == []


def test_armor_and_multi_sentence_split_decode_with_pyais():
    from pyais.messages import MessageType5

    msg = MessageType5.create(mmsi=244123456, shipname="EVER GIVEN", callsign="H3RC", destination="ROTTERDAM",
                              ship_type=70, to_bow=200, to_stern=200, draught=14.5)
    data, nbits = msg.to_bytes()
    assert nbits == 424
    payload, fill = armor(data)
    assert (len(payload), fill) == (71, 2)
    fmt = NmeaFormatter()
    first = fmt.sentences(data, "B")
    second = fmt.sentences(data, "B")
    assert len(first) == 2 and first[0].startswith("!AIVDM,2,1,0,B,") and first[1].startswith("!AIVDM,2,2,0,B,")
    assert first[1].split("*")[0].endswith(",2") and second[0].startswith("!AIVDM,2,1,1,B,")
    body = first[0][1:].split("*")[0]
    assert first[0].endswith("*" + checksum(body))
    decoded = pyais.decode(*first).asdict()
    assert decoded["shipname"] == "EVER GIVEN" and decoded["destination"] == "ROTTERDAM"
    assert decoded["mmsi"] == 244123456


def test_tag_block_carries_time_level_and_offset():
    fmt = NmeaFormatter(tags=True, station="dongle1")
    line = fmt.sentences(b"\x10" * 21, "A", timestamp=1700000000.7, level_db=-23.44, freq_offset_hz=1234.4)[0]
    block = line[1:line.index("\\", 1)]
    body, check = block.split("*")
    assert body == "s:dongle1,c:1700000000,L:-23.4,F:1234" and check == checksum(body)


def test_soft_repair_fixes_the_least_reliable_symbols_only_for_fixed_length_types():
    rng = np.random.default_rng(3)
    message = bytearray(rng.integers(0, 256, 21, dtype=np.uint8).tobytes())
    message[0] = (1 << 2) | (message[0] & 3)  # type 1: 168 bits, repairable
    message = bytes(message)
    levels = hdlc.nrzi_encode(hdlc.build_frame(message))
    reliability = np.full(len(levels), 5.0)
    received = levels.copy()
    for i in (120, 170):  # two level errors inside the body, marked unreliable by the slicer
        received[i] ^= 1
        reliability[i] = 0.1
    bits = hdlc.nrzi_decode(received)
    assert hdlc.find_messages(bits) == []
    assert [(m, r) for _, m, r in hdlc.find_messages(bits, reliability)] == [(message, True)]
    # the same errors where the slicer was confident are not guessed
    assert hdlc.find_messages(bits, np.full(len(levels), 5.0)) == []
    # a variable-length type (8) is not repaired: a CRC-16 is too weak to guess on arbitrary lengths
    other = bytes([8 << 2]) + message[1:]
    levels = hdlc.nrzi_encode(hdlc.build_frame(other))
    levels[120] ^= 1
    assert hdlc.find_messages(hdlc.nrzi_decode(levels), reliability) == []


def _fcs_reference(air_bits) -> list[int]:
    """The HDLC frame check sequence (ISO/IEC 13239, which ITU-R M.1371 annex 2 prescribes),
    bit-serial as the standard describes it and written independently of demod.hdlc: a 16-bit
    shift register preset to ones, fed the bits in the order they are sent, generator
    x^16 + x^12 + x^5 + 1; sent as the ones' complement of the register, x^15 term first."""
    reg = 0xFFFF
    for bit in air_bits:
        feedback = int(bit) ^ (reg >> 15)
        reg = (reg << 1) & 0xFFFF
        if feedback:
            reg ^= 0x1021
    reg ^= 0xFFFF
    return [(reg >> (15 - i)) & 1 for i in range(16)]


def _air_bits(octets: bytes) -> list[int]:
    """Octets in the order AIS sends them: each octet least significant bit first."""
    return [(byte >> i) & 1 for byte in octets for i in range(8)]


def _destuff_reference(bits) -> list[int]:
    out, ones, skip = [], 0, False
    for bit in bits:
        if skip:  # the 0 inserted after five 1s
            assert bit == 0
            skip, ones = False, 0
            continue
        out.append(int(bit))
        ones = ones + 1 if bit else 0
        skip = ones == 5
    return out


def test_frame_layout_against_an_independent_reading_of_the_standard():
    # the reference itself against the catalogued CRC-16/X-25 check value of "123456789" (0x906E,
    # sent low byte first): it is the same CRC, seen bit by bit
    assert _fcs_reference(_air_bits(b"123456789")) == _air_bits(bytes([0x6E, 0x90]))
    rng = np.random.default_rng(8)
    for message in [bytes(rng.integers(0, 256, 21, dtype=np.uint8)), b"\xff" * 21, b"\x7e" * 53]:
        frame = hdlc.build_frame(message).tolist()
        # ramp (8 bits), training 24 bits 0101..., start flag, stuffed data + FCS, end flag, 8 bits
        assert frame[:8] == [0] * 8 and frame[8:32] == [0, 1] * 12
        assert frame[32:40] == [0, 1, 1, 1, 1, 1, 1, 0] and frame[-16:-8] == [0, 1, 1, 1, 1, 1, 1, 0]
        body = _destuff_reference(frame[40:-16])
        assert body[:-16] == _air_bits(message)
        assert body[-16:] == _fcs_reference(body[:-16])
        # NRZI (M.1371 annex 2): a 0 is sent as a change of level, a 1 as no change
        levels = hdlc.nrzi_encode(np.array(frame, dtype=np.uint8)).tolist()
        assert all((levels[i] != levels[i - 1]) == (frame[i] == 0) for i in range(1, len(frame)))


def test_training_detector_on_bit_vectors():
    flag = hdlc.FLAG.tolist()
    tail = [0, 1] * 4  # the last 8 bits of the training sequence, as decoded
    assert hdlc._after_training(np.array(tail + flag, dtype=np.uint8), 8)
    # of all 256 possible bytes before a flag, the tail and its 8 one-bit errors pass: 9 in 256,
    # the "1 time in 28" a chance flag in noise gets through
    passing = [p for p in range(256)
               if hdlc._after_training(np.array([(p >> i) & 1 for i in range(8)] + flag, dtype=np.uint8), 8)]
    assert len(passing) == 9
    two_wrong = tail.copy()
    two_wrong[0] ^= 1
    two_wrong[5] ^= 1
    assert not hdlc._after_training(np.array(two_wrong + flag, dtype=np.uint8), 8)
    assert not hdlc._after_training(np.array(tail[1:] + flag, dtype=np.uint8), 7)  # no room for a preamble
    # on a whole frame: the start flag at bit 32 follows the training; a frame sent without a
    # preamble (training replaced by 0s, i.e. a level change every bit) does not
    frame = hdlc.build_frame(bytes(21))
    assert hdlc._after_training(frame, 32)
    bare = frame.copy()
    bare[8:32] = 0
    assert not hdlc._after_training(bare, 32)


def _stream_with(message: bytes, flip: int | None = None, training: bool = True):
    """Noise, the NRZI levels of ``message``'s frame with level ``flip`` (frame index) inverted,
    noise; decoded to bits. Returns (bits, body start, end flag index) in the stream."""
    rng = np.random.default_rng(len(message))
    frame = hdlc.build_frame(message)
    if not training:
        frame[8:32] = 0
    levels = hdlc.nrzi_encode(frame)
    if flip is not None:
        levels[flip] ^= 1
    lead = rng.integers(0, 2, 100).astype(np.uint8)
    stream = np.concatenate([lead, levels, rng.integers(0, 2, 100).astype(np.uint8)])
    return hdlc.nrzi_decode(stream), 100 + 40, 100 + len(frame) - 16


def test_repair_candidates_are_damaged_fixed_length_frames_after_a_training_sequence():
    rng = np.random.default_rng(11)
    position = bytearray(rng.integers(0, 256, 21, dtype=np.uint8).tobytes())
    position[0] = (1 << 2) | (position[0] & 3)  # type 1: 168 bits, a fixed length
    position = bytes(position)
    bits, start, end = _stream_with(position)
    assert hdlc.repair_candidates(bits) == []  # intact: the CRC passes, nothing to repair
    bits, start, end = _stream_with(position, flip=90)
    assert hdlc.repair_candidates(bits) == [(start, end)]
    assert hdlc.repair_candidates(bits, exclude_ends=[end - 3]) == []  # already decoded by another path
    assert hdlc.repair_candidates(bits, exclude_ends=[end - 40]) == [(start, end)]
    bits, _, _ = _stream_with(position, flip=90, training=False)
    assert hdlc.repair_candidates(bits) == []  # no preamble: more likely two chance flags in noise
    # a length no fixed-length type has (30 octets) is not worth guessing at
    bits, _, _ = _stream_with(bytes([8 << 2]) + bytes(rng.integers(0, 256, 29, dtype=np.uint8)), flip=90)
    assert hdlc.repair_candidates(bits) == []
    # 424 bits, a type 5's length: a candidate (the type is checked after the repair)
    bits, start, end = _stream_with(bytes([5 << 2]) + bytes(52), flip=200)
    assert hdlc.repair_candidates(bits) == [(start, end)]
