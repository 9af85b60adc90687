"""Benchmark of the software AIS receiver, side by side with AIS-catcher on the same recordings.

Recordings come from ``bench/burstgen.py``, a generator written from ITU-R M.1371 independently of
the receiver's own modulator, through a channel as rough as an RTL-SDR dongle (DC offset, I/Q
imbalance, 8-bit converter with the gain normal, too high and too low on thirds of each
recording, slow level changes within bursts, transmitter carrier and clock errors). Each point
is a cu8 file at 288 kS/s of 200 one-slot bursts (types 1/2/3/18), one every other slot on each
channel, A and B taking turns. Each file is decoded from the file by the whole ``aiswatch demod
FILE`` process and, when ``$AISCATCHER`` names an AIS-catcher build (from its public source,
built outside this repository), by ``AIS-catcher -r CU8 FILE -s 288000 -o 1`` (its default
model); a burst counts when its message comes out byte-exact, and a decoded message that was not
sent is a false frame. Without AIS-catcher the bench says so and prints our column alone.

Sections:
1. side by side over Eb/N0 (burst power over the noise in 9.6 kHz; 4.2 dB more than the SNR in
   a 25 kHz channel), an uncorrected dongle offset, and collisions (a share of the bursts with a
   second burst on the same channel starting 30-90 % into them, within +-10 dB); with the
   coherent bound for reference (every symbol right, p = Q(sqrt(2 alpha Eb/N0)), alpha
   computed from the GMSK pulse: no receiver that needs all symbols right can beat it, the soft
   repair can, by using the CRC as a code);
2. what each path of our receiver adds (in-process, same recordings);
3. FM-discriminator audio as a sound card records it (AC-coupled, band-limited, flat or
   de-emphasised), at 44.1 and 48 kHz: bursts decoded and the Eb/N0 where 50 % and 90 % decode;
4. real-time factor: signal seconds per CPU second (user + system) of the whole ``aiswatch demod
   FILE`` process, start-up included, pinned to one core, on 32 s recordings at 288 kS/s and
   1.536 MS/s (12 dB, the same burst density); ``--rtf-runs`` rounds taking turns, median, best
   and worst (a shared machine slows some runs: the best is the least disturbed).

    python bench/demod.py                                  # ~5 min
    AISCATCHER=/work/peers/AIS-catcher/build/AIS-catcher python bench/demod.py
    python bench/demod.py --bursts 50 --rtf-seconds 8 --rtf-runs 3 --no-audio   # quicker
"""
from __future__ import annotations

import os

# one core: the decode must not borrow BLAS threads (set before numpy is imported)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(1, HERE)

import burstgen  # noqa: E402
from aiswatch.demod import modulator  # noqa: E402  (the theory's pulse only)
from aiswatch.demod.decode import FrameDecoder  # noqa: E402

RATE = 288_000


# --- decoders as processes ----------------------------------------------------------------------

def dearmor(payload: str, fill: int) -> bytes:
    """NMEA 6-bit payload to message octets (written here, not taken from demod.nmea_out)."""
    bits = []
    for ch in payload:
        value = ord(ch) - 48
        value -= 8 if value > 40 else 0
        bits += [(value >> k) & 1 for k in range(5, -1, -1)]
    bits = bits[:len(bits) - fill]
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits) - len(bits) % 8, 8))


def messages_in(nmea: str) -> set[bytes]:
    """Every message in NMEA text (tag blocks ignored, multi-sentence messages joined)."""
    out, parts = set(), {}
    for line in nmea.splitlines():
        if "!" not in line:
            continue
        fields = line[line.index("!"):].split("*")[0].split(",")
        if len(fields) < 7 or not fields[1].isdigit() or not fields[2].isdigit():
            continue
        total, number = int(fields[1]), int(fields[2])
        key = (fields[3], fields[4])
        parts.setdefault(key, []).append(fields)
        if number == total:
            chain = parts.pop(key)[-total:]
            out.add(dearmor("".join(f[5] for f in chain), int(chain[-1][6] or 0)))
    return out


def pin_to_one_core():
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})


