"""An AIS burst generator for the receiver bench, written from ITU-R M.1371-5 (annex 2, §2-3),
independent of ``demod/modulator.py`` so the bench does not test the receiver against its own
transmitter's mistakes.

Transmit side: random messages of types 1, 2, 3 and 18 (168 bits), octets sent least-significant
bit first followed by the X.25 FCS (bitwise CRC here, low byte first), bit stuffing after five 1s,
frame = 8 ramp bits + 24-bit training 0101... + flag 0x7E + data + flag + 8 bits of ramp-down,
NRZI (a 0 changes the level), GMSK with BT 0.4 and h = 0.5 at 9,600 baud. The phase is the exact
integral of the Gaussian-filtered rectangular frequency pulse (closed form with the normal CDF),
evaluated at every output sample: no fine grid, no interpolation. Power ramps are sin^2 over the
first and last 8 bits.

Channel, as rough as an RTL-SDR dongle: complex white noise at a given Eb/N0 (burst power over the
noise in 9.6 kHz), each burst's carrier within +-500 Hz plus the dongle's offset (ppm of 162 MHz,
the same crystal also stretching the sample clock), transmitter clock errors, slow level changes
within a burst, DC offset and I/Q imbalance of the RTL2832, and 8-bit quantisation with the tuner
gain set normal, too high (clipping) or too low (a few LSB of noise) on successive thirds of a
recording. Also FM-discriminator audio as a sound card records it: the radio's IF filter and
discriminator, AC coupling, optional de-emphasis, a band limit, 44.1 or 48 kHz, 16 bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

BAUD = 9600.0
BT = 0.4
CENTER_HZ = 162_000_000.0
CHANNEL_OFFSET_HZ = {"A": -25_000.0, "B": 25_000.0}
TYPES = (1, 2, 3, 18)
SLOT = 0.08 / 3  # seconds: 2,250 slots a minute


# --- link layer -------------------------------------------------------------------------------

def fcs(data: bytes) -> int:
    """CRC-16/X.25 (ISO/IEC 13239): reflected, polynomial x^16 + x^12 + x^5 + 1, preset all
    ones, complemented; bit by bit, as the standard describes it."""
    reg = 0xFFFF
    for octet in data:
        for k in range(8):
            bit = (octet >> k) & 1
            feedback = (reg ^ bit) & 1
            reg >>= 1
            if feedback:
                reg ^= 0x8408
    return reg ^ 0xFFFF


def frame_bits(message: bytes) -> list[int]:
    """The bits of a frame before NRZI: ramp, training, flag, stuffed data + FCS, flag, ramp-down."""
    check = fcs(message)
    payload = [(octet >> k) & 1 for octet in bytes(message) + bytes([check & 0xFF, check >> 8]) for k in range(8)]
    stuffed, ones = [], 0
    for bit in payload:
        stuffed.append(bit)
        ones = ones + 1 if bit else 0
        if ones == 5:
            stuffed.append(0)
            ones = 0
    flag = [0, 1, 1, 1, 1, 1, 1, 0]
    return [0] * 8 + [0, 1] * 12 + flag + stuffed + flag + [0] * 8


def nrzi(bits: list[int], level: int) -> np.ndarray:
    """NRZI levels (+1/-1): a 0 changes the level, a 1 keeps it."""
    out = np.empty(len(bits))
    for i, bit in enumerate(bits):
        if bit == 0:
            level = -level
        out[i] = level
    return out


def random_message(rng: np.random.Generator) -> bytes:
    """168 bits of a position report (type 1/2/3 or 18): a ship's MMSI (MID 201-775, as decoders
    reject numbers above 999,999,999) and random contents in the other fields."""
    value = int.from_bytes(rng.integers(0, 256, 21, dtype=np.uint8).tobytes(), "big")
    mmsi = int(rng.integers(201_000_000, 776_000_000))
    value &= ~(((1 << 38) - 1) << 130)  # type (6), repeat (2), MMSI (30): bits 0-37 from the top
    value |= int(rng.choice(TYPES)) << 162 | int(rng.integers(0, 4)) << 160 | mmsi << 130
    return value.to_bytes(21, "big")


# --- modulation -------------------------------------------------------------------------------

def _phase_pulse(t: np.ndarray) -> np.ndarray:
    """q(t) = integral of the GMSK frequency pulse g (t in symbols, centred on the symbol),
    rising from 0 to 1/2: g = (Phi((t+1/2)/s) - Phi((t-1/2)/s)) / 2, s = sqrt(ln 2)/(2 pi BT),
    and the integral of Phi(x/s) is s * (x/s Phi(x/s) + phi(x/s))."""
    s = math.sqrt(math.log(2)) / (2 * math.pi * BT)

    def big_phi(x):
        u = x / s
        return s * (u * ndtr(u) + np.exp(-u * u / 2) / math.sqrt(2 * math.pi))

    return 0.5 * (big_phi(t + 0.5) - big_phi(t - 0.5))


def gmsk_burst(levels: np.ndarray, rate: float, start: float, baud: float = BAUD):
    """(first sample index, complex samples) of one burst: unit power, the first symbol's leading
    edge at sample ``start`` (fractional), its own symbol clock ``baud``."""
    n_sym = len(levels)
    first = int(math.ceil(start))
    count = int(math.floor(start + n_sym * rate / baud)) - first
    t = (first + np.arange(count) - start) * baud / rate  # symbols since the leading edge
    # every symbol i contributes a_i q(t - i - 1/2): the last 4 on each side exactly, older ones 1/2
    k = np.floor(t).astype(np.int64)
    padded = np.concatenate([np.zeros(1), np.cumsum(levels)])  # padded[i] = sum of levels[:i]
    phase = np.zeros(count)
    lo = np.clip(k - 4, 0, n_sym)
    phase += 0.5 * padded[lo]
    for d in range(-4, 5):
        i = k + d
        ok = (i >= 0) & (i < n_sym)
        phase[ok] += levels[i[ok]] * _phase_pulse(t[ok] - i[ok] - 0.5)
        # symbols older than k-4 already counted above; d = -4 .. 4 covers the pulse's span
    phase *= math.pi  # 2 pi h with h = 1/2
    env = np.ones(count)
    ramp = 8.0
    up, down = t < ramp, t > n_sym - ramp
    env[up] = np.sin(0.5 * math.pi * t[up] / ramp) ** 2
    env[down] = np.sin(0.5 * math.pi * (n_sym - t[down]) / ramp) ** 2
    return first, env * np.exp(1j * phase)


# --- recordings -------------------------------------------------------------------------------

@dataclass
class Transmission:
    message: bytes
    channel: str            # 'A' or 'B'
    start: float            # seconds
    ebn0_db: float
    cfo_hz: float = 0.0     # transmitter's carrier error
    clock_ppm: float = 0.0  # transmitter's symbol clock error
    fade_depth: float = 0.0  # slow level change within the burst: amplitude 1 + depth * sin(...)
    fade_hz: float = 0.0
    fade_phase: float = 0.0
    phase: float = 0.0


@dataclass
class Dongle:
    """The receiver's analogue and digital imperfections.

    ppm: crystal error (carrier and sample clock; uncorrected); dc: DC offset in LSB (I, Q);
    iq_gain_db / iq_phase_deg: I/Q imbalance; noise_lsb: noise rms per component in LSB for each
    successive part of the recording (gain normal, too high, too low), the gain changing between
    bursts (see :func:`gain_edges`)."""

    ppm: float = 0.0
    dc: tuple[float, float] = (0.0, 0.0)
    iq_gain_db: float = 0.0
    iq_phase_deg: float = 0.0
    noise_lsb: tuple[float, ...] = (10.0,)


ROUGH_DONGLE = Dongle(ppm=0.7, dc=(2.6, -1.9), iq_gain_db=0.4, iq_phase_deg=2.5, noise_lsb=(10.0, 42.0, 2.5))


def schedule(rng: np.random.Generator, n: int, ebn0_db: float, *, spacing: float = 2 * SLOT,
             overlap: float = 0.0, rough: bool = True) -> list[Transmission]:
    """``n`` one-slot bursts alternating between channels A and B, one every ``spacing`` seconds
    on each channel; a share ``overlap`` of them gets a second burst on the same channel starting
    within the first one (a collision: levels within +-10 dB of each other, both at or above
    ``ebn0_db``)."""
    out = []
    for i in range(n):
        start = 0.01 + (i // 2) * spacing + (i % 2) * spacing / 2 + float(rng.uniform(0, 0.002))
        out.append(_transmission(rng, "AB"[i % 2], start, ebn0_db, rough))
    for first in [t for t in out if rng.uniform() < overlap]:
        gap = float(rng.uniform(0.3, 0.9)) * 0.0267  # the second starts 30-90 % into the first
        level = ebn0_db + float(rng.uniform(0, 10))
        if rng.uniform() < 0.5:
            first.ebn0_db = level
            level = ebn0_db
        out.append(_transmission(rng, first.channel, first.start + gap, level, rough))
    return out


def _transmission(rng, channel: str, start: float, ebn0_db: float, rough: bool) -> Transmission:
    return Transmission(random_message(rng), channel, start, ebn0_db,
                        cfo_hz=float(rng.uniform(-500, 500)),
                        clock_ppm=float(rng.uniform(-20, 20)) if rough else 0.0,
                        fade_depth=float(rng.uniform(0.0, 0.3)) if rough else 0.0,
                        fade_hz=float(rng.uniform(3, 25)), fade_phase=float(rng.uniform(0, 2 * math.pi)),
                        phase=float(rng.uniform(0, 2 * math.pi)))


def gain_edges(transmissions: list[Transmission], parts: int, rate: float) -> list[int]:
    """Sample indices where the tuner gain changes, splitting the transmissions into ``parts``
    equal groups: each change falls in the gap before the first burst of a group (a gain change
    in the middle of a burst is not what the bench measures)."""
    ordered = sorted(transmissions, key=lambda tx: tx.start)
    edges = []
    for k in range(1, parts):
        first = ordered[k * len(ordered) // parts]
        ends = [tx.start + len(frame_bits(tx.message)) / BAUD for tx in ordered if tx.start < first.start]
        before = max(ends, default=first.start - 0.001)
        edges.append(int(round(rate * (min(before, first.start) + first.start) / 2)))
    return edges


def render(transmissions: list[Transmission], rate: float, lo: int, hi: int, edges: list[int], dongle: Dongle,
           rng: np.random.Generator) -> np.ndarray:
    """Samples ``lo``..``hi`` of a recording: the analogue signal in LSB units (before the ADC),
    complex128. The noise level changes at the sample indices ``edges`` (``dongle.noise_lsb``,
    one more level than edges); a burst's level follows its Eb/N0 against the noise where it
    starts."""
    levels = np.asarray(dongle.noise_lsb, dtype=float)
    sigma = levels[np.searchsorted(edges, np.arange(lo, hi), side="right")]
    x = (rng.standard_normal(hi - lo) + 1j * rng.standard_normal(hi - lo)) * sigma
    clock = 1 + dongle.ppm * 1e-6  # the dongle's sample clock runs fast: signals look slower
    for tx in transmissions:
        bits = frame_bits(tx.message)
        levels_tx = nrzi(bits, 1 if tx.message[-1] & 1 else -1)
        first, burst = gmsk_burst(levels_tx, rate, tx.start * rate * clock, BAUD * (1 + tx.clock_ppm * 1e-6) / clock)
        a, b = max(first, lo), min(first + len(burst), hi)
        if b <= a:
            continue
        t_burst = (np.arange(first, first + len(burst))) / rate
        fade = 1 + tx.fade_depth * np.sin(2 * math.pi * tx.fade_hz * (t_burst - t_burst[0]) + tx.fade_phase)
        fade /= math.sqrt(np.mean(fade ** 2))  # Eb/N0 is the burst's mean power
        freq = (CHANNEL_OFFSET_HZ[tx.channel] + tx.cfo_hz) / clock - dongle.ppm * 1e-6 * CENTER_HZ
        noise_power = 2 * levels[np.searchsorted(edges, first, side="right")] ** 2
        amplitude = math.sqrt(10 ** (tx.ebn0_db / 10) * noise_power / rate * BAUD)
        sl = slice(a - first, b - first)
        x[a - lo:b - lo] += (amplitude * fade[sl] * burst[sl]
                             * np.exp(1j * (2 * math.pi * freq * t_burst[sl] + tx.phase)))
    return x


def adc_cu8(x: np.ndarray, dongle: Dongle) -> bytes:
    """I/Q imbalance, DC offset and the RTL2832's 8-bit converter (offset 127.5, clipping)."""
    g = 10 ** (dongle.iq_gain_db / 20)
    phi = math.radians(dongle.iq_phase_deg)
    i = x.real * g + dongle.dc[0]
    q = (x.imag * math.cos(phi) + x.real * math.sin(phi)) / g + dongle.dc[1]
    inter = np.empty(2 * len(x))
    inter[0::2], inter[1::2] = i, q
    return np.clip(np.floor(inter + 128.0), 0, 255).astype(np.uint8).tobytes()


