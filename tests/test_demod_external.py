"""Our transmit side read by AIS decoders other people wrote: Dire Wolf's ``atest`` (Debian package
``direwolf``, ``-B AIS``) and GNU AIS (``gnuais``, which reads raw discriminator audio with ``-l``).

Every other test signal comes from our own modulator and is decoded by our own receiver, so a
convention both sides got wrong the same way (FCS byte order, bit order within octets, NRZI
polarity, stuffing, the 6-bit armouring) would pass there. Here the bursts go through a VHF radio's
discriminator (``channel.discriminator_audio``) into programs that check the CRC themselves: the
message bits they print must be ours. Since our receiver decodes these same bursts byte-exactly
(the last test here), its side of every convention is checked too. Each test is skipped, saying
what to install, when the program is missing.

Dire Wolf misses about 1 % of these bursts at any SNR (measured: 3 of 210 at 30 dB Eb/N0, none of
them the same message twice, while ours decoded all 210), so every message is sent twice and must
come out at least once; a wrong convention loses every copy, and nothing else may come out.
"""
import re
import shutil
import subprocess
import wave

import numpy as np
import pytest
from pyais.messages import MessageType1, MessageType3, MessageType5, MessageType8, MessageType18, MessageType24PartA

from aiswatch.demod import channel
from aiswatch.demod.nmea_out import NmeaFormatter
from aiswatch.demod.receiver import DiscriminatorReceiver

RATE = 288_000


def _messages():
    """One message of each length class (168, 160, 424 and 1008 bits), plus a run of 0xFF octets
    that needs a stuffed bit after every five."""
    rng = np.random.default_rng(1371)
    out = []
    for msg in [MessageType1.create(mmsi=244123456, status=3, lat=52.1, lon=4.3, speed=10.2, course=123.4,
                                    heading=120, second=30),
                MessageType3.create(mmsi=538004321, lat=-33.9, lon=18.4, speed=0.1, course=0, heading=511),
                MessageType18.create(mmsi=244123458, speed=5.5, lat=12.5, lon=-45.25, course=123.4, heading=120,
                                     second=30),
                MessageType24PartA.create(mmsi=244123459, partno=0, shipname="SEA BIRD"),
                MessageType5.create(mmsi=244123460, imo=9811000, callsign="PBXY", shipname="EVER GIVEN",
                                    ship_type=70, to_bow=200, to_stern=200, draught=14.5, destination="ROTTERDAM"),
                MessageType8.create(mmsi=244123461, dac=1023, fid=63,
                                    data=bytes(rng.integers(0, 256, 119, dtype=np.uint8))),
                MessageType8.create(mmsi=244123462, dac=1, fid=1, data=b"\xff" * 20)]:
        data, nbits = msg.to_bytes()
        data = data[:nbits // 8]
        if msg.msg_type == 24:
            data = data[:20]  # part A is 160 bits on the air (pyais pads it to 168)
        out.append(data)
    return out


MESSAGES = _messages()


def _audio(messages, channel_name):
    """Discriminator audio (48 kHz, int16) of the messages sent one after the other on a channel,
    the whole sequence twice, 20 ms apart (gnuais loses bursts that follow each other by 4 ms)."""
    bursts, t = [], 0.01
    for data in list(messages) * 2:
        bursts.append(channel.Burst(data, channel_name, t, snr_db=25))
        t += (len(data) * 8 + 120) / 9600 + 0.020
    x = channel.make_capture(bursts, RATE, t + 0.02, noise_power=0.005, seed=len(messages))
    return channel.discriminator_audio(x, RATE, channel_name)


def _dearmor(payload: str, fill: int) -> bytes:
    """6-bit NMEA armouring undone, written here from the NMEA 0183 / IEC 61162 definition."""
    bits = []
    for char in payload:
        value = ord(char) - 48
        if value > 40:
            value -= 8
        bits += [(value >> (5 - i)) & 1 for i in range(6)]
    bits = bits[:len(bits) - fill]
    assert len(bits) % 8 == 0, "an AIS message is whole octets"
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def _need(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} not installed (Debian: apt-get install {package})")
    return path


def test_direwolf_decodes_our_bursts_to_our_message_bits(tmp_path):
    atest = _need("atest", "direwolf")
    a = _audio(MESSAGES, "A")
    b = _audio(MESSAGES[::-1], "B")
    n = max(len(a), len(b))
    stereo = np.zeros((n, 2), dtype=np.int16)
    stereo[:len(a), 0], stereo[:len(b), 1] = a, b
    path = tmp_path / "discriminator.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(stereo.tobytes())
    proc = subprocess.run([atest, "-B", "AIS", "-2", str(path)], capture_output=True, timeout=60)
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout.decode("latin-1"))
    # lines like "[0] AIS>APDW16:{DA!AIVDM,1,1,,A,13`l7@?P1V0Cci0MkuH4lShuP000,0*73": [0] = left
    decoded = {0: [], 1: []}
    for radio, sentence in re.findall(r"^\[(\d)\].*?(!AIVDM,[^\s]*)", out, re.M):
        fields = sentence.split("*")[0].split(",")
        decoded[int(radio)].append(_dearmor(fields[5], int(fields[6])))
    for radio in (0, 1):
        assert set(decoded[radio]) == set(MESSAGES), out
        assert len(decoded[radio]) >= len(MESSAGES) + 1, out  # not one copy of each by luck
    # Dire Wolf prints every message as one sentence; where ours fit in one, they are equal
    ours = NmeaFormatter().sentences(MESSAGES[0], "A")[0]
    assert ours in out


