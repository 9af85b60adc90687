"""A real dongle is not an AWGN channel: the receiver on captures with an RTL2832's DC offset and
I/Q imbalance (and the mirror images it makes), 8-bit samples with the gain too high (clipping) or
too low, levels changing within a burst; and on sound-card discriminator audio that is AC-coupled,
de-emphasised, band-limited, at 44.1 kHz."""
import wave

import numpy as np
import pytest

from aiswatch.demod import channel, gmsk
from aiswatch.demod.receiver import DiscriminatorReceiver, Receiver

RATE = 288_000


def position_reports(rng, n):
    out = []
    for _ in range(n):
        message = bytearray(rng.integers(0, 256, 21, dtype=np.uint8).tobytes())
        message[0] = (int(rng.choice([1, 2, 3, 18])) << 2) | (message[0] & 3)
        out.append(bytes(message))
    return out


def through_dongle(x, **adc):
    """complex samples -> the RTL2832's cu8 -> what the file reader hands the receiver."""
    raw = np.frombuffer(channel.to_cu8(x, **adc), dtype=np.uint8).astype(np.float32)
    return ((raw - 127.5) / 127.5).view(np.complex64)


def decode(x, **options):
    rx = Receiver(RATE, **options)
    frames = []
    for i in range(0, len(x), RATE // 2):
        frames += rx.process(x[i:i + RATE // 2])
    return frames + rx.flush(), rx


@pytest.mark.parametrize("gain, what", [(127.0, "normal"), (900.0, "too high: bursts and noise peaks clip"),
                                        (14.0, "too low: noise of ~1 LSB")])
def test_rough_dongle_at_any_gain(gain, what):
    rng = np.random.default_rng(31)
    messages = position_reports(rng, 12)
    bursts = [channel.Burst(m, "AB"[i % 2], 0.01 + 0.0267 * i, snr_db=11.0, cfo_hz=float(rng.uniform(-500, 500)),
                            phase=float(rng.uniform(0, 6.3)), level_change_db=float(rng.uniform(-6, 6)))
              for i, m in enumerate(messages)]
    x = channel.make_capture(bursts, RATE, 0.36, noise_power=0.01, seed=32)
    y = through_dongle(x, scale=gain, dc=(2.6, -1.9), iq_gain_db=0.5, iq_phase_deg=3.0)
    if gain > 127.0:
        assert np.mean(np.abs(y.real) > 0.99) > 0.01  # the test is not vacuous: samples clip
    frames, _ = decode(y)
    assert sorted(f.message for f in frames) == sorted(messages), what
    assert all(f.channel == b.channel for f in frames for b in bursts if b.message == f.message)


def test_mirror_images_of_strong_bursts_are_dropped_but_a_message_on_both_channels_is_not():
    rng = np.random.default_rng(33)
    strong = position_reports(rng, 4)
    both = position_reports(rng, 1)[0]
    bursts = [channel.Burst(m, "A", 0.01 + 0.03 * i, snr_db=45.0) for i, m in enumerate(strong)]
    # the same message sent on A and on B a third of a slot apart (as a test would, not a ship)
    bursts += [channel.Burst(both, "A", 0.15, snr_db=20.0), channel.Burst(both, "B", 0.159, snr_db=20.0)]
    x = channel.make_capture(bursts, RATE, 0.2, noise_power=0.0005, seed=34)
    y = through_dongle(x, dc=(2, -2), iq_gain_db=1.0, iq_phase_deg=5.0)  # ~ -25 dB image rejection
    frames, rx = decode(y)
    got = sorted((f.channel, f.message) for f in frames)
    assert got == sorted([("A", m) for m in strong] + [("A", both), ("B", both)])
    assert rx.images >= 3  # the mirrors were there and decoded: the rule is what removed them


def test_preemphasis_streams_and_inverts_a_first_order_deemphasis():
    from scipy.signal import bilinear, lfilter

    rng = np.random.default_rng(35)
    x = rng.normal(size=20_000).astype(np.float32)
    rate = 48_000
    low = lfilter(*bilinear([1.0], [750e-6, 1.0], fs=rate), x).astype(np.float32)
    one = gmsk.PreEmphasis(rate).process(low)
    emphasis = gmsk.PreEmphasis(rate)
    parts = np.concatenate([emphasis.process(low[i:i + 777]) for i in range(0, len(low), 777)])
    assert np.allclose(parts, one, atol=1e-5)
    # the inverse holds where a 9,600-baud signal lives (a first difference is not the bilinear
    # transform's exact inverse near half the sample rate)
    spectrum = np.abs(np.fft.rfft(one)) / np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    band = (freqs > 100) & (freqs < 6_000)
    assert np.median(spectrum[band]) == pytest.approx(1.0, rel=0.05)


def sound_card(path, messages, audio_rate, **card):
    bursts = [channel.Burst(m, "A", 0.01 + 0.03 * i, snr_db=16.0, cfo_hz=300.0 * (-1) ** i)
              for i, m in enumerate(messages)]
    x = channel.make_capture(bursts, RATE, 0.03 * len(messages) + 0.03, noise_power=0.005, seed=36)
    audio = channel.discriminator_audio(x, RATE, "A", audio_rate=audio_rate, **card)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(audio_rate)
        w.writeframes(audio.astype("<i2").tobytes())
    return audio


@pytest.mark.parametrize("audio_rate", [44_100, 48_000])
@pytest.mark.parametrize("card, needs_restoring", [({"ac_hz": 20.0, "band_hz": 7_000.0}, False),
                                                   ({"ac_hz": 20.0, "band_hz": 7_000.0, "deemphasis_us": 750.0}, True)],
                         ids=["flat tap", "de-emphasised"])
def test_sound_card_discriminator_audio(tmp_path, audio_rate, card, needs_restoring):
    rng = np.random.default_rng(37)
    messages = position_reports(rng, 6)
    audio = sound_card(tmp_path / "radio.wav", messages, audio_rate, **card).astype(np.float32) / 32768
    for deemphasis in (True, False):
        rx = DiscriminatorReceiver(audio_rate, deemphasis=deemphasis)
        got = {f.message for f in rx.process(audio) + rx.flush()}
        if deemphasis or not needs_restoring:
            assert got == set(messages), (deemphasis, card)
        else:
            assert got == set()  # de-emphasised audio needs the restored path
    # and through the file reader, each message once although both paths may find it
    from aiswatch.demod.decode import FrameDecoder

    frames = list(FrameDecoder.for_file(str(tmp_path / "radio.wav"), fmt="disc", start_time=0.0).frames_from())
    assert sorted(f.message for f in frames) == sorted(messages)
