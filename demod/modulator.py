"""The transmit chain, so tests and benchmarks can make AIS bursts from known messages.

message octets -> CRC -> bit stuffing -> HDLC frame with ramp and training sequence -> NRZI ->
Gaussian-filtered frequency pulse (BT 0.4, modulation index 0.5: +-2400 Hz at 9600 baud) ->
continuous-phase complex baseband at any sample rate, with a raised-cosine power ramp at both ends.

The frequency waveform is computed on a fine grid (16 points per symbol) and interpolated to the
output sample times, so any sample rate and a transmitter clock offset (``baud_error_ppm``) work,
and the burst can start at a fractional sample.
"""
from __future__ import annotations

import math

import numpy as np

from aiswatch.demod.settings import BAUD

from aiswatch.demod import hdlc

BT = 0.4
DEVIATION_HZ = 2400.0  # h = 0.5
_FINE = 16  # fine-grid points per symbol


def gaussian_pulse(bt: float = BT, sps: int = _FINE, span: int = 3) -> np.ndarray:
    """Gaussian frequency-pulse filter taps (sum 1) for a given BT, sps samples per symbol, span in symbols."""
    t = (np.arange(-span * sps, span * sps + 1)) / sps
    sigma = math.sqrt(math.log(2)) / (2 * math.pi * bt)
    taps = np.exp(-t ** 2 / (2 * sigma ** 2))
    return taps / taps.sum()


def frame_levels(message: bytes) -> np.ndarray:
    """The NRZI levels (0/1) of the whole over-the-air frame of ``message``."""
    return hdlc.nrzi_encode(hdlc.build_frame(message))


def modulate(message: bytes, rate: float, *, freq_hz: float = 0.0, start: float = 0.0,
             baud_error_ppm: float = 0.0, phase: float = 0.0, n_samples: int | None = None):
    """One AIS burst as complex64 baseband at ``rate`` samples/s, unit amplitude.

    freq_hz: carrier position relative to the capture centre (e.g. -25e3/2 for channel A when
    tuned to 162.000 MHz), including any transmitter/receiver frequency error.
    start: time of the first ramp bit in samples (may be fractional).
    Returns (first_sample_index, samples).
    """
    return modulate_levels(frame_levels(message), rate, freq_hz=freq_hz, start=start,
                           baud_error_ppm=baud_error_ppm, phase=phase, n_samples=n_samples)


def modulate_levels(levels: np.ndarray, rate: float, *, freq_hz: float = 0.0, start: float = 0.0,
                    baud_error_ppm: float = 0.0, phase: float = 0.0, n_samples: int | None = None):
    """:func:`modulate` for any sequence of levels (0/1, one per symbol), so the pulse shaping can
    be checked on patterns a real frame does not contain; the first and last 8 symbols are ramped."""
    levels = np.asarray(levels, dtype=np.uint8)
    nrz = 2.0 * levels.astype(np.float64) - 1.0
    baud = BAUD * (1 + baud_error_ppm * 1e-6)
    # frequency on a fine grid, one value per 1/_FINE symbol
    fine = np.repeat(nrz, _FINE)
    pulse = gaussian_pulse()
    pad = len(pulse) // 2
    fine = np.convolve(np.concatenate([np.full(pad, nrz[0]), fine, np.full(pad, nrz[-1])]), pulse, mode="valid")
    duration_symbols = len(levels)
    first = int(math.ceil(start))
    count = int(math.floor(start + duration_symbols * rate / baud)) - first
    if n_samples is not None:
        count = min(count, n_samples)
    t_sym = (first + np.arange(count) - start) * baud / rate  # time in symbols since burst start
    freq = np.interp(t_sym * _FINE, np.arange(len(fine)), fine) * DEVIATION_HZ + freq_hz
    ph = phase + 2 * math.pi * np.cumsum(freq) / rate
    # raised-cosine ramp over the first and last 8 bits (the ramp and the buffer)
    env = np.ones(count)
    ramp_sym = hdlc.RAMP_BITS
    up = t_sym < ramp_sym
    env[up] = 0.5 - 0.5 * np.cos(math.pi * t_sym[up] / ramp_sym)
    down = t_sym > duration_symbols - ramp_sym
    env[down] = 0.5 - 0.5 * np.cos(math.pi * (duration_symbols - t_sym[down]) / ramp_sym)
    return first, (env * np.exp(1j * ph)).astype(np.complex64)


def burst_samples(message: bytes, rate: float) -> int:
    """How many samples a burst of ``message`` lasts at ``rate``."""
    return int(math.ceil(len(hdlc.build_frame(message)) * rate / BAUD))
