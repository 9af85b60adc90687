"""The traffic simulator: vessels (spec + track) -> time-ordered NMEA messages.

Each vessel has two timers in one heap: its next position report and its next static report.
Report intervals follow ITU-R M.1371 (see docs/NOTES): class A under way every 10 s (0-14 kn),
6 s (14-23 kn) or 2 s (> 23 kn), at anchor or moored (status 1/5, <= 3 kn) every 3 min; class B
every 30 s, every 3 min when at <= 2 kn; static data (type 5 for class A, type 24 A+B for class
B) every 6 min. Times are whole seconds (the tag block ``c:`` carries whole seconds); each
vessel starts at a random phase so the fleet does not report in lock-step. A vessel whose track
is silent is asked again a report interval later, so it reappears promptly when the silence ends.

Sequence ids: one counter 0-9 for the station's multi-sentence messages, as a receiver numbers
the VDM sentences it outputs (NMEA 0183's sequential message identifier; messages lost in
reception are never numbered, so ``loss`` shifts the ids of the later ones). Ids are reused all the
time, and a vessel's identical static message comes back under the same id whenever the number
of multi-sentence messages between two of its broadcasts is a multiple of ten (with 40 class A
vessels in range: every time), often on the same channel too.

Optional extras: shore base stations (type 4, UTC time + surveyed position, every 10 s), a
reception ``loss`` fraction (messages sent but not received, as on a busy real channel) and
``static_jitter_s``: each static message sent up to that many seconds either side of its 6-minute
schedule, as transponders pick a free slot for it, so the vessels' static messages, and the ids
the receiver gives them, do not come round in the same order every time.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator, NamedTuple, Sequence

from pyais.encode import encode_dict

from aiswatch.ingest.simulation.encoding import position_payload, sentences, single_sentence, static_payloads, tag_block
from aiswatch.ingest.simulation.tracks import AT_ANCHOR, MOORED, Track, TrackState
from aiswatch.ingest.simulation.vessels import VesselSpec

STATIC_INTERVAL_S = 360
_POSITION, _STATIC, _BASE = 0, 1, 2


def report_interval(cls: str, s: TrackState) -> int:
    """Seconds until the next position report of a class A/B vessel in state ``s`` (ITU-R M.1371)."""
    sog = s.sog or 0.0
    if cls == "B":
        return 180 if sog <= 2.0 else 30
    if s.nav_status in (AT_ANCHOR, MOORED) and sog <= 3.0:
        return 180
    if sog > 23.0:
        return 2
    if sog > 14.0:
        return 6
    return 10


@dataclass(frozen=True)
class BaseStation:
    """A shore AIS base station: type 4 reports (UTC time, surveyed position) every ``interval_s``.

    Base station MMSIs have the form 00MIDxxxx, e.g. 2442001 (Netherlands) = "002442001".
    """

    mmsi: int
    lat: float
    lon: float
    interval_s: int = 10

    def lines_at(self, t: int, channel: str) -> list[str]:
        utc = datetime.fromtimestamp(t, tz=timezone.utc)
        data = dict(type=4, mmsi=self.mmsi, year=utc.year, month=utc.month, day=utc.day, hour=utc.hour,
                    minute=utc.minute, second=utc.second, accuracy=1, lon=self.lon, lat=self.lat, epfd=7)
        return encode_dict(data, talker_id="AI", sentence_type="VDM", radio_channel=channel)


class SimMessage(NamedTuple):
    """One simulated AIS message: its time, its NMEA lines, who sent it and (for positions) the true state."""

    time: float
    lines: list[str]
    mmsi: int
    msg_type: int
    vessel: int  # index into Simulator.vessels; len(vessels) + k for base_stations[k]
    state: TrackState | None  # the kinematics as reported (None for static messages)


class _Vessel:
    __slots__ = ("spec", "track", "channel", "statics", "rng", "mmsi", "cls", "no_heading", "static_due")

    def __init__(self, spec: VesselSpec, track: Track, rng: random.Random):
        self.spec, self.track, self.rng = spec, track, rng
        self.mmsi, self.cls = spec.mmsi, spec.cls
        self.no_heading = not spec.reports_heading
        self.channel = rng.choice("AB")
        self.statics = static_payloads(spec) if spec.send_static else []
        self.static_due = 0  # the 6-minute schedule of its static messages, before any jitter

    def next_channel(self) -> str:
        # transponders alternate between the two AIS channels
        self.channel = "B" if self.channel == "A" else "A"
        return self.channel


class Simulator:
    """Simulated AIS traffic from a list of (VesselSpec, Track).

    start: unix seconds of the first possible message. seed: report phases, channels and the
    occasional type 3 instead of type 1. station: the tag block ``s:`` value.
    ``messages(duration_s)`` yields (time, lines) in time order; ``events(duration_s)`` yields
    SimMessage with the ground truth too. Each call starts afresh (same seed -> same output).
    base_stations: shore stations sending type 4. loss: fraction of messages (0..1) randomly not
    received, deterministic by seed, drawn independently so the rest of the traffic is unchanged.
    group_tags: also tag every fragment of a multi-sentence message with NMEA 4.10 ``g:part-total-id``
    (id 1..999 rotating), as some shore networks do. static_jitter_s: static messages leave up to
    this many whole seconds before or after their 6-minute schedule (drawn independently, so the
    rest of the traffic is unchanged; 0: exactly on it).
    """

    def __init__(self, vessels: Sequence[tuple[VesselSpec, Track]], start: float, seed: int = 0,
                 station: str = "sim", base_stations: Sequence[BaseStation] = (), loss: float = 0.0,
                 group_tags: bool = False, static_jitter_s: int = 0):
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss must be a fraction in [0, 1), not {loss!r}")
        if not 0 <= static_jitter_s < STATIC_INTERVAL_S // 2:
            raise ValueError(f"static_jitter_s must be 0 to {STATIC_INTERVAL_S // 2 - 1} s, not {static_jitter_s!r}")
        if "," in station or "*" in station or "\\" in station:
            raise ValueError(f"station {station!r} may not contain ',', '*' or '\\\\' (tag block syntax)")
        mmsis = [spec.mmsi for spec, _ in vessels]
        self.vessels = list(vessels)
        self.start = math.ceil(start)  # whole seconds: the tag block c: carries whole seconds
        self.seed = seed
        self.station = station
        self.base_stations = list(base_stations)
        self.loss = loss
        self.group_tags = group_tags
        self.static_jitter_s = int(static_jitter_s)
        # two vessels sharing an MMSI is allowed (a planted identity clash); recorded for summaries
        self.duplicate_mmsis = sorted(m for m, n in Counter(mmsis).items() if n > 1)

    def messages(self, duration_s: float) -> Iterator[tuple[float, list[str]]]:
        """(message time, NMEA lines) for every message in [start, start + duration_s), in time order."""
        for m in self.events(duration_s):
            yield m.time, m.lines

    def events(self, duration_s: float) -> Iterator[SimMessage]:
        """Like ``messages`` but with the sender and the true state of each message."""
        rng = random.Random(self.seed)
        start, end = self.start, self.start + duration_s
        vessels = [_Vessel(spec, track, random.Random(rng.getrandbits(64))) for spec, track in self.vessels]
        heap: list[tuple[int, int, int]] = []  # (time, vessel index, kind): unique, so ties sort deterministically
        for i, v in enumerate(vessels):
            s = v.track.state(start)
            first = report_interval(v.cls, s) if s is not None else (10 if v.cls == "A" else 30)
            heap.append((start + v.rng.randrange(first), i, _POSITION))
            if v.statics:
                v.static_due = start + v.rng.randrange(STATIC_INTERVAL_S)
                heap.append((v.static_due, i, _STATIC))
        n_vessels = len(vessels)
        for k, b in enumerate(self.base_stations):
            heap.append((start + rng.randrange(b.interval_s), n_vessels + k, _BASE))
        heapq.heapify(heap)
        lost = random.Random(rng.getrandbits(64)).random if self.loss else None
        jitter_s = self.static_jitter_s
        jitter = random.Random(rng.getrandbits(64)).randint if jitter_s else None
        loss = self.loss
        base_channel = "A"
        station = self.station
        seq_id = 0
        group_id = 0
        tag_t, tag = None, ""
        while heap:
            t, i, kind = heap[0]
            if t >= end:
                return
            if kind == _BASE:
                b = self.base_stations[i - n_vessels]
                heapq.heapreplace(heap, (t + b.interval_s, i, kind))
                base_channel = "B" if base_channel == "A" else "A"
                if lost and lost() < loss:
                    continue
                if t != tag_t:
                    tag_t, tag = t, tag_block(station, t)
                yield SimMessage(float(t), [tag + line for line in b.lines_at(t, base_channel)], b.mmsi, 4, i, None)
                continue
            v = vessels[i]
            s = v.track.state(t)
            if kind == _POSITION:
                if s is None:
                    heapq.heapreplace(heap, (t + (10 if v.cls == "A" else 30), i, kind))
                    continue
                heapq.heapreplace(heap, (t + report_interval(v.cls, s), i, kind))
                if t != tag_t:
                    tag_t, tag = t, tag_block(station, t)
                if v.cls == "A":
                    msg_type = 3 if v.rng.random() < 0.1 else 1
                else:
                    msg_type = 18
                channel = v.next_channel()
                if lost and lost() < loss:
                    continue
                if v.no_heading and s.heading is not None:
                    s = dataclasses.replace(s, heading=None)
                payload, pxor = position_payload(msg_type, v.mmsi, s, t % 60)
                yield SimMessage(float(t), [tag + single_sentence(payload, pxor, channel)], v.mmsi,
                                 msg_type, i, s)
            else:
                v.static_due += STATIC_INTERVAL_S
                heapq.heapreplace(heap, (v.static_due + (jitter(-jitter_s, jitter_s) if jitter else 0), i, kind))
                if s is None:
                    continue  # transponder off: no static either
                if t != tag_t:
                    tag_t, tag = t, tag_block(station, t)
                for msg_type, payload, fill in v.statics:
                    channel = v.next_channel()
                    if lost and lost() < loss:
                        continue    # never received: the receiver's counters do not move
                    parts = sentences(payload, fill, channel, seq_id)
                    if len(parts) > 1:
                        seq_id = (seq_id + 1) % 10
                    if self.group_tags and len(parts) > 1:
                        group_id = group_id % 999 + 1
                        lines = [tag_block(station, t, f"{k}-{len(parts)}-{group_id}") + p
                                 for k, p in enumerate(parts, start=1)]
                    else:
                        lines = [tag + p for p in parts]
                    yield SimMessage(float(t), lines, v.mmsi, msg_type, i, None)
