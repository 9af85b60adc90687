"""The coherent detection blocks one at a time, on bursts from the project's modulator (and, for
the whole chain, on a recording from the bench's independent generator): training detection and
carrier offset, symbol sampling, phase search, decision-directed phase, data bits, soft repair of
pseudo-symbols, and what coherent detection gains over the discriminator at low Eb/N0."""
import math
import os
import sys

import numpy as np
import pytest

from aiswatch.demod import channel, coherent, hdlc, modulator, settings
from aiswatch.demod.receiver import Receiver

RATE = 48_000
SPS = 5
RNG = np.random.default_rng(11)


def position_report(rng) -> bytes:
    message = bytearray(rng.integers(0, 256, 21, dtype=np.uint8).tobytes())
    message[0] = (1 << 2) | (message[0] & 3)
    return bytes(message)


def baseband(bursts, duration, noise_power=0.0, seed=0):
    """Bursts on one channel, at 48 kS/s, centred on it (what the channelizer hands over)."""
    return channel.make_capture(bursts, RATE, duration, noise_power=noise_power,
                                center_hz=settings.CHANNEL_HZ["A"], seed=seed)


def test_training_detector_finds_each_burst_and_its_carrier_offset():
    # offsets beyond +-1,200 Hz are aliases of the lag product's angle: the mean frequency over
    # the training picks the right one
    offsets = [-1_900.0, -700.0, 0.0, 350.0, 1_150.0, 2_300.0]
    bursts = [channel.Burst(position_report(RNG), "A", 0.01 + 0.035 * i, snr_db=14, cfo_hz=f, phase=float(i))
              for i, f in enumerate(offsets)]
    x = baseband(bursts, 0.23, noise_power=0.01, seed=1)
    found = coherent.TrainingDetector(RATE).find(x)
    assert len(found) == len(bursts)
    for burst, hit in zip(bursts, found):
        start = burst.start * RATE
        assert hit.freq_hz == pytest.approx(burst.cfo_hz, abs=40)
        assert hit.score > 0.85
        # the peak is in the training (24 symbols after the 8 ramp symbols) and the segment holds
        # the whole burst (~245 symbols) with a margin before it
        assert start + 8 * SPS < hit.peak < start + 40 * SPS
        assert hit.start < start < start + 245 * SPS < hit.end < start + 300 * SPS


def test_training_detector_ignores_noise_and_the_data_of_a_burst():
    x = baseband([], 2.0, noise_power=0.01, seed=2)
    assert coherent.TrainingDetector(RATE).find(x) == []
    # a burst whose training is cut off: its random data does not look like a training sequence
    levels = modulator.frame_levels(position_report(RNG))
    _, burst = modulator.modulate_levels(levels[40:], RATE)
    y = np.concatenate([np.zeros(500), burst, np.zeros(500)]).astype(np.complex64)
    score, _ = coherent.TrainingDetector(RATE).score(y)
    assert np.max(score[500 + 20 * SPS:500 + len(burst) - 20 * SPS]) < 0.7


def test_segments_are_derotated_and_map_back_to_the_window():
    x = (np.exp(2j * np.pi * 300 * np.arange(4000) / RATE)).astype(np.complex64)
    bursts = [coherent.Burst(100, 1100, 300.0, 300, 1.0), coherent.Burst(2000, 2500, 300.0, 2200, 1.0)]
    segs = coherent.gather(x, bursts, RATE, gap=64)
    first = segs.samples[:1000]
    assert np.allclose(first, first[0], atol=1e-3)  # the 300 Hz offset is gone
    assert np.all(segs.samples[1000:1064] == 0)
    assert segs.locate(1064 + 10) == (1, 2010)
    assert segs.positions_of(2010) == [1074] and segs.positions_of(1500) == []


