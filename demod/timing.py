"""Symbol timing recovery on the demodulated (frequency) signal.

Two ways, both vectorised over a whole block:
- fixed phases: sample at p + k*sps for several phases p; one of them is within half a sample of
  the best instant, and each phase stream is searched for frames (what AIS-catcher does);
- a tracked clock (Oerder & Meyr square-law estimator): the symbol-rate line of y^2, averaged over
  a sliding window of symbols, gives the timing phase along the burst, so a transmitter whose clock
  is off is sampled at its own rate.
Sampling between samples uses linear interpolation of the smooth, low-passed frequency signal.
"""
from __future__ import annotations

import math

import numpy as np

from aiswatch.demod.gmsk import centred_window_sums


def sample_at(y: np.ndarray, instants: np.ndarray) -> np.ndarray:
    """Values of ``y`` at fractional sample positions (linear interpolation)."""
    return np.interp(instants, np.arange(len(y)), y).astype(np.float32)


def phase_instants(n: int, sps: float, phase: float) -> np.ndarray:
    """Sampling instants phase, phase + sps, ... below n."""
    count = int(max(0, math.floor((n - 1 - phase) / sps) + 1))
    return phase + sps * np.arange(count)


def timing_phasor(y: np.ndarray, sps: float, window_symbols: int = 32) -> np.ndarray:
    """Oerder & Meyr: the window-averaged symbol-rate component of y^2 at every sample.

    Its angle is -2*pi*tau/sps where tau is the offset of the symbol centres from multiples of
    sps (y^2 peaks at symbol centres and dips at transitions)."""
    z = (y.astype(np.float64) ** 2) * _symbol_rate_line(len(y), sps)
    width = max(1, int(round(window_symbols * sps)))
    c = np.empty(len(y) + 1, dtype=np.complex128)
    c[0] = 0.0
    np.cumsum(z, out=c[1:])
    return centred_window_sums(c, width)


_line_cache: dict[tuple[int, float], np.ndarray] = {}


def _symbol_rate_line(n: int, sps: float) -> np.ndarray:
    """exp(-2j*pi*k/sps) for k < n: the same few block lengths come again and again, and the
    complex exponential of every sample cost a fifth of the tracked clock."""
    key = (n, float(sps))
    line = _line_cache.get(key)
    if line is None:
        if len(_line_cache) >= 16:
            _line_cache.clear()
        line = _line_cache[key] = np.exp(-2j * np.pi * np.arange(n) / sps)
        line.flags.writeable = False
    return line


def tracked_instants(y: np.ndarray, sps: float, window_symbols: int = 64) -> np.ndarray:
    """Symbol-centre instants that follow the signal's own clock: the nominal grid k*sps moved by
    the timing offset the phasor gives at each grid point, unwrapped along the grid so the offset
    drifts smoothly (a clock error) instead of jumping a symbol (no slipped or doubled symbols)."""
    if len(y) < 2:
        return np.zeros(0)
    ph = timing_phasor(y, sps, window_symbols)
    grid = np.arange(int((len(y) - 1) // sps) + 1) * sps
    angle = np.unwrap(np.angle(ph[np.round(grid).astype(np.int64)]))
    instants = grid - angle * sps / (2 * np.pi)
    return instants[(instants >= 0) & (instants <= len(y) - 1)]


def estimate_clock_error(instants: np.ndarray, sps: float) -> float:
    """Relative clock error (ppm) of the symbol clock implied by ``instants`` against ``sps``."""
    k = np.arange(len(instants))
    slope = np.polyfit(k, instants, 1)[0]
    return (sps / slope - 1) * 1e6