def write_cu8(path: str, transmissions: list[Transmission], rate: float, duration: float, *,
              dongle: Dongle = ROUGH_DONGLE, seed: int = 0, chunk_seconds: float = 2.0) -> None:
    """A cu8 recording (what rtl_sdr writes) of ``transmissions``, rendered a few seconds at a
    time so long recordings at 1.536 MS/s stay small in memory."""
    rng = np.random.default_rng(seed)
    n = int(round(duration * rate))
    step = int(chunk_seconds * rate)
    edges = gain_edges(transmissions, len(dongle.noise_lsb), rate * (1 + dongle.ppm * 1e-6))
    with open(path, "wb") as fh:
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            near = [tx for tx in transmissions if lo / rate - 0.2 < tx.start < hi / rate + 0.01]
            fh.write(adc_cu8(render(near, rate, lo, hi, edges, dongle, rng), dongle))


# --- discriminator audio ------------------------------------------------------------------------

@dataclass
class SoundCard:
    """A VHF radio's discriminator output recorded by a sound card.

    if_hz: the radio's IF filter (+-); ac_hz: AC coupling (first-order high-pass); deemphasis_us:
    the radio's de-emphasis time constant (first-order low-pass; None = a flat discriminator
    tap); band_hz: the audio stage's low-pass (4th-order Butterworth); level: full scale at
    this many Hz of deviation."""

    if_hz: float = 7_500.0
    ac_hz: float = 20.0
    deemphasis_us: float | None = None
    band_hz: float = 7_000.0
    level: float = 8_000.0


