"""Coherent GMSK detection blocks for one channel's complex baseband.

GMSK with h = 1/2 is, to a good approximation (Laurent's first pulse), offset-QPSK: the
pseudo-symbols b_k = exp(j pi/2 (a_0 + ... + a_k)), one per symbol where the level a_k may change,
turned back by j^-k, lie on one line through the origin at the carrier phase theta:
u_k ~ c_k e^(j theta) with c_k = +-1, the level being a_k = c_k c_(k-1) and the NRZI data bit 1
where c_k = c_(k-2). Deciding c_k from the projection on that line needs the carrier phase, and
gains ~3 dB over the discriminator at the bottom of the curve (and more with the soft repair,
since a wrong c_k is one weak symbol).

Blocks, each a function or small class on numpy arrays (the receiver composes them):
- :class:`TrainingDetector`: finds bursts by their training sequence and measures each one's
  carrier offset, so every burst is derotated with its own frequency;
- :func:`gather`: the bursts' segments, derotated and laid end to end with silence between;
- :func:`gaussian_taps`: the receive filter;
- :func:`symbol_samples`: samples at several timing phases per symbol, turned back by j^-k;
- :func:`phase_search`: coarse carrier phase, the best of 16 axes over a short window;
- :func:`decision_directed_phase`: the phase again from the tentative decisions over a longer
  centred window (no squaring, so no loss to the quadrature interference of GMSK);
- :func:`data_bits`: NRZI-decoded bits and their reliability, for the HDLC layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aiswatch.demod.settings import BAUD

from aiswatch.demod.gmsk import centred_window_sums

TRAINING_PERIOD = 4  # symbols: the training 0101... is the level pattern ++-- repeated


def _window_sums(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving sums over ``width`` rows (edges use what exists), any dtype, 1-D or 2-D."""
    c = np.empty((len(x) + 1,) + x.shape[1:], dtype=np.complex128 if np.iscomplexobj(x) else np.float64)
    c[0] = 0
    np.cumsum(x, axis=0, out=c[1:])
    return centred_window_sums(c, width)


@dataclass
class Burst:
    """A training sequence found in a window: ``start``..``end`` (samples) is the segment to
    demodulate, ``freq_hz`` the burst's carrier offset, ``peak`` where the training was found and
    ``score`` how training-like it was (0..1)."""

    start: int
    end: int
    freq_hz: float
    peak: int
    score: float


