"""Real AIS logs decoded by aiswatch and by gpsd's ``gpsdecode``, message by message.

    python bench/decode_real.py                    # gpsd's test/daemon/ais-*.log, libais's test/data/test.aivdm
    python bench/decode_real.py --logs a.nmea b.nmea --verbose

Needs ``gpsdecode`` (Debian: ``apt-get install gpsd-clients``). The logs are public test data of
two other projects and are never part of this repository: read from a ``fetch`` mirror of a
copy of gpsd's repository (github:ntpsec/gpsd has them) and of github:schwehr/libais when one is
found under ``--mirrors``, else downloaded from their repositories into ``--cache``.

Every message aiswatch reassembles from a log (``nmea.parse_line`` -> ``FragmentAssembler`` ->
``decoder.decode`` -> ``documents.build_document``) is also given to one ``gpsdecode --split24``
run, its sentences followed by a marker message, so each of gpsdecode's answers belongs to one
of ours. Per log and in total it prints:

- gpsdecode decodes: messages gpsdecode turns into JSON;
- agree: of those, messages we index with the same type, MMSI and position (to the unit sent), and
  the share of what gpsdecode decodes;
- we reject: messages gpsdecode decodes that we count as a rejection (with our reason);
- phantoms: messages we index that gpsdecode refuses (with gpsdecode's own log line for each);
- the reasons we counted, and the AIS messages gpsdecode makes of the whole file fed as it is
  (gpsd reassembles fragments on its own; the difference shows where the two assemble apart).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# bench/ holds a script named ingest.py; keep it from shadowing anything.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from pyais.encode import encode_dict  # noqa: E402

from aiswatch.ingest.assembler import FragmentAssembler  # noqa: E402
from aiswatch.ingest.counters import Counters  # noqa: E402
from aiswatch.ingest.decoder import decode  # noqa: E402
from aiswatch.ingest.documents import build_document  # noqa: E402
from aiswatch.ingest.lines import Line  # noqa: E402
from aiswatch.ingest.nmea import parse_line  # noqa: E402

# (mirror name, path in the repository, where to download it from)
GPSD_RAW = "https://gitlab.com/gpsd/gpsd/-/raw/master/"
LIBAIS_RAW = "https://raw.githubusercontent.com/schwehr/libais/master/"
GPSD_LOGS = ["test/daemon/ais-18-27.log", "test/daemon/ais-nmea-type6-fid55.log", "test/daemon/ais-nmea.log",
             "test/daemon/ais-raw-messages.log"]
LIBAIS_LOGS = ["test/data/test.aivdm"]
MARKER_MMSI = 1_000_000_000     # markers: type 1 with MMSI 1e9 + message number, outside any real one's range
# gpsdecode --unscaled gives positions as sent: 1/10000 minute, 1/10 minute for types 17 and 27
POSITION_UNITS = {17: 600.0, 27: 600.0}
# the types whose position is a field of the message itself (gpsdecode also shows positions it finds
# inside the application data of types 6 and 8, which pyais leaves as bits)
POSITION_TYPES = frozenset((1, 2, 3, 4, 9, 11, 17, 18, 19, 21, 27))


def _from_mirror(mirrors: Path, repo_glob: str, path: str) -> bytes | None:
    for git_dir in sorted(glob.glob(str(mirrors / repo_glob / "repo"))):
        done = subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], capture_output=True)
        if done.returncode == 0:
            return done.stdout
    return None


def real_logs(mirrors: Path, cache: Path) -> list[tuple[str, bytes]]:
    """(name, content) of the default logs: from a fetch mirror, else from the cache, else downloaded."""
    out = []
    for repo_glob, raw, paths in (("*+gpsd", GPSD_RAW, GPSD_LOGS), ("*+libais", LIBAIS_RAW, LIBAIS_LOGS)):
        project = repo_glob[2:]
        for path in paths:
            name = f"{project}:{path}"
            data = _from_mirror(mirrors, repo_glob, path)
            cached = cache / project / path
            if data is None and cached.exists():
                data = cached.read_bytes()
            if data is None:
                try:
                    with urllib.request.urlopen(raw + path, timeout=30) as reply:
                        data = reply.read()
                except OSError as exc:
                    print(f"skipped {name}: no mirror under {mirrors} and download failed ({exc})", file=sys.stderr)
                    continue
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_bytes(data)
            out.append((name, data))
    return out


@dataclass
class Ours:
    """One message as aiswatch's stages left it."""

    raws: list[str]
    fields: dict | None = None
    indexed: bool = False
    reason: str | None = None


