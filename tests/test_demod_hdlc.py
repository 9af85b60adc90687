"""The link layer on bit vectors: CRC, bit order, stuffing, NRZI, framing, and the NMEA formatter."""
import numpy as np
import pyais
import pytest

from demod import hdlc
from demod.nmea_out import NmeaFormatter, armor, checksum


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
