"""Each DSP block on synthetic signals: modulator, channelizer, discriminator + offset removal,
timing recovery (fixed phases and a tracked clock with a known clock error)."""
import math

import numpy as np
import pytest
from scipy.signal import firwin

from aiswatch.demod import channel, gmsk, hdlc, modulator, settings, timing
from aiswatch.demod.channelizer import Channelizer, plan_rates

RNG = np.random.default_rng(7)
MESSAGE = bytes(RNG.integers(0, 256, 21, dtype=np.uint8))


def test_modulator_is_constant_envelope_gmsk_with_2400_hz_deviation():
    first, x = modulator.modulate(MESSAGE, 96_000)
    assert first == 0
    levels = modulator.frame_levels(MESSAGE)
    assert len(x) == pytest.approx(len(levels) * 10, abs=1)
    body = x[100:-100]
    assert np.allclose(np.abs(body), 1.0, atol=1e-3)  # ramps only at the ends
    freq = gmsk.discriminator(x, 96_000)
    centres = (np.arange(len(levels)) * 10 + 5)[12:-12]
    f_at = freq[centres]
    # a long run of one level reaches the full deviation; the frequency sign follows the level
    assert np.max(np.abs(f_at)) == pytest.approx(2400, rel=0.02)
    assert np.all(np.sign(f_at) == 2 * levels[12:-12].astype(int) - 1)


def test_plan_rates():
    assert plan_rates(288_000) == (6, 48_000)
    assert plan_rates(1_536_000) == (32, 48_000)
    assert plan_rates(1_600_000)[1] == pytest.approx(1_600_000 / 33)
    with pytest.raises(ValueError):
        plan_rates(60_000)


@pytest.mark.parametrize("rate", [288_000, 1_536_000, 250_000, 2_048_000])
def test_channelizer_streams_in_blocks_with_a_continuous_phase_and_no_delay(rate):
    # any block size gives the same samples as one call, the mixer's phase runs on across the
    # segments (a tone comes out as a clean tone), and output j is input j * d
    ch = Channelizer(rate)
    t = np.arange(int(0.2 * rate)) / rate
    x = np.exp(2j * np.pi * (-25_000 + 1_000) * t).astype(np.complex64)
    parts = [ch.process(x[i:i + 7_777])["A"] for i in range(0, len(x), 7_777)]
    a = np.concatenate(parts + [ch.flush()["A"]])
    one = Channelizer(rate)
    assert np.allclose(a, np.concatenate([one.process(x)["A"], one.flush()["A"]]), atol=1e-4)
    assert len(a) == pytest.approx(len(x) / ch.decimation, abs=1)
    steps = np.diff(np.unwrap(np.angle(a[100:-100])))
    tone = 1_000 - ch.applied_correction("A")  # at 2.048 MS/s the channel falls between bins
    assert np.abs(steps - 2 * np.pi * tone / ch.out_rate).max() < 2e-3
    impulse = np.zeros(int(0.05 * rate), dtype=np.complex64)
    impulse[1000 * ch.decimation] = 1
    impulse *= np.exp(2j * np.pi * -25_000 * np.arange(len(impulse)) / rate).astype(np.complex64)
    one = Channelizer(rate)
    out = np.concatenate([one.process(impulse)["A"], one.flush()["A"]])
    assert int(np.argmax(np.abs(out))) == 1000


@pytest.mark.parametrize("rate", [288_000, 1_536_000])
def test_channelizer_separates_a_and_b(rate):
    # a tone 1 kHz above channel A and one 2 kHz below channel B: each appears only in its own channel
    t = np.arange(int(0.05 * rate)) / rate
    x = (np.exp(2j * np.pi * (-25_000 + 1_000) * t) + 0.5 * np.exp(2j * np.pi * (25_000 - 2_000) * t)).astype(np.complex64)
    ch = Channelizer(rate)
    out = ch.process(x)
    assert ch.out_rate == 48_000 and ch.applied_correction("A") == ch.applied_correction("B") == 0
    a, b = out["A"][200:], out["B"][200:]
    assert np.mean(np.abs(a) ** 2) == pytest.approx(1.0, rel=0.05)
    assert np.mean(np.abs(b) ** 2) == pytest.approx(0.25, rel=0.05)
    assert np.median(gmsk.discriminator(a, 48_000)) == pytest.approx(1_000, abs=5)
    assert np.median(gmsk.discriminator(b, 48_000)) == pytest.approx(-2_000, abs=5)


def test_channelizer_frequency_correction_moves_the_mixer():
    rate = 288_000
    t = np.arange(int(0.03 * rate)) / rate
    x = np.exp(2j * np.pi * (-25_000 + 3_000) * t).astype(np.complex64)
    ch = Channelizer(rate, freq_correction_hz=3_000)
    a = np.concatenate([ch.process(x)["A"], ch.flush()["A"]])[200:]
    assert abs(np.median(gmsk.discriminator(a, 48_000))) < 5