def discriminator_audio(transmissions: list[Transmission], audio_rate: int, duration: float, *,
                        card: SoundCard = SoundCard(), seed: int = 0) -> np.ndarray:
    """16-bit mono audio at ``audio_rate`` (44,100 or 48,000 Hz: anything the card does) of the
    bursts on one channel, the radio tuned to it: the analogue chain is simulated at 4x the audio
    rate (complex noise at the bursts' Eb/N0 there), then the card's anti-alias filter and
    decimation. Every transmission is taken as being on the tuned channel."""
    from scipy.signal import bilinear, butter, firwin, lfilter, oaconvolve, resample_poly

    rate = 4 * audio_rate
    rng = np.random.default_rng(seed)
    n = int(round(duration * rate))
    sigma = 1.0
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * sigma
    for tx in transmissions:
        levels = nrzi(frame_bits(tx.message), 1 if tx.message[-1] & 1 else -1)
        first, burst = gmsk_burst(levels, rate, tx.start * rate, BAUD * (1 + tx.clock_ppm * 1e-6))
        lo, hi = max(first, 0), min(first + len(burst), n)
        if hi <= lo:
            continue
        t = np.arange(lo, hi) / rate
        amplitude = math.sqrt(10 ** (tx.ebn0_db / 10) * 2 * sigma ** 2 / rate * BAUD)
        x[lo:hi] += amplitude * burst[lo - first:hi - first] * np.exp(1j * (2 * math.pi * tx.cfo_hz * t + tx.phase))
    x = oaconvolve(x, firwin(257, card.if_hz, fs=rate), mode="same")
    audio = np.angle(x[1:] * np.conj(x[:-1])) * rate / (2 * math.pi)
    audio = np.concatenate([audio[:1], audio])
    b, a = butter(1, card.ac_hz, btype="highpass", fs=rate)
    audio = lfilter(b, a, audio)
    if card.deemphasis_us:
        tau = card.deemphasis_us * 1e-6
        b, a = bilinear([1.0], [tau, 1.0], fs=rate)
        audio = lfilter(b, a, audio)
    b, a = butter(4, card.band_hz, fs=rate)
    audio = resample_poly(lfilter(b, a, audio), 1, 4)
    return np.clip(np.round(audio / card.level * 32767), -32768, 32767).astype(np.int16)


def write_wav(path: str, audio: np.ndarray, rate: int) -> None:
    from scipy.io import wavfile

    wavfile.write(path, int(rate), audio)
