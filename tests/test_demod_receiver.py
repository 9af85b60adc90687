"""The whole receiver: round trip of every message length class through one capture, the file
formats, the command line (stdout and UDP), the ingest Source, and bad input."""
import os
import socket
import subprocess
import sys
import wave

import numpy as np
import pyais
import pytest
from click.testing import CliRunner
from pyais.messages import (MessageType1, MessageType2, MessageType3, MessageType5, MessageType8,
                            MessageType18, MessageType24PartA, MessageType24PartB)

from aiswatch.demod import channel
from aiswatch.cli.demod import demod
from aiswatch.demod.iqfile import IQFile, IQFormatError
from aiswatch.demod.receiver import Receiver
from aiswatch.common.times import iso_from_ms
from aiswatch.demod.sources import IQFileSource, SDRSource, SDRUnavailable


def random_messages(rng):
    """One message of every length class with random field values: (message octets, pyais message)."""
    def pos(cls, **extra):
        return cls.create(mmsi=int(rng.integers(200_000_000, 775_999_999)), status=int(rng.integers(0, 9)),
                          lat=round(float(rng.uniform(-80, 80)), 4), lon=round(float(rng.uniform(-179, 179)), 4),
                          speed=round(float(rng.uniform(0, 30)), 1), course=round(float(rng.uniform(0, 359)), 1),
                          heading=int(rng.integers(0, 360)), second=int(rng.integers(0, 60)), **extra)

    def text(n):
        return "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ "), n)).strip() or "X"

    msgs = [pos(MessageType1), pos(MessageType2), pos(MessageType3),
            MessageType18.create(mmsi=int(rng.integers(200_000_000, 775_999_999)), speed=5.5, lat=12.5, lon=-45.25,
                                 course=123.4, heading=120, second=30),
            MessageType5.create(mmsi=int(rng.integers(200_000_000, 775_999_999)), imo=int(rng.integers(1e6, 9e6)),
                                callsign=text(6), shipname=text(18), ship_type=int(rng.integers(20, 90)),
                                to_bow=100, to_stern=20, to_port=10, to_starboard=12, month=5, day=17, hour=3,
                                minute=30, draught=7.5, destination=text(15)),
            MessageType24PartA.create(mmsi=int(rng.integers(200_000_000, 775_999_999)), partno=0, shipname=text(16)),
            MessageType24PartB.create(mmsi=int(rng.integers(200_000_000, 775_999_999)), partno=1, ship_type=37,
                                      vendorid="ABC", callsign=text(6), to_bow=5, to_stern=4, to_port=2,
                                      to_starboard=2),
            # 5 slots: 56-bit header + 952 data bits = 1008 bits, the longest AIS message
            MessageType8.create(mmsi=int(rng.integers(200_000_000, 775_999_999)), dac=1023, fid=63,
                                data=bytes(rng.integers(0, 256, 119, dtype=np.uint8)))]
    out = []
    for m in msgs:
        data, nbits = m.to_bytes()
        data = data[:nbits // 8]
        if m.msg_type == 24 and m.partno == 0:
            data = data[:20]  # part A is 160 bits on the air (pyais pads it to 168)
        out.append((data, m))
    return out


def schedule(messages, rng, snr_db=20.0, cfo_hz=2000.0, rate=288_000):
    """Each message on channel A and on channel B, A and B bursts overlapping in time."""
    bursts, t = [], 0.01
    for data, _ in messages:
        slots = 26.67e-3 * (1 + (len(data) * 8 + 88) // 256)
        bursts.append(channel.Burst(data, "A", t, snr_db=snr_db, cfo_hz=cfo_hz, phase=float(rng.uniform(0, 6.3))))
        bursts.append(channel.Burst(data, "B", t + slots / 3, snr_db=snr_db, cfo_hz=cfo_hz,
                                    phase=float(rng.uniform(0, 6.3))))
        t += slots + 0.003
    return bursts, t + 0.05


@pytest.fixture(scope="module")
def roundtrip():
    rng = np.random.default_rng(2024)
    messages = random_messages(rng)
    bursts, duration = schedule(messages, rng)
    x = channel.make_capture(bursts, 288_000, duration, noise_power=0.01, seed=11)
    return messages, bursts, x


def test_roundtrip_every_length_class_on_both_channels(roundtrip):
    messages, bursts, x = roundtrip
    rx = Receiver(288_000)
    frames = []
    for i in range(0, len(x), 50_000):  # blocks cut through bursts
        frames += rx.process(x[i:i + 50_000])
    frames += rx.flush()
    got = sorted((f.channel, f.message) for f in frames)
    want = sorted((b.channel, b.message) for b in bursts)
    assert got == want  # byte-exact, each once
    for f in frames:
        assert f.freq_offset_hz == pytest.approx(2000, abs=300)
    # the NMEA decodes with pyais to the original fields
    from aiswatch.demod.nmea_out import NmeaFormatter
    fmt = NmeaFormatter()
    by_bytes = {data: m for data, m in messages}
    for f in frames:
        sentences = fmt.sentences(f.message, f.channel)
        assert all(s.startswith("!AIVDM,") and f",{f.channel}," in s for s in sentences)
        decoded = pyais.decode(*sentences).asdict()
        original = by_bytes[f.message].asdict()
        # pyais maps some raw codes to enums (e.g. ship type 38 -> NotAvailable): compare with what
        # pyais itself decodes from its own encoding of the original
        reference = pyais.decode(*pyais.encode_msg(by_bytes[f.message])).asdict()
        for key in ("msg_type", "mmsi", "lat", "lon", "speed", "course", "heading", "shipname", "callsign",
                    "destination", "imo", "to_bow", "draught", "dac", "fid"):
            if key in original:
                assert decoded[key] == original[key], (original["msg_type"], key)
        for key, value in reference.items():
            if key not in ("spare_1", "spare_2", "spare", "data"):
                assert decoded[key] == value, (original["msg_type"], key)
        if original["msg_type"] == 8:
            assert len(sentences) == 3 and decoded["data"] == original["data"]


def test_capture_written_as_cu8_decodes_through_the_cli(roundtrip, tmp_path):
    messages, bursts, x = roundtrip
    path = tmp_path / "capture.cu8"
    path.write_bytes(channel.to_cu8(x, scale=127.0 / 1.2))
    result = CliRunner().invoke(demod, [str(path), "--format", "cu8", "--rate", "288000", "--center", "162000000",
                                        "--start-time", "1700000000"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(line.startswith("\\c:17000000") for line in lines)
    texts = [line[line.index("!"):] for line in lines]
    from pyais.stream import IterMessages
    msgs = [m.decode() for m in IterMessages([t.encode() for t in texts])]
    assert sorted(m.mmsi for m in msgs) == sorted(m.mmsi for _, m in messages for _ in "AB")
    channels = sorted(t.split(",")[4] for t in texts if t.split(",")[2] == "1")
    assert channels == ["A"] * len(messages) + ["B"] * len(messages)


@pytest.mark.parametrize("fmt", ["cs8", "cs16", "cf32", "wav"])
def test_other_iq_formats(fmt, tmp_path):
    rng = np.random.default_rng(5)
    data = [bytes(rng.integers(0, 256, 21, dtype=np.uint8)) for _ in range(2)]
    x = channel.make_capture([channel.Burst(data[0], "A", 0.01, snr_db=25), channel.Burst(data[1], "B", 0.02, snr_db=25)],
                             240_000, 0.08, noise_power=0.005, seed=1)
    path = tmp_path / f"cap_162000000Hz.{fmt}"
    if fmt == "wav":
        channel.write_wav_iq(path, x, 240_000, scale=20000)
    else:
        path.write_bytes({"cs8": channel.to_cs8, "cs16": channel.to_cs16, "cf32": lambda s: channel.to_cf32(s)}[fmt](x))
    iq = IQFile(str(path), None, None if fmt == "wav" else 240_000)
    assert iq.fmt == fmt and iq.rate == 240_000 and iq.center_hz == 162_000_000
    source = IQFileSource(str(path), rate=None if fmt == "wav" else 240_000, start_time=1.7e9)
    lines = list(source.lines())
    assert len(lines) == 2 and lines[0].source == source.id and [ln.offset for ln in lines] == [0, 1]
    from aiswatch.demod.nmea_out import armor
    # payload -> channel of each one-sentence message
    assert {ln.text.split(",")[-2]: ln.text.split(",")[-3] for ln in lines} == {armor(data[0])[0]: "A", armor(data[1])[0]: "B"}


def test_discriminator_audio_stereo(tmp_path):
    rng = np.random.default_rng(9)
    data = [bytes(rng.integers(0, 256, 21, dtype=np.uint8)) for _ in range(2)]
    x = channel.make_capture([channel.Burst(data[0], "A", 0.01, snr_db=25), channel.Burst(data[1], "B", 0.015, snr_db=25)],
                             288_000, 0.06, noise_power=0.005, seed=2)
    left = channel.discriminator_audio(x, 288_000, "A")
    right = channel.discriminator_audio(x, 288_000, "B")
    path = tmp_path / "radio.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(np.stack([left, right], axis=1).astype("<i2").tobytes())
    result = CliRunner().invoke(demod, [str(path), "--format", "disc", "--no-tags"])
    assert result.exit_code == 0, result.output
    from aiswatch.demod.nmea_out import NmeaFormatter
    assert result.output.splitlines() == NmeaFormatter().sentences(data[0], "A") + NmeaFormatter().sentences(data[1], "B")


def test_udp_output_like_rtl_ais(roundtrip, tmp_path):
    messages, bursts, x = roundtrip
    path = tmp_path / "short.cu8"
    path.write_bytes(channel.to_cu8(x[: int(0.12 * 288_000)], scale=100))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    result = CliRunner().invoke(demod, [str(path), "--rate", "288000", "--udp", f"127.0.0.1:{port}", "--no-tags"])
    assert result.exit_code == 0 and result.output == ""
    datagram = sock.recv(4096).decode()
    sock.close()
    assert datagram.startswith("!AIVDM,1,1,,A,") and datagram.endswith("\r\n")


def test_truncated_and_wrong_files_give_clear_errors_or_partial_decodes(roundtrip, tmp_path):
    messages, bursts, x = roundtrip
    full = channel.to_cu8(x, scale=100)
    cut = tmp_path / "cut.cu8"
    cut.write_bytes(full[: len(full) // 2 + 1])  # half a capture, ending in the middle of a sample
    source = IQFileSource(str(cut), fmt="cu8", rate=288_000)
    lines = list(source.lines())
    assert 0 < len(lines) < len(bursts)  # the bursts before the cut, the one across the cut dropped
    assert source.stats["truncated_bytes"] == 1
    runner = CliRunner()
    (tmp_path / "notwav.wav").write_bytes(b"hello, this is not a wav file at all")
    res = runner.invoke(demod, [str(tmp_path / "notwav.wav")])
    assert res.exit_code == 1 and "not a WAV file" in res.output
    res = runner.invoke(demod, [str(tmp_path / "x.xyz")])
    assert res.exit_code == 1 and "no such file" in res.output
    (tmp_path / "x.xyz").write_bytes(b"\x00" * 100)
    res = runner.invoke(demod, [str(tmp_path / "x.xyz")])
    assert res.exit_code == 1 and "--format" in res.output
    res = runner.invoke(demod, [str(cut)])
    assert res.exit_code == 1 and "--rate" in res.output
    res = runner.invoke(demod, [str(cut), "--rate", "20000"])
    assert res.exit_code == 1 and "too low" in res.output
    empty = tmp_path / "empty.cu8"
    empty.write_bytes(b"")
    res = runner.invoke(demod, [str(empty), "--rate", "288000"])
    assert res.exit_code == 0 and res.output == ""
    mono = tmp_path / "mono.wav"
    with wave.open(str(mono), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(b"\x00\x00" * 1000)
    res = runner.invoke(demod, [str(mono), "--format", "wav"])
    assert res.exit_code == 1 and "use --format disc" in res.output


def test_no_sdr_is_a_clear_error_and_nonzero_exit():
    # with librtlsdr missing the library cannot load; with it installed no dongle is plugged in here
    with pytest.raises(SDRUnavailable) as err:
        SDRSource(device_index=0)
    assert "librtlsdr" in str(err.value) or "no RTL-SDR" in str(err.value)
    proc = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "demod", "--sdr"], capture_output=True, text=True,
                          timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and ("librtlsdr" in proc.stderr or "no RTL-SDR" in proc.stderr)


def test_noise_alone_gives_no_frames():
    # 6 s of noise at 288 kS/s: ~350k random bits per timing path, thousands of chance flags,
    # repair attempts included: nothing may pass as a message
    x = channel.make_capture([], 288_000, 6.0, noise_power=0.01, seed=21)
    rx = Receiver(288_000)
    frames = []
    for i in range(0, len(x), 288_000):
        frames += rx.process(x[i:i + 288_000])
    assert frames + rx.flush() == []
    assert rx.freq_correction_hz == 0.0  # no signal, no acquisition


@pytest.mark.parametrize("offset_hz, ppm, afc", [(6_500.0, 0.0, True), (-9_000.0, 0.0, True), (-6_500.0, 40.0, False),
                                                 (-6_500.0, 0.0, False)])
def test_dongle_offset_of_tens_of_ppm_is_acquired_from_the_first_block(offset_hz, ppm, afc):
    # 6.5 kHz = 40 ppm at 162 MHz: outside the channel filter until corrected
    rng = np.random.default_rng(4)
    messages = [bytes(rng.integers(0, 256, 21, dtype=np.uint8)) for _ in range(12)]
    bursts = [channel.Burst(m, "AB"[i % 2], 0.01 + i * 0.03, snr_db=20, cfo_hz=offset_hz + rng.uniform(-300, 300))
              for i, m in enumerate(messages)]
    x = channel.make_capture(bursts, 288_000, 0.45, noise_power=0.01, seed=8)
    rx = Receiver(288_000, ppm=ppm, afc=afc)  # positive ppm: a fast crystal, signals appear low (rtl_sdr -p)
    frames = rx.process(x) + rx.flush()
    if not afc and not ppm:
        assert len(frames) < len(messages) // 2  # without correction most are lost: the test is not vacuous
        return
    assert sorted(f.message for f in frames) == sorted(messages)
    assert rx.freq_correction_hz == pytest.approx(offset_hz, abs=400)
    assert np.median([f.freq_offset_hz for f in frames]) == pytest.approx(offset_hz, abs=300)


def test_block_size_does_not_change_what_is_decoded(roundtrip, tmp_path):
    # files stream in blocks; bursts straddling block edges must come out once, whatever the size
    from aiswatch.demod.decode import FrameDecoder

    messages, bursts, x = roundtrip
    path = tmp_path / "blocks.cu8"
    path.write_bytes(channel.to_cu8(x, scale=100))
    results = []
    for block in (None, 20_011, 3_001):
        decoder = FrameDecoder.for_file(str(path), fmt="cu8", rate=288_000, start_time=1_700_000_000.0,
                                        block_samples=block)
        results.append(sorted((f.channel, f.message) for f in decoder.frames_from()))
    assert results[0] == sorted((b.channel, b.message) for b in bursts)
    assert results[1] == results[0] and results[2] == results[0]


def test_source_lines_carry_reception_time_and_ids(tmp_path):
    rng = np.random.default_rng(12)
    data = bytes(rng.integers(0, 256, 21, dtype=np.uint8))
    x = channel.make_capture([channel.Burst(data, "B", 2.5, snr_db=25)], 288_000, 2.6, noise_power=0.01, seed=3)
    path = tmp_path / "late.cu8"
    path.write_bytes(channel.to_cu8(x))
    os.utime(path, (1_700_000_010.0, 1_700_000_010.0))  # written when the recording ended
    source = IQFileSource(str(path), rate=288_000, station="rx1")
    (line,) = list(source.lines())
    # mtime minus duration is the first sample's time; the burst ends ~2.53 s after it. In-process
    # the time, station, level and offset travel as data beside a bare sentence, not as tag text
    assert line.text.startswith("!AIVDM,1,1,,B,")
    assert 1_700_000_009.9 < line.tags["c"] < 1_700_000_010.0 and line.tags["s"] == "rx1"
    assert isinstance(line.tags["L"], float) and isinstance(line.tags["F"], float)
    assert line.source == "iq:late.cu8" and line.offset == 0
    # and they reach the document as such: the time to the millisecond, the signal as measured
    from aiswatch.ingest.pipeline import ListSink, Pipeline

    sink = ListSink()
    pipeline = Pipeline(sink)
    pipeline.feed(line)
    pipeline.finish()
    (doc,) = sink.documents
    assert doc["@timestamp"] == iso_from_ms(int(line.tags["c"] * 1000 + 0.5)) and not doc["@timestamp"].endswith(":09.000Z")
    assert doc["station"] == "rx1" and doc["signal"] == {"level_db": line.tags["L"], "freq_offset_hz": line.tags["F"]}
    # close() from another thread stops the stream after the current block: the burst in the
    # third one-second block is never reached
    closed = IQFileSource(str(path), rate=288_000)
    closed.close()
    assert list(closed.lines()) == []


def test_collision_on_one_channel_and_bursts_cut_at_the_capture_edges():
    rng = np.random.default_rng(30)
    strong, weak, first, last, whole = (bytes(rng.integers(0, 256, 21, dtype=np.uint8)) for _ in range(5))
    duration = 0.3
    bursts = [
        channel.Burst(first, "A", -0.012, snr_db=25),             # started before the recording
        channel.Burst(strong, "A", 0.100, snr_db=26),             # a collision: the strong one is
        channel.Burst(weak, "A", 0.110, snr_db=12),               # captured, the weak one lost
        channel.Burst(whole, "B", 0.100, snr_db=20),              # same time, other channel
        channel.Burst(last, "B", duration - 0.012, snr_db=25),    # still going when it stopped
    ]
    x = channel.make_capture(bursts, 288_000, duration, noise_power=0.01, seed=6)
    rx = Receiver(288_000)
    frames = rx.process(x) + rx.flush()
    assert sorted((f.channel, f.message) for f in frames) == sorted([("A", strong), ("B", whole)])


def _write_float_wav_with_auxi(path, samples, rate, center_hz):
    """A 32-bit float stereo I/Q WAV with an SDR#-style auxi chunk holding the centre frequency."""
    import struct

    data = np.stack([samples.real, samples.imag], axis=1).astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 2, rate, rate * 8, 8, 32)
    auxi = bytes(32) + struct.pack("<I", int(center_hz)) + bytes(32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"auxi" + struct.pack("<I", len(auxi)) + auxi
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_float_wav_with_sdrsharp_centre_tuned_off_the_middle(tmp_path):
    # tuned to 161.990 MHz: channel A is 15 kHz below the centre, B 35 kHz above
    rng = np.random.default_rng(14)
    data = [bytes(rng.integers(0, 256, 21, dtype=np.uint8)) for _ in range(2)]
    x = channel.make_capture([channel.Burst(data[0], "A", 0.01, snr_db=22), channel.Burst(data[1], "B", 0.02, snr_db=22)],
                             288_000, 0.08, noise_power=0.005, seed=4, center_hz=161_990_000)
    path = tmp_path / "SDRSharp_IQ.wav"
    _write_float_wav_with_auxi(path, x, 288_000, 161_990_000)
    iq = IQFile(str(path))
    assert (iq.fmt, iq.rate, iq.center_hz, iq.n_samples) == ("wav", 288_000, 161_990_000, len(x))
    lines = list(IQFileSource(str(path)).lines())
    assert sorted(ln.text.split(",")[-3] for ln in lines) == ["A", "B"]
    # the header is authoritative: a contradicting --rate is an error, not a silent choice
    with pytest.raises(IQFormatError, match="disagrees"):
        IQFile(str(path), rate=250_000)
    # cut inside the data chunk: the samples that are there are read, no crash
    path.write_bytes(path.read_bytes()[:-1001])
    assert IQFile(str(path)).n_samples == len(x) - 126


def test_discriminator_audio_mono_44k1_inverted(tmp_path):
    # a radio whose discriminator output is inverted, recorded by a sound card at 44.1 kHz
    rng = np.random.default_rng(19)
    data = [bytes(rng.integers(0, 256, 21, dtype=np.uint8)) for _ in range(3)]
    x = channel.make_capture([channel.Burst(d, "A", 0.01 + 0.03 * i, snr_db=16) for i, d in enumerate(data)],
                             288_000, 0.12, noise_power=0.005, seed=2)
    audio = -channel.discriminator_audio(x, 288_000, "A", audio_rate=44_100).astype(np.int32)
    path = tmp_path / "mono.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44_100)
        w.writeframes(np.clip(audio, -32768, 32767).astype("<i2").tobytes())
    lines = list(IQFileSource(str(path), fmt="disc").lines())
    from aiswatch.demod.nmea_out import armor
    assert sorted(ln.text.split(",")[-2] for ln in lines) == sorted(armor(d)[0] for d in data)
    assert all("L:" not in ln.text and "F:" not in ln.text for ln in lines)  # no RF level/offset from audio


@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "stdin"])
def test_ingest_iq_feeds_the_pipeline_in_process(roundtrip, tmp_path, es_url, names, es, from_stdin):
    """``aiswatch ingest iq`` demodulates a cu8 recording straight into Elasticsearch (also read
    from standard input, as ``rtl_sdr ... - | aiswatch ingest iq - --format cu8`` does)."""
    messages, bursts, x = roundtrip
    path = tmp_path / "capture.cu8"
    path.write_bytes(channel.to_cu8(x, scale=127.0 / 1.2))
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"))
    source = ["-", "--format", "cu8"] if from_stdin else [str(path)]
    with open(path, "rb") as stdin:
        proc = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "ingest", "iq", *source,
                               "--rate", "288000", "--start-time", "1700000000", "--station", "bench-dongle",
                               "--es", es_url, "--namespace", names.namespace,
                               "--spool-dir", str(tmp_path / "spool")],
                              env=env, stdin=stdin if from_stdin else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"frames={len(bursts)}" in proc.stderr, proc.stderr
    es.indices.refresh(index=f"{names.messages_pattern},{names.ships}")
    hits = es.search(index=names.messages_pattern, size=100)["hits"]["hits"]
    # Each message was sent on A and again on B within the same second: the same payload at the same
    # message time is one transmission to the index (content-derived ids), so one document per message.
    got = sorted(int(h["_source"]["mmsi"]) for h in hits)
    assert got == sorted(m.mmsi for _, m in messages)
    assert {h["_source"]["channel"] for h in hits} <= {"A", "B"}
    assert {h["_source"].get("station") for h in hits} == {"bench-dongle"}
    assert all("level_db" in h["_source"]["signal"] for h in hits)  # the demod's L: tag reaches the document
    assert all(h["_index"] == names.messages(h["_source"]["@timestamp"][:10].replace("-", ".")) for h in hits)
    ships = es.count(index=names.ships)["count"]
    assert ships == len({m.mmsi for _, m in messages})


def test_ingest_sdr_without_a_device_is_a_clear_error(tmp_path):
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "ingest", "sdr",
                           "--es", "http://127.0.0.1:9"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Error:" in proc.stderr and "Traceback" not in proc.stderr


def test_signal_level_tag_follows_the_burst_power(tmp_path):
    # two bursts per channel, 10 dB apart; the L: tag (dB full scale, |x|^2 of samples scaled to
    # +-1) must differ by 10 dB and sit at the burst power the channel model put in
    rng = np.random.default_rng(41)
    messages = [bytes(rng.integers(0, 256, 21, dtype=np.uint8)) for _ in range(4)]
    snrs = [16.0, 26.0, 14.0, 24.0]
    bursts = [channel.Burst(m, "AABB"[i], 0.01 + 0.03 * i, snr_db=s, cfo_hz=float(rng.uniform(-400, 400)))
              for i, (m, s) in enumerate(zip(messages, snrs))]
    noise_power = 0.01
    x = channel.make_capture(bursts, 288_000, 0.15, noise_power=noise_power, seed=13)
    path = tmp_path / "levels.cu8"
    path.write_bytes(channel.to_cu8(x, scale=127.5))  # cu8 full scale is +-127.5: the reader's scale
    result = CliRunner().invoke(demod, [str(path), "--rate", "288000", "--start-time", "1700000000"])
    assert result.exit_code == 0, result.output
    from aiswatch.demod.nmea_out import armor
    level = {}
    for line in result.output.splitlines():
        tags = dict(field.split(":", 1) for field in line[1:line.index("*")].split(","))
        level[line.split(",")[-2]] = float(tags["L"])
    level = [level[armor(m)[0]] for m in messages]
    assert level[1] - level[0] == pytest.approx(10.0, abs=1.0)
    assert level[3] - level[2] == pytest.approx(10.0, abs=1.0)
    # the burst power is Eb/N0 * N0 * 9600 with N0 = noise power / rate (see demod.channel)
    for measured, snr in zip(level, snrs):
        power = 10 ** (snr / 10) * noise_power / 288_000 * 9600
        assert measured == pytest.approx(10 * np.log10(power), abs=0.5)


def test_the_same_message_twice_on_one_channel_is_two_receptions_not_one_per_timing_path():
    # a repeated (or relayed) transmission 50 ms later falls in the same decoding window; each
    # timing path finds both, and each copy must come out once (the dedup used to keep only the
    # latest position per message, so every path's copy of the other one came out again)
    rng = np.random.default_rng(43)
    message = bytes(rng.integers(0, 256, 21, dtype=np.uint8))
    other = bytes(rng.integers(0, 256, 21, dtype=np.uint8))
    bursts = [channel.Burst(message, "A", 0.01, snr_db=22), channel.Burst(other, "B", 0.02, snr_db=22),
              channel.Burst(message, "A", 0.06, snr_db=22)]
    x = channel.make_capture(bursts, 288_000, 0.12, noise_power=0.01, seed=17)
    rx = Receiver(288_000)
    frames = rx.process(x) + rx.flush()
    assert [(f.channel, f.message) for f in frames] == [("A", message), ("B", other), ("A", message)]
    assert frames[2].time_offset - frames[0].time_offset == pytest.approx(0.05, abs=0.001)
