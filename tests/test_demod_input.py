"""What the receiver does with what users give it: options out of range, headers that lie, UDP
targets that do not exist, pipes and FIFOs instead of files, and a dongle that goes away while
being read. Every bad value is one line naming the setting and a non-zero exit, never a traceback;
pipes decode exactly what the same samples decode from a file."""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from aiswatch.demod import channel
from aiswatch.cli.demod import demod
from aiswatch.demod.decode import FrameDecoder, SDRUnavailable
from aiswatch.demod.iqfile import IQFile, IQFormatError
from aiswatch.demod.nmea_out import NmeaFormatter
from aiswatch.demod.receiver import DiscriminatorReceiver, Receiver
from aiswatch.demod.settings import SettingError
from aiswatch.demod.sources import IQFileSource, SDRSource

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AISWATCH = [sys.executable, "-c", "from aiswatch.cli import main; main()"]
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
    (["--rate", "288000", "--udp", "127.0.0.1:99999"], "--udp", "port 99999 in '127.0.0.1:99999' is out of range: a port is 1-65535"),
    (["--rate", "288000", "--udp", "127.0.0.1:0"], "--udp", "port 0 in '127.0.0.1:0' is out of range"),
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


def test_ingest_iq_with_bad_input_is_one_line(tmp_path, cu8_file):
    rate0 = tmp_path / "rate0.wav"
    rate0.write_bytes(wav_bytes(np.zeros(4800, dtype=np.int16), 0, 1))
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"))
    # nothing listens on port 9: the source is checked before Elasticsearch is contacted
    # a file it cannot use: 1; a value on the command line it cannot use: 2 (aiswatch.cli.errors)
    for args, says, status in [([str(rate0), "--format", "disc"], "WAV header: the sample rate must be positive", 1),
                               ([str(cu8_file), "--rate", "inf"], "the sample rate must be a finite number", 2),
                               ([str(cu8_file), "--rate", "1e15"], "maximum of 20 MS/s", 2),
                               ([str(cu8_file), "--rate", "288000", "--start-time", "nan"], "start time", 2)]:
        proc = subprocess.run(AISWATCH + ["ingest", "iq"] + args + ["--es", "http://127.0.0.1:9",
                                                                     "--spool-dir", str(tmp_path / "spool")],
                              env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert proc.returncode == status, proc.stderr
        assert "Traceback" not in proc.stderr and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_paths_that_are_not_recordings(tmp_path):
    with pytest.raises(IQFormatError, match="is a directory"):
        IQFile(str(tmp_path), "cu8", 288_000)
    path = str(tmp_path / "sock.cu8")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    try:
        with pytest.raises(IQFormatError, match="not a regular file, FIFO or character device"):
            IQFile(path, "cu8", 288_000)
    finally:
        server.close()
    with pytest.raises(IQFormatError, match="standard input has no file name"):
        IQFile("-")


def _feed(pipe, data: bytes, chunk: int) -> None:
    """Write ``data`` in chunks that split samples, as a program writing to a pipe does."""
    try:
        for i in range(0, len(data), chunk):
            pipe.write(data[i:i + chunk])
            pipe.flush()
    finally:
        pipe.close()


def test_samples_piped_through_stdin_decode_like_the_file(capture, tmp_path):
    # rtl_sdr ... - | aiswatch demod - --format cu8 --rate 288000, with a real pipe; one stray
    # byte at the end (half a sample) is reported, not decoded
    data = channel.to_cu8(capture[0]) + b"\x80"
    before = time.time()
    proc = subprocess.Popen(AISWATCH + ["demod", "-", "--format", "cu8", "--rate", "288000", "--stats"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    _feed(proc.stdin, data, 4097)  # its output is three lines: no pipe fills up while we write
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert [ln[ln.index("!"):] for ln in lines] == capture[1]
    # a stream is being received now: its times start when it was opened, not at a file's mtime
    stamps = [int(ln.split("c:")[1].split(",")[0].split("*")[0]) for ln in lines]
    assert all(before - 1 <= t <= time.time() + 1 for t in stamps), stamps
    assert "truncated_bytes=1" in err.decode() and "frames=3" in err.decode()


def test_discriminator_audio_from_a_fifo_with_an_open_ended_wav(capture, tmp_path):
    # sox/ffmpeg writing a WAV to a pipe do not know its length: data chunk length 0xFFFFFFFF
    x, sentences = capture
    audio = np.stack([channel.discriminator_audio(x, 288_000, "A"), channel.discriminator_audio(x, 288_000, "B")],
                     axis=1)
    fifo = tmp_path / "radio.wav"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as fh:
            _feed(fh, wav_bytes(audio, 48_000, 2, data_len=0xFFFFFFFF), 1001)
    writer = threading.Thread(target=write)
    writer.start()
    source = IQFileSource(str(fifo), fmt="disc")  # opening waits for the writer, as with any FIFO
    lines = [ln.text for ln in source.lines()]
    writer.join()
    assert [ln[ln.index("!"):] for ln in lines] == sentences
    assert source.decoder.iqfile.is_stream and source.decoder.iqfile.duration is None


def _unplugged_dongle(blocks):
    """pyrtlsdr's RtlSdr on a device handle that is gone (NULL): after the given blocks of samples,
    its read_samples runs librtlsdr's rtlsdr_read_sync, which fails as for an unplugged dongle,
    and pyrtlsdr raises its LibUSBError. Only the sample rate (librtlsdr keeps it in the device
    struct, which a NULL handle does not have) and the blocks before the failure are given here."""
    try:
        import rtlsdr
        from rtlsdr.librtlsdr import p_rtlsdr_dev
    except (ImportError, OSError, AttributeError) as err:
        pytest.skip(f"pyrtlsdr cannot load librtlsdr here ({err}); apt-get install librtlsdr0")
    from ctypes import c_int32

    class Unplugged(rtlsdr.RtlSdr):
        sample_rate = 288_000.0

        def __init__(self):  # no rtlsdr_open: there is no dongle to open
            self.dev_p = p_rtlsdr_dev(None)
            self.buffer = []
            self.num_bytes_read = c_int32(0)
            self.device_opened = False
            self.before = list(blocks)
            self.closed = False

        def read_samples(self, num_samples):
            if self.before:
                return self.before.pop(0)
            return super().read_samples(num_samples)

        def close(self):
            self.closed = True
            super().close()
    return Unplugged()


def test_dongle_unplugged_while_reading_is_one_line_and_exit_2(capture, monkeypatch):
    from aiswatch.demod import decode

    x, sentences = capture
    dongle = _unplugged_dongle([x])
    monkeypatch.setattr(decode, "open_sdr", lambda **settings: dongle)
    result = CliRunner().invoke(demod, ["--sdr", "--no-tags"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    # what arrived before the dongle went away is decoded and printed
    assert result.stdout.splitlines() == sentences
    assert result.stderr.startswith("Error: RTL-SDR 0 stopped delivering samples (")
    assert "was it unplugged?" in result.stderr and len(result.stderr.splitlines()) == 1
    assert dongle.closed


def test_sdr_source_reads_through_the_same_path(capture, monkeypatch):
    from aiswatch.demod import sources

    dongle = _unplugged_dongle([capture[0]])
    monkeypatch.setattr(sources, "open_sdr", lambda **settings: dongle)
    source = SDRSource(device_index=3)
    got = []
    with pytest.raises(SDRUnavailable, match="RTL-SDR sdr:3 stopped delivering samples"):
        for line in source.lines():
            got.append(line.text)
    assert [t[t.index("!"):] for t in got] == capture[1][:len(got)] and dongle.closed


def test_demod_starts_without_scipy_yaml_or_the_elasticsearch_client(cu8_file):
    # start-up is part of the real-time factor: a recording decodes with numpy and click only
    heavy = ("scipy", "yaml", "elasticsearch", "elastic_transport")
    code = ("import sys\nfrom aiswatch.cli import main\n"
            f"main(['demod', {str(cu8_file)!r}, '--rate', '288000'], standalone_mode=False)\n"
            f"print(' '.join(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr
    assert "!AIVDM" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1:] in ([], [""]), proc.stderr
