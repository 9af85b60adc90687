"""The receive chain composed: complex samples in, CRC-checked AIS frames out.

    samples -> Channelizer (A, B) -> per channel: FM discriminator -> matched low-pass
            -> carrier offset removal -> symbol timing (tracked clock + fixed phases)
            -> slicer -> NRZI decode -> HDLC flags / destuff / CRC (+ soft repair) -> Frame

Streaming: each channel keeps the last ``HISTORY_SYMBOLS`` of baseband and re-examines them with the
next block, so a burst that straddles a block edge is decoded whole; a frame is emitted once (the
same message found by several timing phases, or again in the overlap, is a duplicate).

AFC, in two steps: (1) acquisition: the centroid of the signal power around each channel in the
block's spectrum (before the channel filter) gives a coarse offset; when it differs from the
current correction by more than 2 kHz the mixer jumps there, before the block is channelised, so
a dongle tens of ppm off (30 ppm = 4.9 kHz at 162 MHz; up to +-12 kHz) is corrected from its first
bursts on; (2) tracking: the offset measured on every decoded frame nudges the correction.
``ppm`` gives it a head start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aiswatch.demod import gmsk, hdlc, timing
from aiswatch.demod.channelizer import CENTER_HZ, Channelizer
from aiswatch.demod.settings import check_center, check_ppm, check_rate

BAUD = 9600.0
HISTORY_SYMBOLS = 1400 + 64  # a 5-slot frame with stuffing, plus margin
GUARD_SYMBOLS = 24           # frames ending this close to the window end wait for the next block
DEDUP_SYMBOLS = 128          # the same message twice within half a slot is one reception


@dataclass
class Frame:
    """One received AIS message.

    channel: 'A' or 'B'; message: the octets (CRC removed); sample: absolute index of the end
    flag at the channel rate; time_offset: seconds from the start of the stream to the end flag;
    level_db: mean burst power in dB full scale; freq_offset_hz: carrier offset in Hz (total,
    including the correction already applied); both None for discriminator audio; decoder: which
    timing path found it first (``tracked``, ``phaseN``, with ``+repair`` when soft-repaired).
    """

    channel: str
    message: bytes
    sample: int
    time_offset: float
    level_db: float | None
    freq_offset_hz: float | None
    decoder: str = ""

    @property
    def nbits(self) -> int:
        return 8 * len(self.message)


@dataclass
class _Window:
    """What one decoding pass over a channel's window needs to turn a found message into a Frame."""

    freq: np.ndarray            # discriminator output (Hz, or audio units)
    power: np.ndarray | None    # |x|^2, None for discriminator audio
    offset: np.ndarray          # local carrier offset estimate per sample
    start_abs: int              # absolute index of window[0]
    limit: int                  # frames must end before this index (the rest waits for the next block)
    frames: list


@dataclass
class ChannelStats:
    frames: int = 0
    duplicates: int = 0
    by_decoder: dict = field(default_factory=dict)


