"""The receive chain composed: complex samples in, CRC-checked AIS frames out.

    samples -> Channelizer (A, B) -> per channel, coherent (I/Q input):
                 training detector (bursts, each one's carrier offset) -> segments derotated
                 -> Gaussian receive filter -> fixed timing phases, turned back by j^-k
                 -> phase search -> decision-directed phase -> soft symbols
            or non-coherent (discriminator audio, or ``coherent=False``):
                 FM discriminator -> matched low-pass -> carrier offset removal
                 -> symbol timing (tracked clock + fixed phases) -> slicer
            -> NRZI decode -> HDLC flags / destuff / CRC (+ soft repair) -> Frame

Streaming: each channel keeps the last ``HISTORY_SYMBOLS`` of baseband and re-examines them with the
next block, so a burst that straddles a block edge is decoded whole; a frame is emitted once (the
same message found by several timing phases, or again in the overlap, is a duplicate).

AFC, in two steps: (1) acquisition: the centroid of the signal power around each channel in the
block's spectrum (before the channel filter) gives a coarse offset; when it differs from the
current correction by more than 2 kHz the mixer jumps there, before the block is channelised, so
a dongle tens of ppm off (30 ppm = 4.9 kHz at 162 MHz; up to +-12 kHz) is corrected from its first
bursts on; (2) tracking: the offset measured on every decoded frame nudges the correction.
``ppm`` gives it a head start. A decoder moves its history with every step of the correction, so
a window always has one carrier offset per burst.

A dongle's I/Q imbalance mirrors each channel onto the other; the mirror of a strong burst
decodes, and is dropped as one (the same message on the other channel at the same time, much
weaker).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from aiswatch.demod import coherent as coh
from aiswatch.demod import gmsk, hdlc, timing
from aiswatch.demod.channelizer import Channelizer
from aiswatch.demod.settings import BAUD, CENTER_HZ, check_center, check_ppm, check_rate

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

    samples: np.ndarray         # the window: complex baseband, or discriminator audio
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

    rate: samples/s of the input; n_phases: fixed timing phases per symbol (default: one per
    sample of a symbol); input_is_frequency: the input is discriminator audio (its scale and sign
    do not matter: NRZI is polarity-free and the slicer works at zero); coherent: demodulate
    complex input coherently (default; False: the discriminator path, as for audio); tracked:
    the discriminator path also samples with the tracked symbol clock; repair: try soft-decision
    repair of frames that fail the CRC (one or two flipped symbols among the least reliable,
    fixed-length types only); record: the record of frames emitted lately, to share with another
    decoder of the same channel so that a frame both find is emitted once.
    """

    def __init__(self, name: str, rate: float, *, n_phases: int | None = None, input_is_frequency: bool = False,
                 coherent: bool = True, tracked: bool = True, repair: bool = True,
                 record: dict[bytes, list[int]] | None = None):
        self.name = name
        self.rate = float(rate)
        self.sps = self.rate / BAUD
        self.n_phases = n_phases if n_phases is not None else max(1, int(round(self.sps)))
        self.input_is_frequency = input_is_frequency
        self.coherent = coherent and not input_is_frequency
        self.tracked = tracked
        self.repair = repair
        self.taps = gmsk.matched_taps(self.sps)
        if self.coherent:
            self.detector = coh.TrainingDetector(self.rate)
            self.coherent_taps = coh.gaussian_taps(self.sps)
        self.history = int(HISTORY_SYMBOLS * self.sps)
        self.guard = int(GUARD_SYMBOLS * self.sps)
        self._hist = np.zeros(0, dtype=np.float32 if input_is_frequency else np.complex64)
        self._consumed = 0  # absolute samples received
        # end positions of each message emitted lately: a list, because one message can arrive
        # twice within a window (a repeated or relayed transmission), and each is a reception
        self._recent: dict[bytes, list[int]] = record if record is not None else {}
        self.stats = ChannelStats()
        self.correction_hz = 0.0  # what the channelizer removes from the samples pushed now

    @property
    def record(self) -> dict[bytes, list[int]]:
        """Messages emitted lately and where they ended (absolute samples)."""
        return self._recent

    def set_correction(self, hz: float) -> None:
        """The channelizer removes ``hz`` from the samples pushed from now on (AFC / ppm). The
        history is moved by the same step (phase-continuous at the change, as the mixer is), so a
        window always looks as if mixed with one frequency: a burst across the change keeps one
        carrier offset, which coherent detection needs."""
        step = hz - self.correction_hz
        if step and len(self._hist) and not self.input_is_frequency:
            back = np.arange(-len(self._hist), 0) * (-2 * math.pi * step / self.rate)
            self._hist = self._hist * np.exp(1j * back).astype(np.complex64)
        self.correction_hz = hz

    def push(self, samples: np.ndarray, final: bool = False) -> list[Frame]:
        if not len(samples) and not final:
            return []  # nothing new (the channelizer waits for a whole segment)
        window = np.concatenate([self._hist, samples]) if len(self._hist) else np.asarray(samples)
        self._consumed += len(samples)
        start_abs = self._consumed - len(window)
        limit = len(window) if final else len(window) - self.guard
        frames = self._decode_window(window, start_abs, limit)
        self._hist = window[-self.history:] if len(window) > self.history else window
        # forget duplicates that can no longer reappear
        horizon = self._consumed - self.history - int(DEDUP_SYMBOLS * self.sps) * 2
        for message in list(self._recent):  # in place: the record may be shared (DiscriminatorReceiver)
            ends = [e for e in self._recent[message] if e >= horizon]
            if ends:
                self._recent[message] = ends
            else:
                del self._recent[message]
        return frames

    def flush(self) -> list[Frame]:
        return self.push(np.zeros(0, dtype=self._hist.dtype), final=True)

    def _decode_window(self, window: np.ndarray, start_abs: int, limit: int) -> list[Frame]:
        if len(window) < 64 * self.sps:
            return []
        ctx = _Window(window, start_abs, limit, [])
        if self.coherent:
            self._decode_coherent(ctx)
        else:
            self._decode_discriminator(ctx)
        return sorted(ctx.frames, key=lambda f: f.sample)

    def _known_ends(self, ctx: _Window) -> list[int]:
        """Window indices where a frame emitted lately ended (this pass's and earlier blocks')."""
        return [e - ctx.start_abs for ends in self._recent.values() for e in ends
                if ctx.start_abs <= e < ctx.start_abs + len(ctx.samples)]

    def _decode_coherent(self, ctx: _Window) -> None:
        bursts = self.detector.find(ctx.samples)
        if not bursts:
            return
        segs = coh.gather(ctx.samples, bursts, self.rate, gap=int(64 * self.sps))
        soft, instants = coh.demodulate(segs.samples, self.sps, self.n_phases, self.coherent_taps)
        decoded = []
        for p in range(soft.shape[1]):
            bits = coh.data_bits(soft[:, p])
            decoded.append((p, bits))
            for end_bit, message, _ in hdlc.find_messages(bits):
                self._emit_coherent(ctx, segs, message, instants[min(end_bit, len(instants) - 1), p], f"phase{p}")
        if self.repair:
            for p, bits in decoded:
                known = [pos for w in self._known_ends(ctx) for pos in segs.positions_of(w)]
                found_ends = np.searchsorted(instants[:, p], sorted(known)).tolist()
                for body_start, body_end in hdlc.repair_candidates(bits, found_ends):
                    message = hdlc.repair_body(bits, body_start, body_end, np.abs(soft[:, p]), span=2)
                    if message is not None:
                        self._emit_coherent(ctx, segs, message, instants[min(body_end, len(instants) - 1), p],
                                            f"phase{p}+repair")

    def _emit_coherent(self, ctx: _Window, segs: coh.Segments, message: bytes, position: float, label: str) -> None:
        k, end = segs.locate(position)
        self._emit(ctx, message, end, label, freq_hz=float(segs.freqs[k]))

    def _decode_discriminator(self, ctx: _Window) -> None:
        window = ctx.samples
        if self.input_is_frequency:
            freq = window.astype(np.float32)
            weight = None
        else:
            freq = gmsk.discriminator(window, self.rate)
            weight = gmsk.power(window)
        y = gmsk.lowpass(freq, self.taps)
        offset = gmsk.frequency_offset(y, weight, int(128 * self.sps))
        y = y - offset
        streams = []
        if self.tracked:
            streams.append(("tracked", timing.tracked_instants(y, self.sps)))
        for p in range(self.n_phases):
            streams.append((f"phase{p}", timing.phase_instants(len(y), self.sps, p * self.sps / self.n_phases)))
        decoded = []  # per stream: (label, instants, symbols, bits)
        for label, instants in streams:
            if len(instants) < 100:
                continue
            symbols = timing.sample_at(y, instants)
            bits = hdlc.nrzi_decode((symbols > 0).astype(np.uint8))
            decoded.append((label, instants, symbols, bits))
            for end_bit, message, _ in hdlc.find_messages(bits):
                self._emit(ctx, message, int(instants[min(end_bit, len(instants) - 1)]), label, offset=offset)
        if self.repair:
            # second chance, only where no timing path found a frame: soft-decision repair
            known = self._known_ends(ctx)
            for label, instants, symbols, bits in decoded:
                found_ends = np.searchsorted(instants, known).tolist()
                for body_start, body_end in hdlc.repair_candidates(bits, found_ends):
                    message = hdlc.repair_body(bits, body_start, body_end, np.abs(symbols))
                    if message is not None:
                        self._emit(ctx, message, int(instants[min(body_end, len(instants) - 1)]), label + "+repair",
                                   offset=offset)

    def _emit(self, ctx: _Window, message: bytes, end: int, label: str, *, offset: np.ndarray | None = None,
              freq_hz: float | None = None) -> None:
        """Add a frame that ends at window index ``end``, unless it is a duplicate or too late.
        The carrier offset is ``freq_hz`` (coherent: the burst's) or the mean of the discriminator
        path's ``offset`` estimate over the frame."""
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
        if not self.input_is_frequency:
            body = ctx.samples[lo:end]
            level = 10 * math.log10(float(np.mean(body.real ** 2 + body.imag ** 2)) + 1e-20)
            local = freq_hz if freq_hz is not None else float(np.mean(offset[lo:end]))
            cfo = local + self.correction_hz
        self.stats.frames += 1
        self.stats.by_decoder[label] = self.stats.by_decoder.get(label, 0) + 1
        ctx.frames.append(Frame(self.name, message, end_abs, end_abs / self.rate, level, cfo, label))