def test_gnuais_decodes_our_bursts_to_our_sentences(tmp_path):
    gnuais = _need("gnuais", "gnuais")
    # gnuais prints 168-bit messages exactly; for other lengths it reports the fill bits as 0
    # and splits long ones its own way, so the comparison here is on the position reports
    reports = [m for m in MESSAGES if len(m) == 21]
    a, b = _audio(reports, "A"), _audio(reports[::-1], "B")
    n = max(len(a), len(b))
    stereo = np.zeros((n, 2), dtype=np.int16)
    # a quarter of full scale: gnuais refuses a sound card level near 100 %
    stereo[:len(a), 0], stereo[:len(b), 1] = a // 4, b // 4
    raw = tmp_path / "discriminator.raw"  # what gnuais -l reads: 48 kHz 16-bit stereo, no header
    raw.write_bytes(stereo.tobytes())
    config = tmp_path / "gnuais.conf"
    config.write_text("MyCall TEST\nMyEmail test@example.com\nSoundDevice default\nSoundChannels both\n")
    proc = subprocess.run([gnuais, "-c", str(config), "-l", str(raw), "-o", "stderr"], capture_output=True,
                          timeout=60, cwd=tmp_path)
    out = proc.stdout.decode("latin-1") + proc.stderr.decode("latin-1")
    # lines like 'ch A type 1 mmsi 244123456: lat ... (!AIVDM,1,1,,A,13`l7@...,0*73)'
    got = {"A": [], "B": []}
    for radio, sentence in re.findall(r"^ch ([AB]) type \d+ mmsi \d+:.*\((!AIVDM,[^)]*)\)", out, re.M):
        got[radio].append(sentence)
    formatter = NmeaFormatter()
    # gnuais names the channel in its log line; its sentence always says A
    want = {formatter.sentences(m, "A")[0] for m in reports}
    for radio in "AB":
        assert set(got[radio]) == want and len(got[radio]) >= len(want) + 1, out


def test_our_receiver_decodes_the_same_audio():
    # the other half of the argument in the module docstring, on the very audio the others read
    rx = DiscriminatorReceiver(48_000)
    frames = rx.process(_audio(MESSAGES, "A").astype(np.float32)) + rx.flush()
    assert [f.message for f in frames] == MESSAGES * 2
