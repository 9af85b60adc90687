"""ingest.assembler: out-of-order, missing, interleaved and duplicated fragments; bounded memory."""
from __future__ import annotations

import gc
import time
from functools import reduce
from operator import xor

import psutil
import pyais
from pyais.encode import encode_dict

from aiswatch.ingest.assembler import FragmentAssembler, SentenceGroup
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.decoder import decode
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import Sentence, parse_line

T0 = 1_790_000_000.0


def tag(body: str) -> str:
    return f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\"


def static_lines(mmsi: int, name: str, seq_id: int = 1, channel: str = "A") -> list[str]:
    """A type 5 message: two sentences."""
    lines = encode_dict({"type": 5, "mmsi": mmsi, "shipname": name, "callsign": "PA" + str(mmsi)[-4:],
                         "destination": "ROTTERDAM", "ship_type": 70, "to_bow": 100, "to_stern": 20},
                        talker_id="AI", radio_channel=channel, seq_id=seq_id)
    assert len(lines) == 2
    return lines


class Feed:
    """Parse lines and push them through one assembler, collecting the complete groups."""

    def __init__(self, **kwargs) -> None:
        self.counters = Counters()
        self.assembler = FragmentAssembler(self.counters, **kwargs)
        self.groups: list[SentenceGroup] = []

    def push(self, text: str, at: float = T0, source: str = "src") -> SentenceGroup | None:
        sentence = parse_line(Line(text, at, source), self.counters)
        assert sentence is not None, text
        group = self.assembler.push(sentence)
        if group is not None:
            self.groups.append(group)
        return group

    def names(self) -> list[str]:
        return [decode(g, self.counters)["shipname"] for g in self.groups]

    def count(self, name: str) -> float:
        return self.counters.get(name)


def test_single_sentence_passes_straight_through():
    feed = Feed()
    group = feed.push("!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0*26")
    assert group is not None and len(group) == 1
    assert feed.assembler.pending == 0


def test_in_order_and_out_of_order_fragments():
    first, second = static_lines(244000001, "IN ORDER")
    feed = Feed()
    assert feed.push(first) is None
    assert feed.assembler.pending == 1 and feed.count("fragments_pending") == 1
    group = feed.push(second)
    assert group is not None and group.raws == [first, second]
    assert feed.count("fragments_pending") == 0

    first, second = static_lines(244000002, "REVERSED", seq_id=2)
    assert feed.push(second) is None
    group = feed.push(first)
    assert group.raws == [first, second]          # fragment order, not arrival order
    assert group.payload == group.sentences[0].payload + group.sentences[1].payload
    assert group.fill == group.sentences[1].fill
    assert feed.names() == ["IN ORDER", "REVERSED"]
    # what pyais makes of the same lines
    assert pyais.decode(first, second).shipname == "REVERSED"


def test_interleaved_sources_with_the_same_sequence_id():
    a1, a2 = static_lines(244000003, "FROM SOURCE A", seq_id=5)
    b1, b2 = static_lines(244000004, "FROM SOURCE B", seq_id=5)
    feed = Feed()
    feed.push(a1, source="udp:a")
    feed.push(b1, source="udp:b")
    feed.push(b2, source="udp:b")
    feed.push(a2, source="udp:a")
    assert feed.names() == ["FROM SOURCE B", "FROM SOURCE A"]
    assert feed.count("rejected") == 0


def test_interleaved_stations_on_one_feed():
    """Norway's feed: two stations, same sequence id, same channel, one source."""
    a1, a2 = static_lines(257000001, "HEARD AT ONE", seq_id=7)
    b1, b2 = static_lines(257000002, "HEARD AT TWO", seq_id=7)
    feed = Feed()
    for station, text in (("st1", a1), ("st2", b1), ("st1", a2), ("st2", b2)):
        feed.push(tag(f"s:{station},c:1790000000") + text)
    assert feed.names() == ["HEARD AT ONE", "HEARD AT TWO"]
    assert [g.station for g in feed.groups] == ["st1", "st2"]
    assert feed.count("rejected") == 0