@dataclass
class Tally:
    lines: int = 0
    messages: int = 0
    gpsd_decodes: int = 0
    agree: int = 0
    disagree: list = field(default_factory=list)
    we_reject: list = field(default_factory=list)
    phantoms: list = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)
    gpsd_whole_file: int = 0
    ours_indexed: int = 0

    def add(self, other: "Tally") -> None:
        for name in ("lines", "messages", "gpsd_decodes", "agree", "gpsd_whole_file", "ours_indexed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.disagree += other.disagree
        self.we_reject += other.we_reject
        self.phantoms += other.phantoms
        self.reasons.update(other.reasons)


def our_messages(text: str, source: str) -> tuple[list[Ours], Counters]:
    """Every message our assembler completes from ``text``, decoded (or with the reason it was refused)."""
    counters = Counters()
    assembler = FragmentAssembler(counters)
    out: list[Ours] = []
    for number, line in enumerate(text.splitlines()):
        sentence = parse_line(Line(line, 0.0, source, number), counters)
        if sentence is None:
            continue
        group = assembler.push(sentence)
        if group is None:
            continue
        before = {k: v for k, v in counters.snapshot().items() if k.startswith("rejected.")}
        fields = decode(group, counters)
        message = Ours(group.raws, fields)
        if fields is None:
            after = counters.snapshot()
            message.reason = next((k[len("rejected."):] for k, v in after.items()
                                   if k.startswith("rejected.") and v != before.get(k, 0)), "?")
        else:
            message.indexed = build_document(group, fields) is not None
        out.append(message)
    assembler.flush()
    return out, counters


def marker(k: int) -> str:
    return encode_dict({"type": 1, "mmsi": MARKER_MMSI + k, "lat": 89.0, "lon": 179.0}, radio_channel="A")[0]


def gpsdecode(lines: list[str], debug: bool = False) -> list[str]:
    args = ["gpsdecode", "--split24", "--unscaled"] + (["-D", "4"] if debug else [])
    done = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True)
    return (done.stderr if debug else done.stdout).splitlines()


def gpsd_per_message(messages: list[Ours]) -> list[dict | None]:
    """gpsdecode's JSON for each of our messages (None where it printed nothing)."""
    lines: list[str] = []
    for k, message in enumerate(messages):
        lines += message.raws
        lines.append(marker(k))
    answers: list[dict | None] = [None] * len(messages)
    pending = None
    for out in gpsdecode(lines):
        try:
            report = json.loads(out)
        except ValueError:
            continue
        if report.get("class") != "AIS":
            continue
        mmsi = report.get("mmsi", 0)
        if report.get("type") == 1 and MARKER_MMSI <= mmsi < MARKER_MMSI + len(messages):
            answers[mmsi - MARKER_MMSI] = pending
            pending = None
        else:
            pending = report
    return answers


def gpsd_complaint(message: Ours) -> str:
    """gpsdecode's own warning or error lines for one message."""
    said = [line.split(":", 2)[-1].strip() for line in gpsdecode(message.raws, debug=True)
            if ":WARN:" in line or ":ERROR:" in line]
    return "; ".join(said) or "(nothing logged)"


def _same_position(ours: dict, gpsd: dict) -> bool:
    """Our degrees against gpsdecode's raw units, to the unit (pyais rounds degrees to 6 decimals)."""
    if "lat" not in gpsd or "lon" not in gpsd or gpsd.get("type") not in POSITION_TYPES:
        return True
    lat, lon = ours.get("lat"), ours.get("lon")
    if lat is None or lon is None:
        return False
    per_degree = POSITION_UNITS.get(gpsd.get("type"), 600_000.0)
    return abs(lat * per_degree - gpsd["lat"]) <= 1.0 and abs(lon * per_degree - gpsd["lon"]) <= 1.0


