"""``SlotCache``: a scheduled detector's slot summaries kept between its runs, so each run reads
only the slots after the previous one (``behavior.tracks`` reads them)."""
from __future__ import annotations

from aiswatch.behavior.tracks import Slot, TrackReader, align_down


class SlotCache:
    """Slot summaries kept between the runs of one ``detect schedule`` process.

    Each run needs [since - context, until); the previous run already read everything up to its
    own until, so only the slots from there on are asked for (the slot holding the previous end
    again, in case it was cut short). Slots older than the context are dropped. Any other window
    (the first run of a process, a window that does not continue the last one) is read whole.
    """

    def __init__(self) -> None:
        self.tracks: dict[str, list[Slot]] = {}
        self.start: int | None = None
        self.end: int | None = None

    def read(self, reader: TrackReader, read_from: int, until_ms: int) -> dict[str, list[Slot]]:
        slot_ms = reader.slot_ms
        continues = self.end is not None and self.start <= read_from <= self.end <= until_ms
        fetch_from = align_down(self.end, slot_ms) if continues else read_from
        if not continues:
            self.tracks = {}
        fresh = reader.slots(fetch_from, until_ms)
        for mmsi in list(self.tracks):
            kept = [s for s in self.tracks[mmsi] if read_from <= s.key < fetch_from]
            if kept:
                self.tracks[mmsi] = kept
            else:
                del self.tracks[mmsi]
        for mmsi, track in fresh.items():
            self.tracks.setdefault(mmsi, []).extend(track)
        self.start, self.end = read_from, until_ms
        return {m: list(t) for m, t in self.tracks.items()}
