"""Reassemble multi-sentence AIS messages from their fragments, with time-outs and bounded memory.

Why not pyais's own buffer: it keys fragments on (sequence id, channel) only, has no time-out and
no size limit. Here a message's fragments are tied together by
``(source, tag-block station, channel, sequence id, fragment count)``: two receivers (sources),
or two stations interleaved on one feed (Norway's public feed does this), may use the same
sequence id on the same channel at the same time.

Time. Where the lines carry a message time (tag block ``c:`` or a time prefix,
``Sentence.msg_time``), the message's whole second is part of its key: fragments join when their
times are at most one second apart (a message may straddle a second boundary) or when only some
of its lines carry the time, and a fragment is a copy of another only at the same time. So a
vessel's identical static message six minutes later under the same sequence id is a new message,
however fast a log is replayed, and a stray fragment of another time never disturbs a message
whose fragments it sits between. Lines without a time (live input from a plain receiver) fall
back to receive time: a copy is one that repeats a fragment within ``timeout_seconds`` of the
message's completion. Sequence ids cycle through 0-9, so two messages under one key within the
same second are told apart only by their content: a fragment whose slot already holds a
different payload starts a new message (the old one is dropped), and a stray fragment under the
key and second of a message, arriving between its lines, can take that message's place (a
receiver's counter gives the messages around any one other ids).

What can go wrong, and what happens (each case counted, both under its own counter and as a
``rejected.<reason>`` per sentence, so every sentence fed ends decoded or counted):

- fragments out of order: held until the group is complete, returned in fragment order;
- the same fragment twice: ``fragments_duplicate`` / ``fragment_duplicate``, the copy is dropped
  (also when it arrives after its message was completed, see above);
- a fragment never arrives: ``expire(now)`` drops groups whose first fragment was received more
  than ``timeout_seconds`` before ``now`` (receive time: how long we wait is a matter of the
  clock on the wall, whatever the message times), ``fragments_expired`` / ``fragment_expired``;
  ``flush()`` does the same for everything at end of input;
- a new message reuses the key of an incomplete one (its fragment slot is already taken by a
  different payload): the old group is dropped, ``fragments_dropped`` / ``fragment_dropped``;
- a flood of fragments that never complete: at most ``max_pending`` groups are held, the oldest
  is evicted (``fragments_dropped``), so memory stays flat whatever arrives; the memory of
  completed messages and of NMEA 4.10 group heads is bounded the same way.

The gauge ``fragments_pending`` holds the number of incomplete groups. Not thread-safe: one
assembler belongs to one processing thread.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import cast

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.nmea import RateLimitedLog, Sentence

log = logging.getLogger(__name__)
_log_reject = RateLimitedLog(log)


class SentenceGroup:
    """The sentences of one complete message, in fragment order, with what the later stages need."""

    __slots__ = ("sentences",)

    def __init__(self, sentences: tuple[Sentence, ...]) -> None:
        self.sentences = sentences

    def __len__(self) -> int:
        return len(self.sentences)

    def __repr__(self) -> str:
        return f"SentenceGroup({[s.raw for s in self.sentences]!r})"

    @property
    def first(self) -> Sentence:
        return self.sentences[0]

    @property
    def payload(self) -> str:
        """The message's 6-bit armoured payload: the fragments' payloads joined."""
        sentences = self.sentences
        if len(sentences) == 1:
            return sentences[0].payload
        return "".join(s.payload for s in sentences)

    @property
    def fill(self) -> int:
        """Fill bits of the whole payload (those of the last fragment)."""
        return self.sentences[-1].fill

    @property
    def raws(self) -> list[str]:
        return [s.raw for s in self.sentences]

    @property
    def msg_time(self) -> float | None:
        """Message time carried by the line(s) (tag block or prefix); in NMEA 4.10 groups often
        only the first line has it."""
        for s in self.sentences:
            if s.msg_time is not None:
                return s.msg_time
        return None

    @property
    def received_at(self) -> float:
        return self.sentences[0].received_at

    @property
    def source(self) -> str:
        return self.sentences[0].source

    @property
    def station(self) -> str | None:
        return self.sentences[0].station

    @property
    def channel(self) -> str:
        return self.sentences[0].channel

    @property
    def offset(self) -> int | None:
        return self.sentences[0].offset

    @property
    def formatter(self) -> str:
        return self.sentences[0].formatter


class _Pending:
    """An incomplete message: fragment slots, how many are filled, when the first arrived."""

    __slots__ = ("parts", "filled", "started")

    def __init__(self, total: int, started: float) -> None:
        self.parts: list[Sentence | None] = [None] * total
        self.filled = 0
        self.started = started


class FragmentAssembler:
    """Turn a stream of ``Sentence`` into complete ``SentenceGroup`` messages (see module doc).

    timeout_seconds: how long (receive time) an incomplete message waits for its other fragments,
        and how long a completed message without a message time is remembered to recognise copies.
    max_pending: the most incomplete messages held at once; beyond, the oldest is evicted. Also
        the most completed messages and NMEA 4.10 group heads remembered.
    """

    def __init__(self, counters: Counters, timeout_seconds: float = 10.0, max_pending: int = 10000) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.counters = counters
        self.timeout_seconds = float(timeout_seconds)
        self.max_pending = int(max_pending)
        # Keys: ((source, station, channel, sequence id, fragment count), whole second of the
        # message time or None). OrderedDict, not dict: evicting the oldest must stay O(1) under
        # a flood of deletions.
        self._pending: OrderedDict[tuple, _Pending] = OrderedDict()
        # Recently completed groups (key -> payloads, completion receive time), to recognise a
        # late copy of a fragment as a duplicate instead of starting a group that can only expire.
        self._completed: OrderedDict[tuple, tuple[tuple[str, ...], float]] = OrderedDict()
        # The second of the newest incomplete group with a message time per key without it, for
        # the lines of a message that carry no time of their own.
        self._timed_seconds: OrderedDict[tuple, int] = OrderedDict()
        # NMEA 4.10 tag-block groups: often only the first line carries s: and c:. Remember them
        # per (source, group id) so the later lines join the same key and get the same time.
        self._group_heads: OrderedDict[tuple, tuple[str | None, float | None]] = OrderedDict()
        self._published_pending = -1

    @property
    def pending(self) -> int:
        """Number of incomplete messages held."""
        return len(self._pending)

    def push(self, sentence: Sentence) -> SentenceGroup | None:
        """Add one fragment; return the complete message it finishes (or a single-sentence one)."""
        total = sentence.total
        if total == 1:
            return SentenceGroup((sentence,))
        if sentence.group is not None:
            self._inherit_group_head(sentence)

        msg_time = sentence.msg_time
        second = None if msg_time is None else int(msg_time)
        base = (sentence.source, sentence.station, sentence.channel, sentence.seq_id, total)
        key: tuple[tuple, int | None] = (base, second)
        index = sentence.number - 1
        pending = self._pending.get(key)
        if pending is None:
            # Not at its own second: a message whose fragments straddle a second boundary, or
            # whose later lines carry no time of their own (or only those do): join a group that
            # waits for this very fragment.
            near_keys: list[tuple[tuple, int | None]]
            if second is None:
                timed = self._timed_seconds.get(base)
                near_keys = [] if timed is None else [(base, timed)]
            else:
                near_keys = [(base, second - 1), (base, second + 1), (base, None)]
            for near_key in near_keys:
                near = self._pending.get(near_key)
                if near is None:
                    continue
                held = near.parts[index]
                if held is None:
                    key, pending = near_key, near
                    break
                if held.payload == sentence.payload and held.fill == sentence.fill:
                    self._count("duplicate", 1, sentence.raw)
                    return None
        if pending is not None and sentence.received_at - pending.started > self.timeout_seconds:
            self._discard(key, "expired")
            pending = None
        if pending is not None:
            held = pending.parts[index]
            if held is not None:
                if held.payload == sentence.payload and held.fill == sentence.fill:
                    self._count("duplicate", 1, sentence.raw)
                    return None
                # Same slot, different content: a new message reuses the key of an incomplete one.
                self._discard(key, "dropped")
                pending = None
        if pending is None:
            if self._is_late_duplicate(sentence, base, second):
                self._count("duplicate", 1, sentence.raw)
                return None
            key = (base, second)
            if len(self._pending) >= self.max_pending:
                oldest = next(iter(self._pending))
                self._discard(oldest, "dropped")
            pending = _Pending(total, sentence.received_at)
            self._pending[key] = pending
            if second is not None:
                self._remember(self._timed_seconds, base, second)

        pending.parts[index] = sentence
        pending.filled += 1
        if pending.filled < total:
            self._publish_pending()
            return None

        del self._pending[key]
        self._publish_pending()
        parts = cast("tuple[Sentence, ...]", tuple(pending.parts))  # all slots are filled
        self._remember(self._completed, key, (tuple(s.payload for s in parts), sentence.received_at))
        return SentenceGroup(parts)

    def expire(self, now: float) -> int:
        """Drop incomplete messages whose first fragment arrived more than ``timeout_seconds``
        before ``now`` (unix seconds, receive time). Returns the number of sentences dropped."""
        limit = now - self.timeout_seconds
        dropped = 0
        # Insertion order is arrival order of each group's first fragment, so stop at the first
        # group still in time.
        while self._pending:
            key, pending = next(iter(self._pending.items()))
            if pending.started >= limit:
                break
            dropped += self._discard(key, "expired")
        self._publish_pending()
        # Completed-group memory is only for recognising late copies; it expires the same way.
        while self._completed:
            key, (_, finished) = next(iter(self._completed.items()))
            if finished >= limit:
                break
            del self._completed[key]
        return dropped

    def flush(self) -> int:
        """End of input: drop (and count as expired) every incomplete message. Returns sentences dropped."""
        dropped = 0
        while self._pending:
            dropped += self._discard(next(iter(self._pending)), "expired")
        self._completed.clear()
        self._timed_seconds.clear()
        self._group_heads.clear()
        self._publish_pending()
        return dropped

    # -- internals -------------------------------------------------------------------------

    def _publish_pending(self) -> None:
        """Set the ``fragments_pending`` gauge when the number changed (a flood that evicts one
        group per new one leaves it alone)."""
        n = len(self._pending)
        if n != self._published_pending:
            self._published_pending = n
            self.counters.gauge("fragments_pending", n)

    def _count(self, what: str, n: int, detail: object) -> None:
        """``what`` is expired, dropped or duplicate: counter fragments_<what>, reason fragment_<what>."""
        self.counters.incr("fragments_" + what, n)
        self.counters.reject("fragment_" + what, n)
        _log_reject("fragment_" + what, detail)

    def _discard(self, key: tuple, what: str) -> int:
        pending = self._pending.pop(key)
        n = pending.filled
        self._count(what, n, key)
        return n

    def _is_late_duplicate(self, sentence: Sentence, base: tuple, second: int | None) -> bool:
        """Is this fragment a copy of one of a message completed before? With a message time: one
        completed under the same key at the same time (to the second either side); without: one
        completed under the same key within ``timeout_seconds`` of receive time."""
        index = sentence.number - 1
        completed = self._completed
        if second is None:
            done = completed.get((base, None))
            if done is None or sentence.received_at - done[1] > self.timeout_seconds:
                return False
            return done[0][index] == sentence.payload
        for near_second in (second, second - 1, second + 1):
            done = completed.get((base, near_second))
            if done is not None and done[0][index] == sentence.payload:
                return True
        return False

    def _remember(self, store: OrderedDict, key: tuple, value: object) -> None:
        """``store[key] = value`` as the newest entry, the oldest forgotten beyond ``max_pending``."""
        store.pop(key, None)
        store[key] = value
        if len(store) > self.max_pending:
            store.popitem(last=False)

    def _inherit_group_head(self, sentence: Sentence) -> None:
        part, _, rest = sentence.group.partition("-")  # type: ignore[union-attr]
        group_id = rest.partition("-")[2]
        head_key = (sentence.source, group_id)
        if part == "1":
            heads = self._group_heads
            heads.pop(head_key, None)
            heads[head_key] = (sentence.station, sentence.msg_time)
            if len(heads) > self.max_pending:
                heads.popitem(last=False)
        elif sentence.station is None:
            head = self._group_heads.get(head_key)
            if head is not None:
                sentence.station = head[0]
                if sentence.msg_time is None:
                    sentence.msg_time = head[1]