def test_nmea_410_group_where_only_the_first_line_has_station_and_time():
    one, two = static_lines(257000003, "TAG GROUP", seq_id=4)
    feed = Feed()
    feed.push(tag("g:1-2-1234,s:rx9,c:1790000300") + one)
    feed.push(tag("g:2-2-1234") + two)
    assert feed.names() == ["TAG GROUP"]
    group = feed.groups[0]
    assert group.station == "rx9" and group.msg_time == 1790000300.0


def test_duplicate_fragments_are_counted_and_dropped():
    first, second = static_lines(244000005, "DUPLICATED")
    feed = Feed()
    feed.push(first)
    feed.push(first)                      # the same fragment again before the message completes
    feed.push(second)
    feed.push(second, at=T0 + 1)          # ... and a late copy after it completed
    assert feed.names() == ["DUPLICATED"]
    assert feed.count("fragments_duplicate") == 2
    assert feed.count("rejected.fragment_duplicate") == 2
    assert feed.assembler.pending == 0


def test_missing_fragment_expires_after_the_timeout():
    first, _ = static_lines(244000006, "NEVER COMPLETE")
    feed = Feed(timeout_seconds=10)
    feed.push(first, at=T0)
    assert feed.assembler.expire(T0 + 5) == 0 and feed.assembler.pending == 1
    assert feed.assembler.expire(T0 + 11) == 1
    assert feed.assembler.pending == 0
    assert feed.count("fragments_expired") == 1 and feed.count("rejected.fragment_expired") == 1
    assert feed.count("fragments_pending") == 0


def test_stale_group_is_expired_when_its_key_comes_back():
    """Without a call to expire(), an old half message must not swallow a new one's fragment."""
    old_first, _ = static_lines(244000007, "OLD", seq_id=3)
    new_first, new_second = static_lines(244000008, "NEW", seq_id=3)
    feed = Feed(timeout_seconds=10)
    feed.push(old_first, at=T0)
    feed.push(new_second, at=T0 + 60)
    feed.push(new_first, at=T0 + 60)
    assert feed.names() == ["NEW"]
    assert feed.count("fragments_expired") == 1


def test_new_message_reusing_an_incomplete_key_drops_the_old_one():
    old_first, _ = static_lines(244000009, "ABANDONED", seq_id=6)
    new_first, new_second = static_lines(244000010, "REPLACEMENT", seq_id=6)
    feed = Feed()
    feed.push(old_first)
    feed.push(new_first)
    feed.push(new_second)
    assert feed.names() == ["REPLACEMENT"]
    assert feed.count("fragments_dropped") == 1 and feed.count("rejected.fragment_dropped") == 1


def test_max_pending_evicts_the_oldest():
    feed = Feed(max_pending=3)
    firsts = [static_lines(244000100 + i, f"SHIP {i}", seq_id=i)[0] for i in range(5)]
    for text in firsts:
        feed.push(text)
    assert feed.assembler.pending == 3
    assert feed.count("fragments_dropped") == 2
    # the survivors are the newest three: completing ship 4 works, ship 0 was evicted
    feed.push(static_lines(244000104, "SHIP 4", seq_id=4)[1])
    feed.push(static_lines(244000100, "SHIP 0", seq_id=0)[1])
    assert feed.names() == ["SHIP 4"]
    assert feed.assembler.pending == 3       # ship 0's second half now waits alone


def test_flush_drops_everything_pending():
    feed = Feed()
    for i in range(4):
        feed.push(static_lines(244000200 + i, "HALF", seq_id=i)[0])
    assert feed.assembler.flush() == 4
    assert feed.assembler.pending == 0
    assert feed.count("fragments_expired") == 4 and feed.count("fragments_pending") == 0