def run(command: list[str]) -> tuple[str, float]:
    """(standard output, CPU seconds user + system) of a command, pinned to one core."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, preexec_fn=pin_to_one_core)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}")
        out.seek(0)
        return out.read().decode("ascii", "replace"), usage.ru_utime + usage.ru_stime


AISWATCH: list[str] = []  # the command that runs aiswatch (--aiswatch; default: this checkout's)


def aiswatch_command() -> list[str]:
    if AISWATCH:
        return AISWATCH
    script = shutil.which("aiswatch", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-c", "from aiswatch.cli import main; main()"]


def ours(path: str, rate: float, fmt: str = "cu8") -> tuple[set[bytes], float]:
    text, cpu = run(aiswatch_command() + ["demod", path, "--format", fmt, "--no-tags"]
                    + (["--rate", str(int(rate))] if fmt != "disc" else []))
    return messages_in(text), cpu


def aiscatcher(binary: str, path: str, rate: float, fmt: str = "CU8",
               model: str | None = None) -> tuple[set[bytes], float]:
    text, cpu = run([binary, "-r", fmt, path, "-s", str(int(rate)), "-o", "1"] + (["-m", model] if model else []))
    return messages_in(text), cpu


# --- reference curve ----------------------------------------------------------------------------

def frame_symbols(message: bytes) -> int:
    """Symbols that must all be right for ``message``: the start flag, the stuffed data and FCS,
    the end flag and one NRZI reference symbol (frame_bits = 8 ramp + 24 training + 8 flag +
    stuffed + 8 flag + 8 ramp-down)."""
    return len(burstgen.frame_bits(message)) - 56 + 17


def gmsk_alpha(bt: float = modulator.BT, sps: int = 16, longest: int = 4) -> float:
    """d2min / (4 Eb) for GMSK with this BT at h = 0.5: the smallest energy of the difference
    between two unit-amplitude signals whose level sequences differ by a merging error event
    (differences of +-2 that sum to 0), over every event up to ``longest`` symbols and every
    pattern of the neighbouring levels. MSK gives 1, the BPSK distance; BT 0.4 gives 0.947."""
    taps = modulator.gaussian_pulse(bt, sps)
    pad = 8

    def phase(levels):
        return np.cumsum(np.convolve(np.repeat(levels, sps), taps, mode="same")) * (math.pi / 2 / sps)

    best = math.inf
    for n in range(2, longest + 1):
        for diff in itertools.product((-2, 0, 2), repeat=n):
            if diff[0] == 0 or diff[-1] == 0 or sum(diff) != 0:
                continue
            inner = [(1,) if d == 2 else (-1,) if d == -2 else (1, -1) for d in diff]
            for mid in itertools.product(*inner):
                for edge in itertools.product((1, -1), repeat=4):
                    a = np.array([edge[0]] * pad + [edge[1], *mid, edge[2]] + [edge[3]] * pad, dtype=float)
                    b = a.copy()
                    b[pad + 1:pad + 1 + n] -= diff
                    energy = float(np.sum(np.abs(np.exp(1j * phase(a)) - np.exp(1j * phase(b))) ** 2)) / sps
                    best = min(best, energy)
    return best / 4


def coherent_bound(ebn0_db: float, lengths: list[int], alpha: float) -> float:
    p = 0.5 * math.erfc(math.sqrt(alpha * 10 ** (ebn0_db / 10)))
    return float(np.mean([(1 - p) ** n for n in lengths]))


def crossing(points: list[tuple[float, float]], level: float) -> float | None:
    """Where a rising curve of (Eb/N0, share decoded) first reaches ``level`` (interpolated)."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if y0 < level <= y1:
            return x0 + (level - y0) / (y1 - y0) * (x1 - x0)
    return points[0][0] if points and points[0][1] >= level else None


# --- the sections -------------------------------------------------------------------------------

@dataclass
class Condition:
    name: str
    ebn0_db: float
    ppm: float = burstgen.ROUGH_DONGLE.ppm
    overlap: float = 0.0
    sweep: bool = False  # a point of the Eb/N0 curve