def test_frequency_offset_estimate_of_a_burst_in_noise():
    rate = 48_000
    x = channel.make_capture([channel.Burst(MESSAGE, "A", 0.01, snr_db=20, cfo_hz=1_700)], rate, 0.06,
                             noise_power=1.0, center_hz=settings.CHANNEL_HZ["A"], seed=3)
    y = gmsk.lowpass(gmsk.discriminator(x, rate), gmsk.matched_taps(5))
    off = gmsk.frequency_offset(y, gmsk.power(x), 128 * 5)
    mid = int(0.01 * rate) + 120 * 5  # middle of the burst
    assert off[mid] == pytest.approx(1_700, abs=250)
    # power weighting: without it the noise around the burst drags the estimate to ~0
    flat = gmsk.frequency_offset(y, None, 128 * 5)
    assert abs(flat[mid - 500] - 1_700) > abs(off[mid - 500] - 1_700)


def _demod(x, rate):
    y = gmsk.lowpass(gmsk.discriminator(x, rate), gmsk.matched_taps(rate / 9600))
    return y - gmsk.frequency_offset(y, gmsk.power(x), int(128 * rate / 9600))


def test_fixed_phases_decode_and_the_eye_is_widest_at_the_symbol_centre():
    rate = 48_000
    # burst starts at sample 494.4: symbol centres at 496.9 + 5k, i.e. phase 1.9 of 5; transitions at 4.4
    x = channel.make_capture([channel.Burst(MESSAGE, "A", 0.0103)], rate, 0.05, center_hz=settings.CHANNEL_HZ["A"])
    y = _demod(x, rate)
    eye = []
    for p in range(5):
        instants = timing.phase_instants(len(y), 5, p)
        samples = timing.sample_at(y, instants)
        bits = hdlc.nrzi_decode((samples > 0).astype(np.uint8))
        assert [m for _, m, _ in hdlc.find_messages(bits)] == [MESSAGE]
        body = (instants > 494 + 40 * 5) & (instants < 494 + 200 * 5)
        eye.append(np.min(np.abs(samples[body])))
    assert int(np.argmax(eye)) == 2 and int(np.argmin(eye)) == 4


def test_tracked_clock_follows_a_known_clock_offset():
    # a 5-slot message from a transmitter whose clock is 1000 ppm fast: the fixed phases drift a
    # whole symbol over the burst and fail; the tracker measures the offset and decodes the frame
    rate = 288_000
    long_message = bytes(RNG.integers(0, 256, 126, dtype=np.uint8))
    x = channel.make_capture([channel.Burst(long_message, "A", 0.005, baud_error_ppm=1000, snr_db=22)], rate, 0.14,
                             noise_power=1.0, seed=0)
    ch = Channelizer(rate)
    a = np.concatenate([ch.process(x)["A"], ch.flush()["A"]])
    y = _demod(a, 48_000)
    instants = timing.tracked_instants(y, 5.0, window_symbols=32)
    start = int(0.005 * 48_000)
    inside = instants[(instants > start + 400) & (instants < start + 5000)]
    assert np.all(np.abs(np.diff(inside) - 5) < 1)  # no slipped symbols
    assert timing.estimate_clock_error(inside, 5.0) == pytest.approx(1000, abs=60)
    bits = hdlc.nrzi_decode((timing.sample_at(y, instants) > 0).astype(np.uint8))
    assert [m for _, m, _ in hdlc.find_messages(bits)] == [long_message]
    for p in range(5):
        fixed = timing.sample_at(y, timing.phase_instants(len(y), 5, p))
        assert hdlc.find_messages(hdlc.nrzi_decode((fixed > 0).astype(np.uint8))) == []


def test_timing_phasor_angle_gives_the_symbol_centre():
    # a 0101 pattern at 10 samples per symbol: symbol k spans samples 10k..10k+9 (centre 10k + 4.5);
    # shifted 2 samples earlier the centres are at 2.5 (mod 10)
    levels = np.tile([0, 1], 60)
    nrz = np.repeat(2.0 * levels - 1, 10)
    y = np.roll(np.convolve(nrz, np.ones(5) / 5, mode="same"), -2)
    tau = -np.angle(timing.timing_phasor(y, 10.0)[600]) * 10 / (2 * math.pi)
    assert tau % 10 == pytest.approx(2.5, abs=0.2)