def test_a_million_unfinished_fragments_keep_memory_flat():
    counters = Counters()
    assembler = FragmentAssembler(counters, timeout_seconds=10.0, max_pending=10_000)
    payload = "55NBsv02>tq4<7@C:20d4i@Dp4l4pB2222222216A8H?:6wN0J1HUQ4TkpRT31H88880"
    process = psutil.Process()
    push = assembler.push
    total = 1_000_000
    checkpoint = 100_000
    gc.collect()
    started = time.perf_counter()
    for i in range(total):
        # every fragment starts its own message (first of two) and none is ever finished
        push(Sentence("", "AI", "VDM", 2, 1, i % 10, "A", payload, 0, None, None, None,
                      f"src{i // 10}", T0 + i * 1e-6, None))
        if i == checkpoint:
            gc.collect()
            rss_at_checkpoint = process.memory_info().rss
            assert assembler.pending == 10_000
    gc.collect()
    growth = process.memory_info().rss - rss_at_checkpoint
    elapsed = time.perf_counter() - started
    assert assembler.pending == 10_000
    assert counters.get("fragments_dropped") == total - 10_000
    assert counters.get("rejected.fragment_dropped") == total - 10_000
    assert counters.get("fragments_pending") == 10_000
    # 900k more fragments held would be hundreds of MB; flat means a few MB of noise at most
    assert growth < 16 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"
    print(f"1M unfinished fragments in {elapsed:.1f} s, RSS growth after 100k: {growth / 1e6:.1f} MB")


def test_a_flood_of_tagged_group_heads_and_completed_messages_keeps_memory_flat():
    """Through parse_line, as a feed sends them: NMEA 4.10 ``g:`` groups whose first line is never
    followed (each one a group head to remember and an incomplete message), and every fourth one
    completed by a second line that has no ``s:`` and takes its station from the head. The
    pending, group-head and completed-message stores all stay at max_pending."""
    max_pending = 2_000
    counters = Counters()
    assembler = FragmentAssembler(counters, timeout_seconds=10.0, max_pending=max_pending)
    first, second = static_lines(244000300, "FLOOD")
    process = psutil.Process()
    total, checkpoint = 100_000, 25_000
    completed = stations_ok = 0
    gc.collect()
    for i in range(total):
        # a new source every line: every message has its own key, nothing ever repeats
        source, at = f"feed{i}", T0 + i * 1e-5
        head = parse_line(Line(tag(f"g:1-2-{i},s:rx{i % 7},c:{int(T0) + i}") + first, at, source), counters)
        assert head is not None and head.group == f"1-2-{i}"
        assert assembler.push(head) is None
        if i % 4 == 0:
            tail = parse_line(Line(tag(f"g:2-2-{i}") + second, at, source), counters)
            group = assembler.push(tail)
            assert group is not None, i
            completed += 1
            stations_ok += group.station == f"rx{i % 7}" and group.msg_time == int(T0) + i
        if i == checkpoint:
            gc.collect()
            rss_at_checkpoint = process.memory_info().rss
        if i % 10_000 == 0:
            assert assembler.pending <= max_pending
            assert len(assembler._group_heads) <= max_pending    # the stores a flood could grow
            assert len(assembler._completed) <= max_pending
            assert len(assembler._timed_seconds) <= max_pending
    gc.collect()
    growth = process.memory_info().rss - rss_at_checkpoint
    unfinished = total - completed
    assert completed == stations_ok == total // 4
    assert assembler.pending == counters.get("fragments_pending") == max_pending
    assert len(assembler._group_heads) == len(assembler._completed) == max_pending
    assert counters.get("fragments_dropped") == counters.get("rejected.fragment_dropped") == unfinished - max_pending
    assert counters.get("sentences_in") == total + completed
    assert counters.get("rejected") == unfinished - max_pending     # nothing else refused
    assert growth < 16 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB"


# --- message time: reassembly and copies by the time the lines carry -----------------------------

def timed(lines: list[str], at: int, station: str = "rx1") -> list[str]:
    return [tag(f"s:{station},c:{at}") + text for text in lines]


def test_identical_static_message_later_under_the_same_key_is_a_new_message():
    """A vessel's type 5 repeats unchanged every six minutes; the receiver's sequence id counter
    may give it the same id again. In a replay at full speed the receive times are all but equal:
    the message times tell the two broadcasts apart, and only a real copy (same time) is dropped."""
    lines = static_lines(244000400, "EVERY SIX MINUTES", seq_id=3)
    feed = Feed()
    for k, text in enumerate(timed(lines, 1790000000) + timed(lines, 1790000360) + timed(lines, 1790003600)):
        feed.push(text, at=T0 + k * 1e-4)
    feed.push(timed(lines, 1790000360)[1], at=T0 + 0.01)     # a copy of a fragment: same time
    feed.push(timed(lines, 1790000360)[0], at=T0 + 0.01)
    assert feed.names() == ["EVERY SIX MINUTES"] * 3
    assert [g.msg_time for g in feed.groups] == [1790000000, 1790000360, 1790003600]
    assert feed.count("fragments_duplicate") == feed.count("rejected") == 2


