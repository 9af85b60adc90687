"""Split one capture tuned between the AIS channels into two baseband streams, A and B.

One FFT does both channels (fast convolution, overlap-save): the capture is cut into segments of
N samples that overlap by the filter's length; each segment's spectrum is computed once, and for
each channel the K bins around it (+-out_rate/2) are multiplied by the channel filter's response
and transformed back with a K-point inverse FFT, which mixes the channel to 0 Hz, filters it and
decimates by d = N/K in one step. The channel filter is a Kaiser-windowed low-pass of +-6 kHz
(the GMSK main lobe and ~1 kHz of residual offset; measured: 2.5x as many bursts at 10 dB Eb/N0
through the discriminator as a 7 kHz one); everything beyond +-out_rate/2 is dropped with the
unused bins. The output rate is the input rate over a whole d, at least 48 kS/s (5 samples per
symbol at 9,600 baud). K = 1,920 makes a bin 25 Hz at 48 kS/s, so the channels (+-25 kHz) and
most corrections fall on bins; a correction between bins is applied to the nearest bin and the
decoders are told the frequency actually removed (:meth:`Channelizer.applied_correction`).

Streaming: the filter history and the samples not yet filling a segment are kept across calls,
so a burst across a block edge arrives intact; :meth:`Channelizer.flush` emits what is left at
the end. The segments' spectra also give the AFC its blind estimate of the carrier offset
(:meth:`Channelizer.spectral_offset`), without a second FFT.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aiswatch.demod.settings import CENTER_HZ, CHANNEL_HZ

OUT_RATE_MIN = 48_000.0
CHANNEL_CUTOFF_HZ = 9_000.0  # room kept around each channel (signal + carrier offset)
CHANNEL_FILTER_HZ = 6_000.0  # channel low-pass cutoff: the GMSK main lobe (+-5 kHz) and ~1 kHz of residual offset
BINS_OUT = 1_920             # K: inverse-FFT size per channel and segment (25 Hz bins at 48 kS/s)


def lowpass_taps(numtaps: int, cutoff_hz: float, rate: float, beta: float = 6.0) -> np.ndarray:
    """Windowed-sinc low-pass (Kaiser window, unit DC gain): scipy's ``firwin(numtaps, cutoff,
    fs=rate, window=('kaiser', beta))``, written out so the receiver starts without importing
    scipy (most of a second)."""
    m = np.arange(numtaps) - (numtaps - 1) / 2
    taps = np.sinc(2 * cutoff_hz / rate * m) * np.kaiser(numtaps, beta)
    return taps / taps.sum()


def plan_rates(rate: float) -> tuple[int, float]:
    """(decimation d, per-channel output rate) for an input ``rate``."""
    if rate < 2 * (25_000 + CHANNEL_CUTOFF_HZ):
        raise ValueError(f"sample rate {rate:g} S/s is too low to hold both AIS channels (need >= 68000)")
    d = max(1, int(rate // OUT_RATE_MIN))
    return d, rate / d


@dataclass
class Spectra:
    """The spectra of the segments one block completed: ``bins`` (segments x N, complex64) and
    the input sample index where each segment's new samples start (``starts``)."""

    bins: np.ndarray
    starts: np.ndarray