def test_gaussian_pulse_has_its_3_db_bandwidth_at_bt_times_the_bit_rate():
    # ITU-R M.1371 annex 2: GMSK with BT = 0.4 at 9600 bit/s, i.e. the Gaussian filter's response
    # is down 3 dB (amplitude 1/sqrt 2) at B = 0.4 * 9600 = 3840 Hz
    taps = modulator.gaussian_pulse()  # 16 taps per symbol
    n = 1 << 16
    response = np.abs(np.fft.rfft(taps, n))
    response /= response[0]
    freqs = np.fft.rfftfreq(n, 1 / (16 * settings.BAUD))
    b = freqs[np.argmax(response < 1 / math.sqrt(2))]
    assert b == pytest.approx(0.4 * 9600, rel=0.005)
    # and Gaussian, not just any low-pass through that point: at 2B it is (1/sqrt 2)^4 = -12 dB
    assert np.interp(2 * b, freqs, response) == pytest.approx(0.25, abs=0.005)


def test_gaussian_shaping_lowers_the_deviation_of_alternating_symbols_only():
    # Reference from the definition alone (a Gaussian response, -3 dB at 3840 Hz): levels 0101...
    # are a +-1 square wave of period two symbols; at a symbol centre the filtered wave is the sum
    # of its odd harmonics (4/pi)(-1)^k/(2k+1) H((2k+1) 4800 Hz): 0.7376 of the full deviation.
    # A long run of one level reaches the full 2400 Hz (h = 0.5 at 9600 baud).
    def h(f):
        return math.exp(-math.log(2) / 2 * (f / (0.4 * 9600)) ** 2)
    alternating = 4 / math.pi * sum((-1) ** k / (2 * k + 1) * h((2 * k + 1) * 4800) for k in range(20))
    assert alternating == pytest.approx(0.7376, abs=1e-4)
    levels = np.concatenate([np.zeros(40), np.tile([1, 0], 30), np.ones(40), np.zeros(20)]).astype(np.uint8)
    rate, sps = 192_000, 20
    first, x = modulator.modulate_levels(levels, rate)
    assert first == 0
    freq = gmsk.discriminator(x, rate)[np.arange(len(levels)) * sps + sps // 2]  # at the symbol centres
    assert np.abs(freq[45:95]) == pytest.approx(alternating * 2400, rel=0.01)
    assert np.sign(freq[45:95]).tolist() == [-1, 1] * 25  # level 1 is the upper frequency
    assert freq[105:135] == pytest.approx(2400, rel=0.002)
    assert freq[10:35] == pytest.approx(-2400, rel=0.002)


def test_spectral_offset_finds_a_tone_and_bursts_at_known_offsets():
    # a coarse estimate for the AFC's jump: the noise left in the +-12 kHz search band pulls it a
    # few % towards the nominal channel, and near the band edge the band clips the burst's
    # spectrum (11 % short at 11 kHz); the frames decoded after the jump track the rest
    rate = 288_000
    t = np.arange(int(0.1 * rate)) / rate
    noise = channel.make_capture([], rate, 0.1, noise_power=0.01, seed=1)
    for offset in (4_700.0, -3_333.0):
        ch = Channelizer(rate)
        tone = (0.1 * np.exp(2j * np.pi * (settings.CHANNEL_HZ["A"] - ch.center_hz + offset) * t)).astype(np.complex64)
        assert ch.spectral_offset(ch.transform(tone + noise)) == pytest.approx(offset, abs=100)
    rng = np.random.default_rng(5)
    for offset in (0.0, 3_000.0, -9_000.0, 11_000.0):
        for channels in ("AB", "B"):
            bursts = [channel.Burst(bytes(rng.integers(0, 256, 21, dtype=np.uint8)), channels[i % len(channels)],
                                    0.005 + 0.025 * i, snr_db=15, cfo_hz=offset) for i in range(4)]
            x = channel.make_capture(bursts, rate, 0.12, noise_power=0.01, seed=2)
            ch = Channelizer(rate)
            estimate = ch.spectral_offset(ch.transform(x))
            assert estimate == pytest.approx(offset, abs=max(300.0, 0.12 * abs(offset))), (offset, channels)
    ch = Channelizer(rate)
    assert ch.spectral_offset(ch.transform(channel.make_capture([], rate, 0.5, noise_power=0.01, seed=3))) is None
    assert ch.spectral_offset(ch.transform(noise[:3000])) is None  # too short to average


def test_lowpass_taps_are_scipys_firwin():
    from aiswatch.demod.channelizer import lowpass_taps

    for numtaps, cutoff, rate in ((51, 40_000, 288_000), (65, 6_000, 96_000), (1025, 6_000, 1_536_000)):
        reference = firwin(numtaps, cutoff, fs=rate, window=("kaiser", 6.0))
        assert np.allclose(lowpass_taps(numtaps, cutoff, rate), reference, atol=1e-12)
