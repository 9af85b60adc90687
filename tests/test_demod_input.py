"""What the receiver does with what users give it: options out of range, headers that lie, UDP
targets that do not exist. Every bad value is one line naming the setting and a non-zero exit,
never a traceback."""
import os
import socket
import struct
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from demod import channel
from demod.cli import demod
from demod.decode import FrameDecoder, SDRUnavailable
from demod.iqfile import IQFile, IQFormatError
from demod.nmea_out import NmeaFormatter
from demod.receiver import DiscriminatorReceiver, Receiver
from demod.settings import SettingError
from demod.sources import IQFileSource, SDRSource

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AISWATCH = [sys.executable, "-c", "from ingest.cli import main; main()"]
RNG = np.random.default_rng(77)
MESSAGES = [bytes(RNG.integers(0, 256, 21, dtype=np.uint8)) for _ in range(3)]


@pytest.fixture(scope="module")
def capture():
    """0.25 s at 288 kS/s with three bursts on A, B, A: (samples, the sentences they decode to)."""
    bursts = [channel.Burst(m, "AB"[i % 2], 0.01 + 0.07 * i, snr_db=22) for i, m in enumerate(MESSAGES)]
    x = channel.make_capture(bursts, 288_000, 0.25, noise_power=0.01, seed=5)
    formatter = NmeaFormatter()
    return x, [s for b in bursts for s in formatter.sentences(b.message, b.channel)]


@pytest.fixture
def cu8_file(capture, tmp_path):
    path = tmp_path / "capture.cu8"
    path.write_bytes(channel.to_cu8(capture[0]))
    return path