class TrainingDetector:
    """Bursts in a channel's baseband, found by their training sequence.

    The training sequence (24 bits 0101...) is, after NRZI, the level pattern ++-- repeated: a
    waveform periodic in 4 symbols, so x_n x*_(n-4T) keeps one angle, 2 pi f 4T, all along it,
    whatever the carrier phase. ``score`` = |sum x_n x*_(n-4T)| / sum |x_n||x_(n-4T)| over 24
    symbols is near 1 there and low on random data and noise; its angle gives the carrier offset
    f within +-1,200 Hz, and the mean frequency over the same window (unambiguous but noisier)
    picks the right one of the 2,400 Hz aliases. A burst needs a score of ``threshold`` and a
    power ``min_power_ratio`` times the window's noise floor; its segment runs from ``lead``
    symbols before the training to where the power falls (at most ``max_symbols``).
    """

    def __init__(self, rate: float, *, threshold: float = 0.7, min_power_ratio: float = 2.5,
                 lead_symbols: int = 40, max_symbols: int = 1200):
        self.rate = float(rate)
        self.sps = self.rate / BAUD
        self.lag = int(round(TRAINING_PERIOD * self.sps))
        self.width = int(round(24 * self.sps))
        self.threshold = threshold
        self.min_power_ratio = min_power_ratio
        self.lead = int(lead_symbols * self.sps)
        self.max_len = int(max_symbols * self.sps)
        self.level_width = max(1, int(round(8 * self.sps)))

    def score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score 0..1, the lag product's window sums) at every sample."""
        n, lag = len(x), self.lag
        d = np.zeros(n, dtype=np.complex64)
        a = np.zeros(n, dtype=np.float32)
        if n > lag:
            d[lag:] = x[lag:] * np.conj(x[:-lag])
            a[lag:] = np.abs(d[lag:])
        sums = _window_sums(d, self.width)
        return np.abs(sums) / np.maximum(_window_sums(a, self.width), 1e-30), sums

    def noise_floor(self, level: np.ndarray) -> float:
        """The window's noise power: a low percentile of the smoothed power (most of a channel's
        time is silence; a channel busy all the time gives its weakest burst, which is then
        still found by its score)."""
        sample = level[::max(1, self.level_width)]
        return float(np.percentile(sample, 10)) if len(sample) else 0.0

    def find(self, x: np.ndarray) -> list[Burst]:
        n = len(x)
        if n < self.width + self.lag:
            return []
        score, sums = self.score(x)
        power = (x.real * x.real + x.imag * x.imag).astype(np.float32)
        level = _window_sums(power, self.level_width) / self.level_width
        floor = self.noise_floor(level)
        hits = np.flatnonzero((score > self.threshold) & (level > self.min_power_ratio * floor))
        if not len(hits):
            return []
        # one burst per run of hits (a training is ~24 symbols long): its best-scoring sample
        runs = np.split(hits, np.flatnonzero(np.diff(hits) > self.width) + 1)
        peaks = np.array([run[np.argmax(score[run])] for run in runs])
        fine = np.angle(sums[peaks]) * self.rate / (2 * math.pi * self.lag)
        coarse = self._mean_frequency(x, peaks)
        alias = self.rate / self.lag
        freqs = fine + alias * np.round((coarse - fine) / alias)
        out = []
        for peak, freq in zip(peaks.tolist(), freqs.tolist()):
            start = max(0, peak - self.lead)
            end = self._burst_end(level, peak, max(level[peak] / 6, 2 * floor))
            out.append(Burst(start, end, float(freq), peak, float(score[peak])))
        return out

    def _mean_frequency(self, x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
        """Power-weighted mean frequency over the training window around each peak."""
        half = self.width // 2
        out = np.empty(len(peaks))
        for i, p in enumerate(peaks.tolist()):
            seg = x[max(1, p - half):p + half]
            prev = x[max(0, p - half - 1):p + half - 1][:len(seg)]
            out[i] = np.angle(np.sum(seg * np.conj(prev))) * self.rate / (2 * math.pi)
        return out

    def _burst_end(self, level: np.ndarray, peak: int, threshold: float) -> int:
        """Where the power stays below ``threshold`` after the training (plus a margin)."""
        first = peak + int(60 * self.sps)
        last = min(len(level), peak + self.max_len)
        below = np.flatnonzero(level[first:last] < threshold)
        end = first + int(below[0]) if len(below) else last
        return min(len(level), end + int(20 * self.sps))


@dataclass
class Segments:
    """Bursts laid end to end: ``samples`` (derotated, silence between), and for each segment
    its first sample there (``offsets``) and in the window (``starts``) and its length."""

    samples: np.ndarray
    offsets: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    freqs: np.ndarray

    def locate(self, position: float) -> tuple[int, int]:
        """(segment, window sample index) of a position in ``samples``."""
        k = int(np.clip(np.searchsorted(self.offsets, position, side="right") - 1, 0, max(len(self.offsets) - 1, 0)))
        return k, int(self.starts[k] + (position - self.offsets[k]))

    def positions_of(self, window_index: int) -> list[int]:
        """Where window sample ``window_index`` lies in ``samples`` (nowhere, once, or more than
        once where segments overlap)."""
        inside = (self.starts <= window_index) & (window_index < self.starts + self.lengths)
        return (self.offsets[inside] + (window_index - self.starts[inside])).tolist()


def gather(x: np.ndarray, bursts: list[Burst], rate: float, gap: int) -> Segments:
    """Each burst's segment of ``x`` turned back by its own carrier offset, one after the other
    with ``gap`` zero samples between, so one vectorised pass demodulates them all and no
    window average reaches from one into the next."""
    parts, offsets, pos = [], [], 0
    for b in bursts:
        seg = x[b.start:b.end]
        step = np.exp(-2j * math.pi * b.freq_hz / rate * np.arange(len(seg))).astype(np.complex64)
        parts += [seg * step, np.zeros(gap, dtype=np.complex64)]
        offsets.append(pos)
        pos += len(seg) + gap
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.complex64)
    return Segments(samples, np.array(offsets, dtype=np.int64), np.array([b.start for b in bursts], dtype=np.int64),
                    np.array([b.end - b.start for b in bursts], dtype=np.int64),
                    np.array([b.freq_hz for b in bursts], dtype=np.float64))


def gaussian_taps(sps: float, sigma_symbols: float = 0.34) -> np.ndarray:
    """Receive filter: a Gaussian of ``sigma_symbols`` (unit DC gain). Measured against the matched
    filter of Laurent's first pulse (wider) and narrower Gaussians: within 1 % of bursts at
    8-10 dB Eb/N0; this width keeps the interference between neighbouring pseudo-symbols low
    enough for the phase search, which picks the axis with the largest projections."""
    sigma = sigma_symbols * sps
    half = int(math.ceil(3.5 * sigma))
    t = np.arange(-half, half + 1)
    taps = np.exp(-t * t / (2 * sigma * sigma))
    return (taps / taps.sum()).astype(np.float32)