class ChannelDecoder:
    """One AIS channel: baseband (or, with ``input_is_frequency``, discriminator audio) in, frames out.

    rate: samples/s of the input; n_phases: fixed timing phases tried besides the tracked clock
    (default: one per sample of a symbol); input_is_frequency: the input is discriminator audio
    (its scale and sign do not matter: NRZI is polarity-free and the slicer works at zero);
    tracked: also sample with the tracked symbol clock; repair: try soft-decision repair of frames
    that fail the CRC (one or two flipped symbols among the least reliable, fixed-length types only).
    """

    def __init__(self, name: str, rate: float, *, n_phases: int | None = None, input_is_frequency: bool = False,
                 tracked: bool = True, repair: bool = True):
        self.name = name
        self.rate = float(rate)
        self.sps = self.rate / BAUD
        self.n_phases = n_phases if n_phases is not None else max(1, int(round(self.sps)))
        self.input_is_frequency = input_is_frequency
        self.tracked = tracked
        self.repair = repair
        self.taps = gmsk.matched_taps(self.sps)
        self.history = int(HISTORY_SYMBOLS * self.sps)
        self.guard = int(GUARD_SYMBOLS * self.sps)
        self._hist = np.zeros(0, dtype=np.float32 if input_is_frequency else np.complex64)
        self._consumed = 0  # absolute samples received
        # end positions of each message emitted lately: a list, because one message can arrive
        # twice within a window (a repeated or relayed transmission), and each is a reception
        self._recent: dict[bytes, list[int]] = {}
        self.stats = ChannelStats()
        # (first absolute sample, correction in Hz the channelizer had already removed from it)
        self._corrections: list[tuple[int, float]] = [(0, 0.0)]

    def set_correction(self, hz: float) -> None:
        """The channelizer removes ``hz`` from the samples pushed from now on (AFC / ppm)."""
        if hz != self._corrections[-1][1]:
            self._corrections.append((self._consumed, hz))
            self._corrections = self._corrections[-64:]

    def correction_at(self, sample: int) -> float:
        for start, hz in reversed(self._corrections):
            if start <= sample:
                return hz
        return self._corrections[0][1]

    def push(self, samples: np.ndarray, final: bool = False) -> list[Frame]:
        window = np.concatenate([self._hist, samples]) if len(self._hist) else np.asarray(samples)
        self._consumed += len(samples)
        start_abs = self._consumed - len(window)
        limit = len(window) if final else len(window) - self.guard
        frames = self._decode_window(window, start_abs, limit)
        self._hist = window[-self.history:] if len(window) > self.history else window
        # forget duplicates that can no longer reappear
        horizon = self._consumed - self.history - int(DEDUP_SYMBOLS * self.sps) * 2
        recent = {k: [e for e in ends if e >= horizon] for k, ends in self._recent.items()}
        self._recent = {k: ends for k, ends in recent.items() if ends}
        return frames

    def flush(self) -> list[Frame]:
        return self.push(np.zeros(0, dtype=self._hist.dtype), final=True)

    def _decode_window(self, window: np.ndarray, start_abs: int, limit: int) -> list[Frame]:
        if len(window) < 64 * self.sps:
            return []
        if self.input_is_frequency:
            freq = window.astype(np.float32)
            weight = None
            pw = None
        else:
            freq = gmsk.discriminator(window, self.rate)
            pw = gmsk.power(window)
            weight = pw
        y = gmsk.lowpass(freq, self.taps)
        offset = gmsk.frequency_offset(y, weight, int(128 * self.sps))
        y = y - offset
        streams = []
        if self.tracked:
            streams.append(("tracked", timing.tracked_instants(y, self.sps)))
        for p in range(self.n_phases):
            streams.append((f"phase{p}", timing.phase_instants(len(y), self.sps, p * self.sps / self.n_phases)))
        ctx = _Window(freq, pw, offset, start_abs, limit, [])
        decoded = []  # per stream: (label, instants, symbols, bits)
        for label, instants in streams:
            if len(instants) < 100:
                continue
            symbols = timing.sample_at(y, instants)
            bits = hdlc.nrzi_decode((symbols > 0).astype(np.uint8))
            decoded.append((label, instants, symbols, bits))
            for end_bit, message, _ in hdlc.find_messages(bits):
                self._emit(ctx, message, instants, end_bit, label)
        if self.repair:
            # second chance, only where no timing path found a frame: soft-decision repair
            known = [e - start_abs for ends in self._recent.values() for e in ends
                     if start_abs <= e < start_abs + len(window)]
            for label, instants, symbols, bits in decoded:
                found_ends = np.searchsorted(instants, known).tolist()
                for body_start, body_end in hdlc.repair_candidates(bits, found_ends):
                    message = hdlc.repair_body(bits, body_start, body_end, np.abs(symbols))
                    if message is not None:
                        self._emit(ctx, message, instants, body_end, label + "+repair")
        return sorted(ctx.frames, key=lambda f: f.sample)

    def _emit(self, ctx: _Window, message: bytes, instants: np.ndarray, end_bit: int, label: str) -> None:
        """Add a frame found in the window being decoded, unless it is a duplicate or too late."""
        end = int(instants[min(end_bit, len(instants) - 1)])
        if end >= ctx.limit:
            return
        end_abs = ctx.start_abs + end
        ends = self._recent.setdefault(message, [])
        if any(abs(e - end_abs) < int(DEDUP_SYMBOLS * self.sps) for e in ends):
            self.stats.duplicates += 1
            return
        ends.append(end_abs)
        # level and offset over the frame body (octets + CRC, ~5 % stuffing, the start flag)
        nsym = int((len(message) + 2) * 8 * 1.05 + 8)
        lo = max(0, end - int(nsym * self.sps))
        level = cfo = None  # discriminator audio has no absolute level or frequency scale
        if ctx.power is not None:
            level = 10 * math.log10(float(np.mean(ctx.power[lo:end])) + 1e-20)
            cfo = float(np.mean(ctx.offset[lo:end])) + self.correction_at(ctx.start_abs + (lo + end) // 2)
        self.stats.frames += 1
        self.stats.by_decoder[label] = self.stats.by_decoder.get(label, 0) + 1
        ctx.frames.append(Frame(self.name, message, end_abs, end_abs / self.rate, level, cfo, label))


class Receiver:
    """The whole software receiver for a capture tuned between the AIS channels.

    rate: input samples/s; center_hz: tuned frequency; ppm: known receiver frequency error as
    rtl_sdr's -p takes it (positive = the crystal runs fast, so signals appear ppm * centre Hz low);
    afc: acquire and track the carrier offset (see the module docstring); n_phases, tracked,
    repair: see :class:`ChannelDecoder`. A rate, centre or ppm it cannot use raises
    :class:`~demod.settings.SettingError`, and a capture that does not hold both channels a
    ValueError (SettingError is one too).
    """

    AFC_GAIN = 0.3           # share of a decoded frame's residual offset corrected per block
    AFC_LIMIT_HZ = 12_000.0  # the mid-rate band leaves room for this much offset
    ACQUIRE_HZ = 2_000.0     # re-acquire from the spectrum when it disagrees with the AFC by more

    def __init__(self, rate: float, center_hz: float = CENTER_HZ, *, ppm: float = 0.0, afc: bool = True,
                 n_phases: int | None = None, tracked: bool = True, repair: bool = True):
        rate, center_hz, ppm = check_rate(rate), check_center(center_hz), check_ppm(ppm)
        self.channelizer = Channelizer(rate, center_hz, freq_correction_hz=-ppm * 1e-6 * center_hz)
        self.afc = afc
        self.decoders = {name: ChannelDecoder(name, self.channelizer.out_rate, n_phases=n_phases, tracked=tracked,
                                              repair=repair)
                         for name in self.channelizer.channels}
        self.samples_in = 0

    @property
    def freq_correction_hz(self) -> float:
        return self.channelizer.freq_correction_hz

    def process(self, block: np.ndarray) -> list[Frame]:
        self.samples_in += len(block)
        mid = self.channelizer.decimate(block)
        if self.afc:
            coarse = self.channelizer.spectral_offset(mid)
            if coarse is not None and abs(coarse - self.channelizer.freq_correction_hz) > self.ACQUIRE_HZ:
                self.channelizer.freq_correction_hz = max(-self.AFC_LIMIT_HZ, min(self.AFC_LIMIT_HZ, coarse))
        return self._run(self.channelizer.split(mid), final=False)

    def flush(self) -> list[Frame]:
        return self._run({name: np.zeros(0, dtype=np.complex64) for name in self.decoders}, final=True)

    def _run(self, channels: dict[str, np.ndarray], final: bool) -> list[Frame]:
        frames = []
        for name, samples in channels.items():
            decoder = self.decoders[name]
            decoder.set_correction(self.channelizer.freq_correction_hz)
            frames.extend(decoder.push(samples, final=final))
        if self.afc and frames:
            # median: one ship with an off-frequency transmitter must not pull the dongle's correction
            residual = float(np.median([f.freq_offset_hz for f in frames])) - self.channelizer.freq_correction_hz
            new = self.channelizer.freq_correction_hz + self.AFC_GAIN * residual
            self.channelizer.freq_correction_hz = max(-self.AFC_LIMIT_HZ, min(self.AFC_LIMIT_HZ, new))
        frames.sort(key=lambda f: f.time_offset)
        return frames


class DiscriminatorReceiver:
    """Receiver for FM-discriminator audio (a VHF radio's discriminator tap): one channel per audio
    channel, named A, B in order (stereo = two radios, as gnuais and AIS-catcher -m 3 expect)."""

    def __init__(self, rate: float, n_channels: int = 1, names=("A", "B")):
        rate = check_rate(rate, audio=True)
        self.decoders = [ChannelDecoder(names[i], rate, input_is_frequency=True) for i in range(n_channels)]

    def process(self, block: np.ndarray) -> list[Frame]:
        """block: float array (samples,) or (samples, channels)."""
        block = block.reshape(len(block), -1)
        frames = []
        for i, decoder in enumerate(self.decoders):
            frames.extend(decoder.push(block[:, i].astype(np.float32)))
        return sorted(frames, key=lambda f: f.time_offset)

    def flush(self) -> list[Frame]:
        frames = []
        for decoder in self.decoders:
            frames.extend(decoder.flush())
        return sorted(frames, key=lambda f: f.time_offset)