class Channelizer:
    """Complex samples at ``rate`` centred on ``center_hz`` in, {'A': baseband, 'B': baseband} out.

    freq_correction_hz: the receiver's own frequency error (positive = the signals appear higher
    than they should), updated by the AFC while running; ppm from ``--ppm`` goes in here too.
    """

    def __init__(self, rate: float, center_hz: float = CENTER_HZ, freq_correction_hz: float = 0.0,
                 channels: dict[str, float] | None = None):
        self.rate = float(rate)
        self.center_hz = float(center_hz)
        self.freq_correction_hz = float(freq_correction_hz)
        self.channels = dict(channels or CHANNEL_HZ)
        self.decimation, self.out_rate = plan_rates(self.rate)
        for name, freq in self.channels.items():
            if abs(freq - self.center_hz) + CHANNEL_CUTOFF_HZ > self.rate / 2:
                raise ValueError(f"channel {name} ({freq / 1e6:.3f} MHz) is outside the capture "
                                 f"centred on {self.center_hz / 1e6:.3f} MHz at {self.rate:g} S/s")
        d, k = self.decimation, BINS_OUT
        # filter length a multiple of d plus one, so each segment's first valid output is whole
        self.overlap_out = int(math.ceil(4.0 * self.rate / 6_000 / d))  # q: outputs lost per segment
        taps = lowpass_taps(self.overlap_out * d + 1, CHANNEL_FILTER_HZ, self.rate)
        self.size = k * d                                  # N
        self.hop = (k - self.overlap_out) * d              # new input samples per segment
        self.bin_hz = self.rate / self.size
        freqs = np.concatenate([np.arange(k // 2), np.arange(-k // 2, 0)])  # inverse-FFT order
        self._offsets = freqs
        self._response = (np.fft.fft(taps, self.size)[freqs % self.size] / d).astype(np.complex64)
        # input not yet through a segment's new part, after the overlap (zeros at first)
        self._store = np.zeros(2 * self.size, dtype=np.complex64)
        self._filled = self.size - self.hop
        self._bins = np.zeros((0, self.size), dtype=np.complex64)
        self._taken = 0  # input samples consumed into segments so far
        self._phase = {name: 0.0 for name in self.channels}
        # the filter delays the stream by (len - 1) / 2 input samples: its first q/2 outputs are
        # dropped, so output j is input j * d
        self._skip = self.overlap_out // 2

    def applied_correction(self, name: str) -> float:
        """The correction (Hz) actually removed from channel ``name``: the requested one, moved
        to the nearest bin."""
        nominal = self.channels[name] - self.center_hz
        return self._bin(name) * self.bin_hz - nominal

    def _bin(self, name: str) -> int:
        return int(round((self.channels[name] - self.center_hz + self.freq_correction_hz) / self.bin_hz))

    def process(self, block: np.ndarray) -> dict[str, np.ndarray]:
        return self.split(self.transform(block))

    def transform(self, block: np.ndarray) -> Spectra:
        """The spectra of every segment the new samples complete (the rest waits for more). The
        samples and the spectra live in buffers kept from call to call (fresh arrays of tens of
        MB per block at 1.536 MS/s cost the kernel a third of the FFT's time in page faults):
        the returned spectra are valid until the next call."""
        block = np.asarray(block, dtype=np.complex64)
        filled = self._filled + len(block)
        if filled > len(self._store):
            self._store = np.concatenate([self._store[:self._filled], np.zeros(filled - self._filled + self.size,
                                                                                  dtype=np.complex64)])
        self._store[self._filled:filled] = block
        count = max(0, (filled - self.size) // self.hop + 1)
        starts = self._taken + np.arange(count) * self.hop
        if count > len(self._bins):
            self._bins = np.empty((count, self.size), dtype=np.complex64)
        bins = self._bins[:count]
        for k in range(count):  # one 1-D FFT per segment: the 2-D form allocates a copy of all of them
            np.fft.fft(self._store[k * self.hop:k * self.hop + self.size], out=bins[k])
        rest = filled - count * self.hop
        self._store[:rest] = self._store[count * self.hop:filled]
        self._filled = rest
        self._taken += count * self.hop
        return Spectra(bins, starts)

    def split(self, spectra: Spectra) -> dict[str, np.ndarray]:
        """Each channel's baseband from the segments' spectra, mixed with the current correction."""
        out = {}
        q = self.overlap_out
        for name in self.channels:
            c = self._bin(name)
            segs = len(spectra.bins)
            if not segs:
                out[name] = np.zeros(0, dtype=np.complex64)
                continue
            chosen = spectra.bins[:, (c + self._offsets) % self.size] * self._response
            y = np.fft.ifft(chosen, axis=1)[:, q:]
            # the mixer's phase at each segment's first new sample, continuous across segments
            # (and across a change of correction): each segment moves it by c bins over a hop
            step = -2 * math.pi * c * self.hop / self.size
            phases = self._phase[name] + step * np.arange(segs)
            self._phase[name] = float((phases[-1] + step) % (2 * math.pi))
            # the IFFT mixes from the segment's first sample; the phase above is the mixer's at the
            # first kept output, `size - hop` samples later
            lead = 2 * math.pi * c * (self.size - self.hop) / self.size
            y *= np.exp(1j * (phases + lead)).astype(np.complex64)[:, None]
            out[name] = y.reshape(-1).astype(np.complex64, copy=False)
        if self._skip and len(spectra.bins):
            out = {name: y[self._skip:] for name, y in out.items()}
            self._skip = 0
        return out

    def flush(self) -> dict[str, np.ndarray]:
        """What is still in the buffer, filtered (the end padded with zeros)."""
        pending = self._filled - (self.size - self.hop)
        if pending <= 0:
            return {name: np.zeros(0, dtype=np.complex64) for name in self.channels}
        out = self.process(np.zeros(self.size, dtype=np.complex64))
        keep = int(math.ceil(pending / self.decimation)) + self.overlap_out // 2
        return {name: y[:keep] for name, y in out.items()}

    def spectral_offset(self, spectra: Spectra, search_hz: float = 12_000.0) -> float | None:
        """Blind estimate of the common carrier offset (Hz) from the segments' averaged spectrum:
        the centroid of the power above the noise floor within +-search_hz of each channel
        (GMSK's spectrum is symmetric about its carrier). None when the segments hold too little
        signal to tell, or are too few to average (under ~80 ms). This lets the AFC acquire
        offsets the channel filter would cut off, before any frame decodes. Only the bins it
        needs are squared: the bands, and every 16th bin for the floor."""
        if len(spectra.bins) * self.size < 0.08 * self.rate:
            return None

        def mean_power(index):
            # through a Hann window, applied to the spectrum (0.5 X_k - 0.25 (X_k-1 + X_k+1)):
            # the segments' own, rectangular, window leaks a burst's power far into the band
            bins = spectra.bins
            chosen = 0.5 * bins[:, index] - 0.25 * (bins[:, (index - 1) % self.size] + bins[:, (index + 1) % self.size])
            return (chosen.real ** 2 + chosen.imag ** 2).mean(axis=0)

        group = 8  # 25 Hz bins are finer than needed: groups of 8 (200 Hz) smooth the estimate
        # the floor: the median over groups spread across the capture (of groups, not of single
        # bins, whose median is well below their mean when few segments are averaged)
        spread = (np.arange(0, self.size - group, 16 * group)[:, None] + np.arange(group)).ravel()
        floor = float(np.median(mean_power(spread).reshape(-1, group).sum(axis=1)))
        half = int(search_hz / self.bin_hz) // group * group
        offsets = np.arange(-half, half + group)  # bins around the nominal one
        estimates, weights = [], []
        for freq in self.channels.values():
            nominal = freq - self.center_hz
            centre = int(round(nominal / self.bin_hz))
            psd = mean_power((centre + offsets) % self.size).reshape(-1, group).sum(axis=1)
            freqs = (centre + offsets.reshape(-1, group).mean(axis=1)) * self.bin_hz - nominal
            excess = np.clip(psd - floor, 0, None)
            if excess.sum() < 0.2 * floor * len(psd):
                continue
            estimates.append(float(np.sum(freqs * excess) / excess.sum()))
            weights.append(float(excess.sum()))
        if not estimates:
            return None
        return float(np.average(estimates, weights=weights))
