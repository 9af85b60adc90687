"""A channel model for making test captures: bursts on AIS channels A/B, noise at a given SNR,
frequency offset, amplitude and its slow change within a burst, overlapping bursts and bursts cut
at the capture edge; an RTL-SDR's converter (DC offset, I/Q imbalance, 8 bits that clip or
hardly move); writers for the sample formats real receivers produce (cu8 is what ``rtl_sdr``
writes, so other decoders can be run on the very same files); and a radio's discriminator audio
as a sound card records it (AC coupling, de-emphasis, band limit, any audio rate).

SNR convention: the ratio of burst power to the noise power in a 9,600 Hz bandwidth (the bit rate),
i.e. SNR = Eb/N0 for this 1 bit/symbol modulation. In a 25 kHz channel the same burst has an SNR
4.2 dB lower. White complex Gaussian noise covers the whole capture bandwidth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aiswatch.demod import modulator
from aiswatch.demod.settings import BAUD, CENTER_HZ, CHANNEL_HZ



@dataclass
class Burst:
    """One transmission in a capture.

    message: the AIS message octets; channel: 'A' or 'B'; start: seconds from the capture start
    (negative or near the end = cut at the edge); snr_db: Eb/N0 against the capture's noise (ignored
    when the capture has no noise: then ``amplitude`` is used); cfo_hz: carrier frequency error;
    baud_error_ppm: transmitter clock error; level_change_db: the level changes by this much,
    linearly in dB, from the start of the burst to its end (fading, a receiver's AGC).
    """

    message: bytes
    channel: str = "A"
    start: float = 0.0
    snr_db: float | None = None
    amplitude: float = 1.0
    cfo_hz: float = 0.0
    baud_error_ppm: float = 0.0
    phase: float = 0.0
    level_change_db: float = 0.0


def make_capture(bursts, rate: float, duration: float, *, noise_power: float = 0.0,
                 center_hz: float = CENTER_HZ, seed: int | None = 0) -> np.ndarray:
    """Complex64 samples of ``duration`` seconds at ``rate`` holding ``bursts`` plus noise.

    noise_power: total complex noise variance per sample over the whole capture bandwidth; a
    burst's amplitude then follows from its snr_db (burst power = Eb/N0 * N0 * 9600 with
    N0 = noise_power / rate).
    """
    n = int(round(duration * rate))
    rng = np.random.default_rng(seed)
    out = np.zeros(n, dtype=np.complex64)
    if noise_power > 0:
        sigma = math.sqrt(noise_power / 2)
        out += (rng.normal(0, sigma, n) + 1j * rng.normal(0, sigma, n)).astype(np.complex64)
    for burst in bursts:
        freq = CHANNEL_HZ[burst.channel] - center_hz + burst.cfo_hz
        first, samples = modulator.modulate(burst.message, rate, freq_hz=freq, start=burst.start * rate,
                                            baud_error_ppm=burst.baud_error_ppm, phase=burst.phase)
        amplitude = burst.amplitude
        if burst.snr_db is not None and noise_power > 0:
            amplitude = math.sqrt(10 ** (burst.snr_db / 10) * noise_power / rate * BAUD)
        if burst.level_change_db:
            ramp_db = np.linspace(-burst.level_change_db / 2, burst.level_change_db / 2, len(samples))
            samples = samples * (10 ** (ramp_db / 20)).astype(np.float32)
        lo, hi = max(first, 0), min(first + len(samples), n)
        if hi > lo:
            out[lo:hi] += amplitude * samples[lo - first:hi - first]
    return out


def to_cu8(samples: np.ndarray, scale: float = 127.0, *, dc: tuple[float, float] = (0.0, 0.0),
           iq_gain_db: float = 0.0, iq_phase_deg: float = 0.0) -> bytes:
    """Interleaved unsigned 8-bit I/Q (offset 127.5), as rtl_sdr writes; values are clipped.
    ``scale`` is the gain (LSB per unit: too high clips, too low leaves a few LSB of noise);
    the RTL2832's converter adds a DC offset (``dc``, LSB on I and Q) and I/Q imbalance (the
    Q branch's gain and phase off by ``iq_gain_db`` and ``iq_phase_deg``, which mirrors each
    channel faintly onto the other)."""
    g, phi = 10 ** (iq_gain_db / 20), np.deg2rad(iq_phase_deg)
    inter = np.empty(2 * len(samples), dtype=np.float32)
    inter[0::2] = samples.real * scale + dc[0]
    inter[1::2] = (samples.imag * np.cos(phi) + samples.real * np.sin(phi)) * g * scale + dc[1]
    return np.clip(np.round(inter + 127.5), 0, 255).astype(np.uint8).tobytes()


def to_cs8(samples: np.ndarray, scale: float = 127.0) -> bytes:
    inter = np.empty(2 * len(samples), dtype=np.float32)
    inter[0::2] = samples.real
    inter[1::2] = samples.imag
    return np.clip(np.round(inter * scale), -128, 127).astype(np.int8).tobytes()


def to_cs16(samples: np.ndarray, scale: float = 32767.0) -> bytes:
    inter = np.empty(2 * len(samples), dtype=np.float32)
    inter[0::2] = samples.real
    inter[1::2] = samples.imag
    return np.clip(np.round(inter * scale), -32768, 32767).astype("<i2").tobytes()


def to_cf32(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype="<c8").tobytes()


def write_wav_iq(path, samples: np.ndarray, rate: int, scale: float = 32767.0) -> None:
    """Stereo 16-bit WAV with I on the left and Q on the right (SDR# / HDSDR style)."""
    from scipy.io import wavfile

    stereo = np.stack([samples.real, samples.imag], axis=1) * scale
    wavfile.write(str(path), int(rate), np.clip(np.round(stereo), -32768, 32767).astype(np.int16))


def discriminator_audio(samples: np.ndarray, rate: float, channel: str, *, center_hz: float = CENTER_HZ,
                        audio_rate: int = 48000, ac_hz: float | None = None, deemphasis_us: float | None = None,
                        band_hz: float | None = None) -> np.ndarray:
    """What a VHF radio's discriminator tap outputs for ``channel``: the instantaneous frequency
    after the radio's IF filter (+-8 kHz), as 16-bit audio at ``audio_rate`` (full scale = +-9.6 kHz).
    A sound card's recording of a less ideal output: ``ac_hz`` AC coupling (first-order
    high-pass), ``deemphasis_us`` the set's de-emphasis (first-order low-pass), ``band_hz`` an
    audio low-pass (4th-order Butterworth)."""
    from fractions import Fraction

    from scipy.signal import bilinear, butter, firwin, lfilter, resample_poly

    t = np.arange(len(samples)) / rate
    offset = CHANNEL_HZ[channel] - center_hz
    base = samples * np.exp(-2j * np.pi * offset * t).astype(np.complex64)
    frac = Fraction(audio_rate / rate).limit_denominator(1000)
    base = resample_poly(base, frac.numerator, frac.denominator)
    base = np.convolve(base, firwin(129, 8_000, fs=audio_rate), mode="same")
    freq = np.angle(base[1:] * np.conj(base[:-1])) * audio_rate / (2 * np.pi)
    freq = np.concatenate([[0.0], freq])
    if ac_hz:
        freq = lfilter(*butter(1, ac_hz, btype="highpass", fs=audio_rate), freq)
    if deemphasis_us:
        freq = lfilter(*bilinear([1.0], [deemphasis_us * 1e-6, 1.0], fs=audio_rate), freq)
    if band_hz:
        freq = lfilter(*butter(4, band_hz, fs=audio_rate), freq)
    return np.clip(np.round(freq / BAUD * 32767), -32768, 32767).astype(np.int16)