class Receiver:
    """The whole software receiver for a capture tuned between the AIS channels.

    rate: input samples/s; center_hz: tuned frequency; ppm: known receiver frequency error as
    rtl_sdr's -p takes it (positive = the crystal runs fast, so signals appear ppm * centre Hz low);
    afc: acquire and track the carrier offset (see the module docstring); n_phases, coherent,
    tracked, repair: see :class:`ChannelDecoder`. A rate, centre or ppm it cannot use raises
    :class:`~demod.settings.SettingError`, and a capture that does not hold both channels a
    ValueError (SettingError is one too).
    """

    AFC_GAIN = 0.3           # share of a decoded frame's residual offset corrected per block
    AFC_LIMIT_HZ = 12_000.0  # the spectral search band (+-12 kHz around each channel) and the channelizer's room
    ACQUIRE_HZ = 2_000.0     # re-acquire from the spectrum when it disagrees with the AFC by more
    IMAGE_DB = 15.0          # a copy on the other channel this much weaker, at the same time, is a mirror image

    def __init__(self, rate: float, center_hz: float = CENTER_HZ, *, ppm: float = 0.0, afc: bool = True,
                 n_phases: int | None = None, coherent: bool = True, tracked: bool = True, repair: bool = True):
        rate, center_hz, ppm = check_rate(rate), check_center(center_hz), check_ppm(ppm)
        self.channelizer = Channelizer(rate, center_hz, freq_correction_hz=-ppm * 1e-6 * center_hz)
        self.afc = afc
        self.decoders = {name: ChannelDecoder(name, self.channelizer.out_rate, n_phases=n_phases, coherent=coherent,
                                              tracked=tracked, repair=repair)
                         for name in self.channelizer.channels}
        self.samples_in = 0
        self.images = 0  # frames dropped as the I/Q imbalance's mirror of a strong burst on the other channel

    @property
    def freq_correction_hz(self) -> float:
        return self.channelizer.freq_correction_hz

    def process(self, block: np.ndarray) -> list[Frame]:
        self.samples_in += len(block)
        spectra = self.channelizer.transform(block)
        if self.afc:
            coarse = self.channelizer.spectral_offset(spectra)
            if coarse is not None and abs(coarse - self.channelizer.freq_correction_hz) > self.ACQUIRE_HZ:
                self.channelizer.freq_correction_hz = max(-self.AFC_LIMIT_HZ, min(self.AFC_LIMIT_HZ, coarse))
        return self._run(self.channelizer.split(spectra), final=False)

    def flush(self) -> list[Frame]:
        return self._run(self.channelizer.flush(), final=True)

    def _run(self, channels: dict[str, np.ndarray], final: bool) -> list[Frame]:
        frames = []
        for name, samples in channels.items():
            decoder = self.decoders[name]
            decoder.set_correction(self.channelizer.applied_correction(name))
            frames.extend(decoder.push(samples, final=final))
        frames = self._without_images(frames)
        if self.afc and frames:
            # median: one ship with an off-frequency transmitter must not pull the dongle's correction
            residual = float(np.median([f.freq_offset_hz for f in frames])) - self.channelizer.freq_correction_hz
            new = self.channelizer.freq_correction_hz + self.AFC_GAIN * residual
            self.channelizer.freq_correction_hz = max(-self.AFC_LIMIT_HZ, min(self.AFC_LIMIT_HZ, new))
        frames.sort(key=lambda f: f.time_offset)
        return frames

    def _without_images(self, frames: list[Frame]) -> list[Frame]:
        """Drop mirror images: a dongle's I/Q imbalance mirrors each channel onto the other
        (A at -25 kHz onto B at +25 kHz) some 25-35 dB down, and a strong burst's mirror decodes
        too. A ship sends a message on one channel at a time, so the same message on both channels
        ending within a few symbols, one at least IMAGE_DB weaker, is one reception."""
        by_message: dict[bytes, list[Frame]] = {}
        for frame in frames:
            by_message.setdefault(frame.message, []).append(frame)
        images = set()
        for copies in by_message.values():
            for a, b in itertools.combinations(copies, 2):
                if (a.channel != b.channel and a.level_db is not None and b.level_db is not None
                        and abs(a.time_offset - b.time_offset) < 4 / BAUD
                        and abs(a.level_db - b.level_db) >= self.IMAGE_DB):
                    images.add(id(a if a.level_db < b.level_db else b))
        self.images += len(images)
        return [f for f in frames if id(f) not in images]