def conditions(args) -> list[Condition]:
    lo, hi, step = args.snr
    out = [Condition(f"Eb/N0 {snr:g} dB", float(snr), sweep=True) for snr in np.arange(lo, hi + step / 2, step)]
    for ppm in args.ppm:
        out.append(Condition(f"12 dB, {ppm:g} ppm dongle offset, uncorrected", 12.0, ppm=ppm))
    out.append(Condition(f"16 dB, {100 * args.overlap:.0f} % of bursts overlapping", 16.0, overlap=args.overlap))
    return out


def make_recording(path: str, cond: Condition, n_bursts: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    sent = burstgen.schedule(rng, n_bursts, cond.ebn0_db, overlap=cond.overlap)
    duration = max(t.start for t in sent) + 0.06
    burstgen.write_cu8(path, sent, RATE, duration, dongle=replace(burstgen.ROUGH_DONGLE, ppm=cond.ppm), seed=seed + 1)
    return [t.message for t in sent]


def side_by_side(args, out_dir: str, binary: str | None):
    alpha = gmsk_alpha()
    rows, kept = [], {}
    for k, cond in enumerate(conditions(args)):
        path = os.path.join(out_dir, f"ais_288k_{k:02d}.cu8")
        # the seed follows the condition, so a point is the same recording whatever the others are
        seed = (args.seed + int(round(10 * cond.ebn0_db)) + 1000 * int(round(cond.ppm))
                + 100_000 * int(100 * cond.overlap))
        sent = make_recording(path, cond, args.bursts, seed)
        got, _ = ours(path, RATE)
        row = {"cond": cond, "sent": len(sent), "ours": len(got & set(sent)), "ours_false": len(got - set(sent))}
        if binary:
            theirs, _ = aiscatcher(binary, path, RATE)
            row["theirs"], row["theirs_false"] = len(theirs & set(sent)), len(theirs - set(sent))
        if cond.sweep and not cond.overlap:
            row["bound"] = coherent_bound(cond.ebn0_db, [frame_symbols(m) for m in sent], alpha)
        rows.append(row)
        kept[cond.name] = (path, sent)
        print(f"  {cond.name}: aiswatch {row['ours']}/{len(sent)}"
              + (f", AIS-catcher {row['theirs']}/{len(sent)}" if binary else ""), file=sys.stderr, flush=True)
    print(f"Side by side, {args.bursts} one-slot bursts per recording (cu8, 288 kS/s, rough dongle); "
          f"the coherent bound needs every symbol right (alpha {alpha:.3f}):")
    print()
    if binary:
        print("| condition | aiswatch | AIS-catcher | ratio | coherent bound | false frames (ours / theirs) |")
        print("|---|---:|---:|---:|---:|---:|")
    else:
        print("(no AIS-catcher: set $AISCATCHER to an AIS-catcher binary for its column; ours alone)")
        print()
        print("| condition | aiswatch | coherent bound | false frames |")
        print("|---|---:|---:|---:|")
    for row in rows:
        bound = f"{row['bound'] * row['sent']:.0f}" if "bound" in row else ""
        ours_col = f"{row['ours']} / {row['sent']}"
        if binary:
            ratio = f"{row['ours'] / row['theirs']:.2f}" if row["theirs"] else "inf"
            print(f"| {row['cond'].name} | {ours_col} | {row['theirs']} / {row['sent']} | {ratio} | {bound} | "
                  f"{row['ours_false']} / {row['theirs_false']} |")
        else:
            print(f"| {row['cond'].name} | {ours_col} | {bound} | {row['ours_false']} |")
    return kept


VARIANTS = {
    "full receiver": {},
    "no soft repair": {"repair": False},
    "discriminator path": {"coherent": False},
    "discriminator, no repair": {"coherent": False, "repair": False},
}


def ablation(kept, args):
    print()
    print("What each path adds (messages decoded in-process from the same recordings):")
    print()
    print("| condition | " + " | ".join(VARIANTS) + " |")
    print("|---|" + "---:|" * len(VARIANTS))
    for name, (path, sent) in kept.items():
        if not name.startswith("Eb/N0") or float(name.split()[1]) > args.ablation_max:
            continue
        cells = []
        for options in VARIANTS.values():
            decoder = FrameDecoder.for_file(path, fmt="cu8", rate=RATE, start_time=0.0, **options)
            got = {frame.message for frame in decoder.frames_from()}
            cells.append(f"{len(got & set(sent))}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def audio_section(args, out_dir: str, binary: str | None):
    cards = {"AC-coupled, band-limited": burstgen.SoundCard(),
             "de-emphasised (750 us)": burstgen.SoundCard(deemphasis_us=750.0)}
    points = np.arange(args.audio_snr[0], args.audio_snr[1] + args.audio_snr[2] / 2, args.audio_snr[2])
    print()
    print(f"FM-discriminator audio ({args.audio_bursts} bursts per point, 16-bit mono WAV, the radio's IF filter "
          f"+-7.5 kHz, AC coupling 20 Hz, a 7 kHz audio low-pass), messages decoded:")
    print()
    header = "| audio | rate | " + " | ".join(f"{p:g} dB" for p in points) + " | 50 % at | 90 % at |"
    print(header)
    print("|---|---:|" + "---:|" * (len(points) + 2))
    summary = {}
    who = ("aiswatch", "AIS-catcher") if binary else ("aiswatch",)
    for (card_name, card), rate in itertools.product(cards.items(), (44_100, 48_000)):
        curves = {name: [] for name in who}
        for k, ebn0 in enumerate(points):
            rng = np.random.default_rng(args.seed + 7000 + k)
            sent = [burstgen.Transmission(burstgen.random_message(rng), "A",
                                          0.01 + i * 2 * burstgen.SLOT + float(rng.uniform(0, 0.002)), float(ebn0),
                                          cfo_hz=float(rng.uniform(-500, 500)), clock_ppm=float(rng.uniform(-20, 20)),
                                          phase=float(rng.uniform(0, 2 * math.pi)))
                    for i in range(args.audio_bursts)]
            messages = {t.message for t in sent}
            audio = burstgen.discriminator_audio(sent, rate, sent[-1].start + 0.05, card=card, seed=args.seed + k)
            path = os.path.join(out_dir, f"disc_{rate}.wav")
            burstgen.write_wav(path, audio, rate)
            results = {"aiswatch": ours(path, rate, fmt="disc")[0]}
            if binary:  # AIS-catcher's discriminator model reads raw 16-bit stereo: left = channel A
                raw = os.path.join(out_dir, f"disc_{rate}.cs16")
                np.stack([audio, np.zeros_like(audio)], axis=1).astype("<i2").tofile(raw)
                results["AIS-catcher"] = aiscatcher(binary, raw, rate, fmt="CS16", model="3")[0]
            for name, got in results.items():
                if got - messages:
                    print(f"  {name}: {len(got - messages)} false frames, {card_name}, {rate} Hz, {ebn0:g} dB",
                          file=sys.stderr)
                curves[name].append((float(ebn0), len(got & messages) / len(sent)))
        for name, curve in curves.items():
            half, most = crossing(curve, 0.5), crossing(curve, 0.9)
            summary[(card_name, rate, name)] = (half, most)
            cells = " | ".join(f"{100 * share:.0f} %" for _, share in curve)
            label = card_name if name == "aiswatch" else f"{card_name} (AIS-catcher -m 3)"
            print(f"| {label} | {rate / 1000:g} kHz | {cells} | {_db(half)} | {_db(most)} |", flush=True)
    print()
    for card_name in cards:
        a, b = summary[(card_name, 44_100, "aiswatch")], summary[(card_name, 48_000, "aiswatch")]
        diffs = [f"{abs(x - y):.2f} dB at {level}" for x, y, level in zip(a, b, ("50 %", "90 %"))
                 if x is not None and y is not None]
        print(f"aiswatch, {card_name}: 44.1 kHz vs 48 kHz differ by {', '.join(diffs) or 'n/a'}")


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} dB"


def real_time_factors(args, out_dir: str, binary: str | None):
    recordings = {}
    for rate in (288_000, 1_536_000):
        path = os.path.join(out_dir, f"rtf_{rate // 1000}k.cu8")
        rng = np.random.default_rng(args.seed + 77)
        sent = burstgen.schedule(rng, int(args.rtf_seconds / burstgen.SLOT) - 2, 12.0)
        burstgen.write_cu8(path, sent, rate, args.rtf_seconds, seed=args.seed + 78)
        recordings[rate] = (path, [t.message for t in sent])
    results = {(rate, who): [] for rate in recordings for who in ("aiswatch", "AIS-catcher")}
    decoded = {}
    load_before = load_average()
    for _ in range(args.rtf_runs):
        for rate, (path, sent) in recordings.items():
            got, cpu = ours(path, rate)
            results[(rate, "aiswatch")].append(args.rtf_seconds / cpu)
            decoded[(rate, "aiswatch")] = len(got & set(sent))
            if binary:
                got, cpu = aiscatcher(binary, path, rate)
                results[(rate, "AIS-catcher")].append(args.rtf_seconds / cpu)
                decoded[(rate, "AIS-catcher")] = len(got & set(sent))
    print()
    print(f"Real-time factor: signal seconds per CPU second (user + system) of the whole process, start-up "
          f"included, pinned to one core; {args.rtf_runs} runs per rate taking turns, {args.rtf_seconds:g} s "
          f"recordings at 12 dB, {len(recordings[288_000][1])} bursts (load average {load_before} before, "
          f"{load_average()} after):")
    print()
    print("| decoder | sample rate | median | best | worst | decoded |")
    print("|---|---:|---:|---:|---:|---:|")
    for (rate, who), runs in results.items():
        if not runs:
            continue
        name = f"{rate / 1e3:.0f} kS/s" if rate < 1e6 else f"{rate / 1e6:.3f} MS/s"
        print(f"| {who} | {name} | {statistics.median(runs):.1f}x | {max(runs):.1f}x | {min(runs):.1f}x "
              f"| {decoded[(rate, who)]}/{len(recordings[rate][1])} |")


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bursts", type=int, default=200, help="bursts per recording (default 200)")
    ap.add_argument("--snr", type=float, nargs=3, default=(6, 16, 1), metavar=("FROM", "TO", "STEP"),
                    help="Eb/N0 points in dB (default 6 16 1)")
    ap.add_argument("--ppm", type=float, nargs="*", default=[20.0, 40.0],
                    help="uncorrected dongle offsets at 12 dB (default 20 40)")
    ap.add_argument("--overlap", type=float, default=0.3, help="share of bursts in a collision at 16 dB (default 0.3)")
    ap.add_argument("--ablation-max", type=float, default=11.0, help="Eb/N0 up to which the paths are compared")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--no-audio", action="store_true")
    ap.add_argument("--audio-bursts", type=int, default=200)
    ap.add_argument("--audio-snr", type=float, nargs=3, default=(9, 15, 1), metavar=("FROM", "TO", "STEP"))
    ap.add_argument("--rtf-seconds", type=float, default=32.0, help="length of the real-time recordings (default 32)")
    ap.add_argument("--rtf-runs", type=int, default=5, help="decodes per rate and decoder (default 5)")
    ap.add_argument("--keep", help="directory to keep the recordings in (for other decoders)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--aiswatch", help="command that runs aiswatch, e.g. another version's (default: this checkout's)")
    args = ap.parse_args(argv)
    if args.aiswatch:
        import shlex

        AISWATCH[:] = shlex.split(args.aiswatch)
    binary = os.environ.get("AISCATCHER") or None
    if binary and not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        sys.exit(f"$AISCATCHER={binary} is not an executable file")
    out_dir = args.keep or tempfile.mkdtemp(prefix="aiswatch-demod-bench-")
    os.makedirs(out_dir, exist_ok=True)
    print(f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}, load average {load_average()} "
          f"({os.cpu_count()} CPUs); aiswatch: {' '.join(aiswatch_command())}; "
          f"AIS-catcher: {binary or 'not given ($AISCATCHER unset)'}")
    print()
    kept = side_by_side(args, out_dir, binary)
    if not args.no_ablation:
        ablation(kept, args)
    if not args.no_audio:
        audio_section(args, out_dir, binary)
    if args.rtf_runs > 0:
        real_time_factors(args, out_dir, binary)
    if not args.keep:
        shutil.rmtree(out_dir)


if __name__ == "__main__":
    main()