def wav_bytes(samples: np.ndarray, rate: int, channels: int, data_len: int | None = None) -> bytes:
    """A 16-bit PCM WAV; ``data_len`` overrides the data chunk length (0xFFFFFFFF = 'until the end',
    what sox and ffmpeg write to a pipe), ``rate`` may be anything, even 0."""
    data = np.asarray(samples, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    length = len(data) if data_len is None else data_len
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", length) + data
    return b"RIFF" + struct.pack("<I", min(len(body), 0xFFFFFFFF)) + body


def test_the_capture_decodes_with_good_options(cu8_file, capture):
    # the control for the tests below: with sane values this file prints its three messages
    result = CliRunner().invoke(demod, [str(cu8_file), "--rate", "288000", "--start-time", "1700000000",
                                        "--ppm", "0", "--center", "162e6", "--no-tags"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == capture[1]


@pytest.mark.parametrize("options, option, says", [
    (["--rate", "inf"], "--rate", "finite number"),
    (["--rate", "nan"], "--rate", "finite number"),
    (["--rate", "-288000"], "--rate", "must be positive"),
    (["--rate", "0"], "--rate", "must be positive"),
    (["--rate", "1e15"], "--rate", "maximum of 20 MS/s"),
    (["--rate", "288000", "--center", "nan"], "--center", "finite number"),
    (["--rate", "288000", "--ppm", "nan"], "--ppm", "finite number"),
    (["--rate", "288000", "--ppm", "1e9"], "--ppm", "within +-1000 ppm"),
    (["--rate", "288000", "--ppm", "-1001"], "--ppm", "within +-1000 ppm"),
    (["--rate", "288000", "--start-time", "nan"], "--start-time", "finite number"),
    (["--rate", "288000", "--start-time", "-5"], "--start-time", "between 0 and"),
    (["--rate", "288000", "--start-time", "1e20"], "--start-time", "year 9999"),
    (["--rate", "288000", "--udp", "nosuchhost.invalid:10110"], "--udp", "cannot resolve 'nosuchhost.invalid'"),
    (["--rate", "288000", "--udp", "127.0.0.1:99999"], "--udp", "the port must be 1-65535, got 99999"),
    (["--rate", "288000", "--udp", "127.0.0.1:0"], "--udp", "the port must be 1-65535, got 0"),
    (["--rate", "288000", "--udp", "127.0.0.1"], "--udp", "expected HOST:PORT"),
])
def test_bad_options_are_one_line_errors(cu8_file, options, option, says):
    result = CliRunner().invoke(demod, [str(cu8_file)] + options)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # click's usage error, not a crash
    assert f"Invalid value for '{option}'" in result.output and says in result.output, result.output


def test_bad_options_for_the_live_dongle_are_refused_before_opening_it():
    result = CliRunner().invoke(demod, ["--sdr", "--rate", "inf"])
    assert result.exit_code == 2 and "Invalid value for '--rate'" in result.output
    # the opener checks too (ingest sdr calls it directly): a setting error, before any USB access
    with pytest.raises(SDRUnavailable, match="sample rate must be a finite number"):
        SDRSource(rate=float("nan"))
    with pytest.raises(SDRUnavailable, match="within \\+-1000 ppm"):
        SDRSource(ppm=5000)


def test_udp_target_given_by_name_and_ipv6_literal(cu8_file):
    for family, host, target in [(socket.AF_INET, "127.0.0.1", "localhost:{}"), (socket.AF_INET6, "::1", "[::1]:{}")]:
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((host, 0))
        except OSError:
            pytest.skip(f"no {host} loopback here")
        sock.settimeout(5)
        port = sock.getsockname()[1]
        result = CliRunner().invoke(demod, [str(cu8_file), "--rate", "288000", "--udp", target.format(port), "--no-tags"])
        assert result.exit_code == 0, result.output
        assert sock.recv(4096).decode().startswith("!AIVDM,1,1,,A,")
        sock.close()


def test_wav_header_with_a_rate_the_receiver_cannot_use(tmp_path):
    silence = np.zeros(4800, dtype=np.int16)
    rate0 = tmp_path / "rate0.wav"
    rate0.write_bytes(wav_bytes(silence, 0, 1))
    for fmt in ("disc", None):
        result = CliRunner().invoke(demod, [str(rate0)] + (["--format", fmt] if fmt else []))
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        if fmt == "disc":
            assert "WAV header: the sample rate must be positive, got 0 S/s" in result.output
    fast = tmp_path / "fast.wav"
    fast.write_bytes(wav_bytes(silence, 1_000_000, 1))
    with pytest.raises(IQFormatError, match="discriminator audio must be sampled at 19200 to 384000 Hz"):
        IQFile(str(fast), "disc")
    iq = tmp_path / "iq_rate0.wav"
    iq.write_bytes(wav_bytes(np.zeros((100, 2)), 0, 2))
    with pytest.raises(IQFormatError, match="WAV header: the sample rate must be positive"):
        IQFile(str(iq))


def test_the_library_checks_the_same_settings():
    # the ingest daemon builds sources from its config file, not from click options
    for bad in (float("nan"), float("inf"), 0.0, -1.0, 5e7):
        with pytest.raises(SettingError):
            Receiver(bad)
    with pytest.raises(SettingError, match="ppm"):
        Receiver(288_000, ppm=float("nan"))
    with pytest.raises(SettingError, match="centre"):
        Receiver(288_000, center_hz=float("nan"))
    with pytest.raises(SettingError, match="discriminator audio"):
        DiscriminatorReceiver(8_000)
    with pytest.raises(SettingError, match="maximum of 20 MS/s"):
        FrameDecoder.for_stream(rate=1e15)


def test_iqfilesource_rejects_settings_with_the_file_name(cu8_file):
    for kwargs, says in [({"rate": float("inf")}, "finite number"), ({"rate": 1e15}, "maximum of 20 MS/s"),
                         ({"rate": 288_000, "center": float("nan")}, "centre frequency"),
                         ({"rate": 288_000, "ppm": float("nan")}, "frequency correction"),
                         ({"rate": 288_000, "start_time": float("nan")}, "start time")]:
        with pytest.raises(IQFormatError, match=says) as err:
            IQFileSource(str(cu8_file), **kwargs)
        assert str(err.value).startswith(f"{cu8_file}: ")


def test_ingest_iq_with_bad_input_is_one_line_and_exit_1(tmp_path, cu8_file):
    rate0 = tmp_path / "rate0.wav"
    rate0.write_bytes(wav_bytes(np.zeros(4800, dtype=np.int16), 0, 1))
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"))
    # nothing listens on port 9: the source is checked before Elasticsearch is contacted
    for args, says in [([str(rate0), "--format", "disc"], "WAV header: the sample rate must be positive"),
                       ([str(cu8_file), "--rate", "inf"], "the sample rate must be a finite number"),
                       ([str(cu8_file), "--rate", "1e15"], "maximum of 20 MS/s"),
                       ([str(cu8_file), "--rate", "288000", "--start-time", "nan"], "start time")]:
        proc = subprocess.run(AISWATCH + ["ingest", "iq"] + args + ["--es", "http://127.0.0.1:9",
                                                                     "--spool-dir", str(tmp_path / "spool")],
                              env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