class DiscriminatorReceiver:
    """Receiver for FM-discriminator audio (a VHF radio's discriminator tap): one channel per audio
    channel, named A, B in order (stereo = two radios, as gnuais and AIS-catcher -m 3 expect).

    Each audio channel is decoded as it is and, unless ``deemphasis=False``, also with a radio's
    de-emphasis undone (:class:`~demod.gmsk.PreEmphasis`): audio from a set's speaker or
    de-emphasised output decodes with the second, a flat discriminator tap with the first (each
    fails on the other's audio); the two share their record of frames, so a message is emitted
    once."""

    def __init__(self, rate: float, n_channels: int = 1, names=("A", "B"), *, deemphasis: bool = True):
        rate = check_rate(rate, audio=True)
        self.decoders = [ChannelDecoder(names[i], rate, input_is_frequency=True) for i in range(n_channels)]
        self.restored: list[tuple[gmsk.PreEmphasis, ChannelDecoder]] = []
        if deemphasis:
            for flat in self.decoders:
                decoder = ChannelDecoder(flat.name, rate, input_is_frequency=True, record=flat.record)
                self.restored.append((gmsk.PreEmphasis(rate), decoder))

    def process(self, block: np.ndarray) -> list[Frame]:
        """block: float array (samples,) or (samples, channels)."""
        block = block.reshape(len(block), -1)
        frames = []
        for i, decoder in enumerate(self.decoders):
            audio = block[:, i].astype(np.float32)
            frames.extend(decoder.push(audio))
            if self.restored:
                emphasis, restored = self.restored[i]
                frames.extend(restored.push(emphasis.process(audio)))
        return sorted(frames, key=lambda f: f.time_offset)

    def flush(self) -> list[Frame]:
        frames = []
        for decoder in self.decoders + [decoder for _, decoder in self.restored]:
            frames.extend(decoder.flush())
        return sorted(frames, key=lambda f: f.time_offset)