def test_untimed_lines_keep_receive_time_for_copies():
    """Without message times, the same fragments again within the time-out are copies; later
    they are a new message."""
    lines = static_lines(244000401, "LIVE WITHOUT TIMES", seq_id=2)
    feed = Feed(timeout_seconds=10)
    for at in (T0, T0 + 5, T0 + 60):
        for text in lines:
            feed.push(text, at=at)
    assert feed.names() == ["LIVE WITHOUT TIMES"] * 2
    assert feed.count("fragments_duplicate") == 2


def test_fragments_one_second_apart_still_join():
    """Each line stamped as received: a message may straddle a second boundary, in either order."""
    first, second = static_lines(244000402, "ACROSS A SECOND", seq_id=1)
    feed = Feed()
    feed.push(tag("c:1790000000") + first)
    feed.push(tag("c:1790000001") + second)
    feed.push("1790000101.003 " + second)          # time prefixes, arriving out of order
    feed.push("1790000100.998 " + first)
    assert feed.names() == ["ACROSS A SECOND"] * 2
    assert [g.msg_time for g in feed.groups] == [1790000000, 1790000100.998]
    # two seconds apart is another message: both halves wait, and expire
    feed.push(tag("c:1790000200") + first)
    feed.push(tag("c:1790000202") + second)
    assert feed.assembler.pending == 2 and len(feed.groups) == 2
    assert feed.assembler.flush() == 2 and feed.count("fragments_expired") == 2


def test_stray_fragments_between_the_fragments_of_a_message():
    """Orphan fragments (their other half was lost) and copies of fragments from elsewhere in the
    log, all of other times, between the two lines of a message: it still completes."""
    lines = static_lines(244000403, "BETWEEN STRAYS", seq_id=4)
    other = static_lines(244000404, "ELSEWHERE", seq_id=4)
    feed = Feed()
    feed.push(timed(lines, 1790007200)[0])
    feed.push(timed(other, 1790003600)[0])          # same key, an hour earlier, never completed
    feed.push(timed(other, 1790010800)[1])          # same key, an hour later, never completed
    feed.push(timed(lines, 1790000000)[1])          # a copy of this very fragment, two hours earlier
    feed.push(timed(lines, 1790007200)[1])
    assert feed.names() == ["BETWEEN STRAYS"]
    assert feed.count("rejected") == 0 and feed.assembler.pending == 3
    assert feed.assembler.flush() == 3 and feed.count("rejected.fragment_expired") == 3


def test_same_key_in_the_same_second_the_newer_message_wins():
    """Under one key and one second, only content separates two messages: a first fragment with a
    different payload in an occupied slot starts a new message (the abandoned one is counted)."""
    old = static_lines(244000405, "ABANDONED", seq_id=5)
    new = static_lines(244000406, "COMPLETE", seq_id=5)
    feed = Feed()
    feed.push(timed(old, 1790000000)[0])
    for text in timed(new, 1790000000):
        feed.push(text)
    assert feed.names() == ["COMPLETE"]
    assert feed.count("fragments_dropped") == 1


def test_timed_group_still_expires_in_receive_time():
    first, _ = static_lines(244000407, "WAITS TOO LONG", seq_id=6)
    feed = Feed(timeout_seconds=10)
    feed.push(timed([first], 1790000000)[0], at=T0)
    assert feed.assembler.expire(T0 + 9) == 0
    assert feed.assembler.expire(T0 + 11) == 1 and feed.count("fragments_expired") == 1


def test_a_time_on_some_lines_of_a_message_only():
    """Loggers that stamp only the first line of a message (or only a later one), without NMEA
    4.10 groups: the lines still make one message, with the time they carry."""
    first, second = static_lines(244000408, "STAMPED ONCE", seq_id=7)
    feed = Feed()
    feed.push(tag("c:1790000000") + first)
    feed.push(second)
    feed.push(first)
    feed.push("1790000100 " + second)
    assert feed.names() == ["STAMPED ONCE"] * 2
    assert [g.msg_time for g in feed.groups] == [1790000000, 1790000100]
    assert feed.count("rejected") == 0