def compare(name: str, data: bytes) -> Tally:
    text = data.decode("utf-8", "replace")
    messages, counters = our_messages(text, name)
    answers = gpsd_per_message(messages)
    tally = Tally(lines=sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#")),
                  messages=len(messages))
    tally.reasons.update({k[len("rejected."):]: int(v) for k, v in counters.snapshot().items()
                          if k.startswith("rejected.") and v})
    for message, gpsd in zip(messages, answers):
        tally.ours_indexed += message.indexed
        if gpsd is None:
            if message.indexed:
                tally.phantoms.append((name, message, gpsd_complaint(message)))
            continue
        tally.gpsd_decodes += 1
        if not message.indexed:
            tally.we_reject.append((name, message, gpsd))
            continue
        fields = message.fields or {}
        if (fields.get("msg_type"), fields.get("mmsi")) == (gpsd.get("type"), gpsd.get("mmsi")) \
                and _same_position(fields, gpsd):
            tally.agree += 1
        else:
            tally.disagree.append((name, message, gpsd))
    whole = gpsdecode([line for line in text.splitlines() if not line.startswith("#")])
    tally.gpsd_whole_file = sum(1 for out in whole if '"class":"AIS"' in out)
    return tally


def _message_text(message: Ours) -> str:
    fields = message.fields or {}
    what = f"type {fields.get('msg_type')} MMSI {fields.get('mmsi')}" if fields else f"({message.reason})"
    return f"{what}: {' '.join(message.raws)}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logs", nargs="*", help="NMEA log files (default: the gpsd and libais test logs)")
    p.add_argument("--mirrors", default="/work/.mirror", help="where fetch mirrors live")
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "aiswatch-bench", "real-logs"))
    p.add_argument("--verbose", action="store_true", help="list every disagreement")
    args = p.parse_args()
    if shutil.which("gpsdecode") is None:
        print("gpsdecode not found: apt-get install gpsd-clients", file=sys.stderr)
        return 2
    done = subprocess.run(["gpsdecode", "-V"], capture_output=True, text=True)
    version = (done.stdout + done.stderr).strip()
    if args.logs:
        logs = [(path, Path(path).read_bytes()) for path in args.logs]
    else:
        logs = real_logs(Path(args.mirrors), Path(args.cache))
    if not logs:
        print("no logs", file=sys.stderr)
        return 2

    total = Tally()
    print(f"# aiswatch against {version} (--split24 --unscaled), message by message\n")
    print("| log | lines | messages | gpsdecode decodes | agree (type, MMSI, position) | we reject | phantoms "
          "| we index | gpsdecode, whole file |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def row(label: str, t: Tally) -> None:
        share = f"{100.0 * t.agree / t.gpsd_decodes:.1f} %" if t.gpsd_decodes else "-"
        print(f"| {label} | {t.lines} | {t.messages} | {t.gpsd_decodes} | {t.agree} ({share}) | {len(t.we_reject)} "
              f"| {len(t.phantoms)} | {t.ours_indexed} | {t.gpsd_whole_file} |")

    for name, data in logs:
        tally = compare(name, data)
        row(name, tally)
        total.add(tally)
    row("**total**", total)
    print(f"\nphantoms: {len(total.phantoms)} ({100.0 * len(total.phantoms) / max(1, total.ours_indexed):.1f} % "
          f"of what we index); our rejections by reason: {dict(sorted(total.reasons.items()))}")
    limit = None if args.verbose else 10
    for title, items in (("phantoms (we index, gpsdecode refuses)", total.phantoms),
                         ("we reject, gpsdecode decodes", total.we_reject),
                         ("decoded differently", total.disagree)):
        if not items:
            continue
        print(f"\n{title}: {len(items)}")
        for name, message, other in items[:limit]:
            detail = other if isinstance(other, str) else json.dumps(
                {k: other.get(k) for k in ("type", "mmsi", "lat", "lon") if k in other})
            print(f"- {name}: {_message_text(message)}\n  gpsdecode: {detail}")
        if limit is not None and len(items) > limit:
            print(f"- ... {len(items) - limit} more (--verbose)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