def test_gaussian_taps():
    taps = coherent.gaussian_taps(5.0)
    assert taps.sum() == pytest.approx(1.0) and np.argmax(taps) == len(taps) // 2
    sigma = math.sqrt(np.sum(taps * (np.arange(len(taps)) - len(taps) // 2) ** 2))
    assert sigma == pytest.approx(0.34 * 5, rel=0.02)


def clean_symbols(message, phase=0.7, sps=SPS, rate=RATE):
    """u (turned back by j^-k) of one clean burst at its best timing, and the frame's levels."""
    levels = modulator.frame_levels(message)
    _, x = modulator.modulate_levels(levels, rate, phase=phase)
    y = coherent.matched_filter(x.astype(np.complex64), coherent.gaussian_taps(sps))
    # the modulator's symbol k spans samples k*sps..(k+1)*sps; the pseudo-symbol of the levels
    # up to k-1 (the phase pi/2 * (a_0 + ... + a_(k-1))) is where symbol k starts: sampled a
    # little after it (0.4 symbol), u[k] ~ b_(k-1)
    u, _ = coherent.symbol_samples(y[2:], sps, 1)
    return u[:, 0], levels


def test_symbols_turned_back_lie_on_one_line_and_give_the_levels():
    message = position_report(RNG)
    u, levels = clean_symbols(message, phase=0.7)
    body = slice(16, len(levels) - 16)
    # the in-phase axis: the transmitted phase (up to pi); the projection decides c_k
    axis = np.exp(1j * 0.7)
    c = (u * np.conj(axis)).real
    a = np.sign(c[1:] * c[:-1])  # a[k] = c[k+1] c[k] ~ b_k b_(k-1): level k
    nrz = 2 * levels.astype(int) - 1
    agree = a[body] == nrz[:len(a)][body]
    assert agree.all() or (~agree).all()  # polarity is free
    assert np.min(np.abs(c[body])) > 0.5 * np.mean(np.abs(c[body]))  # an open eye


@pytest.mark.parametrize("sps, rate", [(5.0, 48_000), (5.0 * 50_000 / 48_000, 50_000)])
def test_symbol_samples_interpolate_between_samples(sps, rate):
    y = np.exp(1j * np.arange(200) * 0.05).astype(np.complex64)
    u, instants = coherent.symbol_samples(y, sps, 5)
    assert instants.shape == u.shape and instants[1, 0] == pytest.approx(sps)
    turn_back = np.array([1, -1j, -1, 1j])[np.arange(len(u)) % 4][:, None]
    assert np.allclose(u / turn_back, np.exp(1j * instants * 0.05), atol=2e-3)


def test_phase_search_and_decision_directed_phase_find_the_carrier_phase():
    message = position_report(RNG)
    for theta in (-1.3, 0.2, 1.0, 2.9):
        levels = modulator.frame_levels(message)
        bursts = [channel.Burst(message, "A", 0.002, snr_db=18, phase=theta)]
        x = baseband(bursts, 0.03, noise_power=0.01, seed=3)
        y = coherent.matched_filter(x, coherent.gaussian_taps(SPS))
        u, _ = coherent.symbol_samples(y, SPS, 5)
        body = slice(int(0.002 * 9600) + 30, int(0.002 * 9600) + len(levels) - 20)
        coarse = coherent.phase_search(u)
        fine = np.angle(coherent.decision_directed_phase(u, coarse))
        # the axis of the burst is the same for every timing phase but shifted by the symbols'
        # turning back; compare with the best timing phase's own axis, estimated from all of it
        best = int(np.argmax(np.mean(np.abs(coherent.soft_symbols(u, np.exp(1j * fine))[body]), axis=0)))
        reference = np.angle(np.sum(u[body, best] ** 2)) / 2
        def off(a):
            return np.abs((a - reference + np.pi / 2) % np.pi - np.pi / 2)
        assert np.max(off(coarse[body, best])) < math.radians(20)  # 8 axes, 22.5 degrees apart
        assert np.max(off(fine[body, best])) < math.radians(8)


def test_decision_directed_phase_follows_a_residual_frequency_offset():
    # 60 Hz left after the training's estimate: the phase turns 2.3 rad over the burst
    message = position_report(RNG)
    x = baseband([channel.Burst(message, "A", 0.002, snr_db=16, cfo_hz=60.0)], 0.03, noise_power=0.01, seed=4)
    soft, _ = coherent.demodulate(x, SPS, 5, coherent.gaussian_taps(SPS))
    found = [hdlc.find_messages(coherent.data_bits(soft[:, p])) for p in range(5)]
    assert any([m for _, m, _ in f] == [message] for f in found)


def test_data_bits_are_the_nrzi_decoding_of_the_levels():
    c = RNG.choice([-1.0, 1.0], 300) * RNG.uniform(0.2, 1.0, 300)
    levels = (np.sign(c[1:] * c[:-1]) > 0).astype(np.uint8)
    bits = coherent.data_bits(c)
    assert np.array_equal(bits[2:], hdlc.nrzi_decode(levels)[1:])


def test_soft_repair_flips_one_pseudo_symbol_as_two_bits_two_apart():
    message = position_report(RNG)
    levels = hdlc.nrzi_encode(hdlc.build_frame(message))
    c = np.ones(len(levels) + 1)
    for k, level in enumerate(levels):  # c_k = c_(k-1) a_k
        c[k + 1] = c[k] * (1 if level else -1)
    reliability = np.full(len(c), 1.0)
    for k in (100, 161):  # two weak, wrong pseudo-symbols inside the body
        c[k] = -0.1 * c[k]
        reliability[k] = 0.1
    bits = coherent.data_bits(c)
    assert hdlc.find_messages(bits) == []
    start, end = hdlc.repair_candidates(bits)[0]
    assert hdlc.repair_body(bits, start, end, reliability, span=1) is None  # a discriminator's repair cannot
    assert hdlc.repair_body(bits, start, end, reliability, span=2) == message


def test_coherent_detection_gains_at_low_eb_n0_over_the_discriminator():
    rng = np.random.default_rng(12)
    messages = [position_report(rng) for _ in range(24)]
    bursts = [channel.Burst(m, "AB"[i % 2], 0.005 + 0.014 * i, snr_db=8.0, cfo_hz=float(rng.uniform(-400, 400)),
                            phase=float(rng.uniform(0, 6.3))) for i, m in enumerate(messages)]
    x = channel.make_capture(bursts, 288_000, 0.37, noise_power=0.01, seed=5)
    counts = {}
    for name, kwargs in (("coherent", {}), ("discriminator", {"coherent": False})):
        rx = Receiver(288_000, **kwargs)
        got = {f.message for f in rx.process(x) + rx.flush()}
        counts[name] = len(got & set(messages))
        assert got <= set(messages)
    assert counts["coherent"] >= 22 and counts["coherent"] >= counts["discriminator"] + 10, counts


def test_a_burst_across_an_afc_step_keeps_one_carrier_offset():
    # the AFC moves the mixer between blocks; a burst straddling the step must still decode: the
    # decoder moves its history by the same step
    rng = np.random.default_rng(13)
    messages = [position_report(rng) for _ in range(2)]
    bursts = [channel.Burst(m, "AB"[i], 0.010 + 0.005 * i, snr_db=16) for i, m in enumerate(messages)]
    x = channel.make_capture(bursts, 288_000, 0.06, noise_power=0.01, seed=6)
    rx = Receiver(288_000, afc=False)
    cut = int(0.022 * 288_000)  # inside both bursts
    frames = rx.process(x[:cut])
    rx.channelizer.freq_correction_hz = 400.0  # as the AFC would after a block
    frames += rx.process(x[cut:]) + rx.flush()
    assert sorted(f.message for f in frames) != []
    assert sorted(f.message for f in frames) == sorted(messages)


@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(__file__), "..", "bench", "burstgen.py")),
                    reason="bench/burstgen.py not present")
def test_a_rough_dongle_recording_from_the_independent_generator(tmp_path):
    # bench/burstgen.py (not our modulator): DC offset, I/Q imbalance, clipping and a too-low
    # level on thirds of the recording, level changes within bursts, 20 ppm of dongle offset
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    try:
        import burstgen
    finally:
        sys.path.pop(0)
    from dataclasses import replace

    from aiswatch.demod.decode import FrameDecoder

    rng = np.random.default_rng(14)
    sent = burstgen.schedule(rng, 30, 10.0)
    path = str(tmp_path / "rough.cu8")
    burstgen.write_cu8(path, sent, 288_000, max(t.start for t in sent) + 0.05,
                       dongle=replace(burstgen.ROUGH_DONGLE, ppm=20.0), seed=1)
    decoder = FrameDecoder.for_file(path, fmt="cu8", rate=288_000, start_time=0.0)
    got = {f.message for f in decoder.frames_from()}
    assert got <= {t.message for t in sent}
    assert len(got) >= 29
