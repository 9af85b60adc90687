"""Symbol timing recovery on the demodulated (frequency) signal.

Two ways, both vectorised over a whole block:
- fixed phases: sample at p + k*sps for several phases p; one of them is within half a sample of
  the best instant, and each phase stream is searched for frames (what AIS-catcher does);
- a tracked clock (Oerder & Meyr square-law estimator): the symbol-rate line of y^2, averaged over
  a sliding window of symbols, gives the timing phase at every sample, so a transmitter whose clock
  is off (or a long 5-slot burst) is sampled at its own rate.
Sampling between samples uses linear interpolation of the smooth, low-passed frequency signal.
"""
from __future__ import annotations

import math

import numpy as np


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
    n = np.arange(len(y))
    z = (y.astype(np.float64) ** 2) * np.exp(-2j * np.pi * n / sps)
    width = max(1, int(round(window_symbols * sps)))
    c = np.concatenate([[0], np.cumsum(z)])
    half = width // 2
    hi = np.minimum(n + half + 1, len(y))
    lo = np.maximum(n - half, 0)
    return c[hi] - c[lo]


def tracked_instants(y: np.ndarray, sps: float, window_symbols: int = 64) -> np.ndarray:
    """Symbol-centre instants that follow the signal's own clock: the points where the phase
    2*pi*n/sps + angle(phasor) passes a multiple of 2*pi, found with sub-sample interpolation."""
    if len(y) < 2:
        return np.zeros(0)
    ph = timing_phasor(y, sps, window_symbols)
    theta = np.unwrap(2 * np.pi * np.arange(len(y)) / sps + np.angle(ph)) / (2 * np.pi)
    cycles = np.floor(theta)
    step = np.flatnonzero(np.diff(cycles) > 0)  # a multiple of 2*pi lies in (theta[i], theta[i+1]]
    target = cycles[step + 1]
    frac = (target - theta[step]) / np.maximum(theta[step + 1] - theta[step], 1e-9)
    return step + np.clip(frac, 0.0, 1.0)


def estimate_clock_error(instants: np.ndarray, sps: float) -> float:
    """Relative clock error (ppm) of the symbol clock implied by ``instants`` against ``sps``."""
    k = np.arange(len(instants))
    slope = np.polyfit(k, instants, 1)[0]
    return (sps / slope - 1) * 1e6