def matched_filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Zero-delay FIR filtering of complex samples with real taps."""
    y = np.empty(len(x), dtype=np.complex64)
    y.real = np.convolve(x.real, taps, mode="same")
    y.imag = np.convolve(x.imag, taps, mode="same")
    return y


_TURN_BACK = np.array([1, -1j, -1, 1j], dtype=np.complex64)  # j^-k


def symbol_samples(y: np.ndarray, sps: float, phases: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, instants): ``u[k, p]`` is ``y`` at instant ``p * sps / phases + k * sps`` (linear
    interpolation between samples when sps is not whole), turned back by j^-k; ``instants`` the
    sample positions, same shape."""
    n_sym = int((len(y) - 1) // sps)
    if n_sym <= 0:
        return np.zeros((0, phases), dtype=np.complex64), np.zeros((0, phases))
    instants = np.arange(n_sym)[:, None] * sps + (np.arange(phases) * (sps / phases))[None, :]
    base = np.minimum(np.floor(instants).astype(np.int64), len(y) - 2)
    frac = (instants - base).astype(np.float32)
    if frac.any():
        u = y[base] * (1 - frac) + y[base + 1] * frac
    else:  # whole samples per symbol and per phase step (48 kS/s): no interpolation
        u = y[base]
    u = u * _TURN_BACK[np.arange(n_sym) % 4][:, None]
    return u.astype(np.complex64, copy=False), instants


_AXES = (np.arange(8) + 0.5) * (math.pi / 8) - math.pi / 2  # 8 axes over a half turn
_PROJECT = np.stack([np.cos(_AXES), np.sin(_AXES)]).astype(np.float32)  # (2, 8)


def phase_search(u: np.ndarray, window: int = 16, step: int = 4) -> np.ndarray:
    """Coarse carrier phase (radians, continuous along each column) at every symbol: of 8 axes,
    the one on which the projections |Re(u e^-j phi)| summed over ``window`` symbols are largest
    (AIS-catcher's linear classification, here centred and for every timing phase at once),
    chosen once every ``step`` symbols: it only has to be within ~12 degrees for the tentative
    decisions of :func:`decision_directed_phase`, which refines it. The axis is defined modulo
    pi; unwrapping at pi keeps the sign of the decisions from flipping where the best axis passes
    from -90 to +90 degrees."""
    n, phases = u.shape
    if n == 0:
        return np.zeros(u.shape)
    m = -(-n // step)
    pairs = np.zeros((m * step, phases, 2), dtype=np.float32)
    pairs[:n, :, 0], pairs[:n, :, 1] = u.real, u.imag
    projections = np.abs(pairs @ _PROJECT)  # (m * step, phases, 8)
    blocks = projections.reshape(m, step, phases * len(_AXES)).sum(axis=1)
    sums = _window_sums(blocks, max(1, window // step)).reshape(m, phases, len(_AXES))
    best = np.unwrap(2 * _AXES[np.argmax(sums, axis=2)], axis=0) / 2
    return np.repeat(best, step, axis=0)[:n]


def decision_directed_phase(u: np.ndarray, coarse: np.ndarray, window: int = 48) -> np.ndarray:
    """Unit phasors of the carrier phase at every symbol: u times its tentative decision (the sign
    of the projection on the coarse axis) averaged over ``window`` symbols, centred. The data is
    removed by the decisions instead of by squaring, so the quadrature interference between
    GMSK's neighbouring pseudo-symbols averages out instead of biasing the estimate."""
    if len(u) == 0:
        return np.zeros(u.shape, dtype=np.complex64)
    tentative = np.sign(u.real * np.cos(coarse) + u.imag * np.sin(coarse))
    sums = _window_sums(u * tentative, window)
    return (sums / np.maximum(np.abs(sums), 1e-30)).astype(np.complex64)


def soft_symbols(u: np.ndarray, phasor: np.ndarray) -> np.ndarray:
    """c_k: the projection of u on the carrier axis (sign = decision, size = reliability)."""
    return (u.real * phasor.real + u.imag * phasor.imag).astype(np.float32)


def data_bits(c: np.ndarray) -> np.ndarray:
    """NRZI-decoded bits of one column of soft symbols: bit k is 1 where c_k and c_(k-2) agree
    (the level a_k = c_k c_(k-1) did not change). A wrong c_k makes bits k and k+2 wrong, which
    is what the soft repair flips (``span=2``)."""
    s = c > 0
    bits = np.ones(len(c), dtype=np.uint8)
    bits[2:] = s[2:] == s[:-2]
    return bits


def demodulate(samples: np.ndarray, sps: float, phases: int, taps: np.ndarray, *, search_window: int = 16,
               phase_window: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """The blocks in order: (soft symbols c[k, p], their instants in ``samples``)."""
    u, instants = symbol_samples(matched_filter(samples, taps), sps, phases)
    coarse = phase_search(u, search_window)
    return soft_symbols(u, decision_directed_phase(u, coarse, phase_window)), instants
