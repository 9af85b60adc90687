"""Property tests: whatever lines arrive, nothing escapes and every line is accounted for.

Every line fed ends either in a decoded message (``sentences_decoded``) or counted under a
rejection reason: after ``finish()``, ``sentences_in == rejected + sentences_decoded``, the
number of documents equals ``messages_decoded``, and every document fits the ais-* mapping.
Whatever bytes a log file holds, the same holds one level up, where the file source rejects
lines itself (not UTF-8, too long): ``lines_in == sentences_in + source rejections`` and
``lines_in == rejected + sentences_decoded``, reason by reason.
"""
from __future__ import annotations

import gzip
import random
import re
import tempfile
from functools import reduce
from operator import xor
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyais.encode import encode_dict

from aiswatch import es_templates
from aiswatch.ingest import geohash
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.nmea import parse_line
from aiswatch.ingest.pipeline import ListSink, Pipeline
from aiswatch.ingest.sources.file import FileSource
from aiswatch.ingest.sources.framing import MAX_LINE_BYTES

T0 = 1_790_000_000.0
MAPPED = set(es_templates.load("ais")["template"]["mappings"]["properties"])
# derandomize: the same examples on every run, so the suite is deterministic (explore more by
# running with a different --hypothesis-seed and derandomize off).
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def checksum(body: str) -> str:
    return f"{reduce(xor, body.encode('utf-8', 'surrogatepass'), 0):02X}"


def _pool() -> list[list[str]]:
    """Valid messages (each a list of lines) of many types, some with tag blocks."""
    rng = random.Random(11)
    pool = []
    for i in range(60):
        mmsi = rng.randint(1, 999_999_999)
        choice = i % 6
        if choice == 0:
            data = {"type": rng.choice((1, 2, 3)), "mmsi": mmsi, "lat": rng.uniform(-90, 90), "lon": rng.uniform(-180, 180),
                    "speed": rng.choice((0, 12.3, 102.3)), "heading": rng.choice((0, 359, 511)),
                    "status": rng.randint(0, 15), "turn": rng.choice((-128, 0, 30, 127))}
        elif choice == 1:
            data = {"type": 18, "mmsi": mmsi, "lat": rng.choice((91, 45.5)), "lon": rng.choice((181, -3.2))}
        elif choice == 2:
            data = {"type": 5, "mmsi": mmsi, "shipname": "SHIP@@" + str(i), "ship_type": rng.randint(0, 99),
                    "month": rng.randint(0, 12), "day": rng.randint(0, 31), "destination": "PORT"}
        elif choice == 3:
            data = {"type": 24, "mmsi": mmsi, "partno": rng.randint(0, 1), "shipname": "B", "callsign": "C"}
        elif choice == 4:
            data = {"type": rng.choice((4, 9, 19, 21, 27)), "mmsi": mmsi, "lat": 10.0, "lon": 20.0}
        else:
            data = {"type": rng.choice((6, 8, 12, 14)), "mmsi": mmsi, "dest_mmsi": 1, "text": "HELLO"}
        lines = encode_dict(data, talker_id=rng.choice(("AI", "AB", "BS")), radio_channel=rng.choice("AB"),
                            seq_id=rng.randint(0, 9))
        if i % 3 == 0:
            body = f"s:rx{i % 4},c:{int(T0) + i}"
            lines = [f"\\{body}*{checksum(body)}\\{text}" for text in lines]
        pool.append(lines)
    return pool


POOL = _pool()
MULTI = [m for m in POOL if len(m) > 1]
MAX_PENDING = 8


def message_key(message: list[str]) -> tuple[tuple, tuple[str, ...]]:
    """The assembler's key of a message from one source (with the whole second of its message
    time, None without one), and its payloads."""
    sentences = [parse_line(Line(text, T0, "src"), Counters()) for text in message]
    first = sentences[0]
    second = None if first.msg_time is None else int(first.msg_time)
    return (first.station, first.channel, first.seq_id, first.total, second), tuple(s.payload for s in sentences)


MULTI_KEYS = {message_key(m)[0] for m in MULTI}
assert len(MULTI_KEYS) < len(MULTI) and len(MULTI_KEYS) <= MAX_PENDING   # keys are reused, none forgotten
ARMOUR = "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVW`abcdefghijklmnopqrstuvw"   # the 6-bit payload alphabet
assert MULTI


@st.composite
def mutated(draw, text: str) -> str:
    """One mutation of a valid line."""
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "checksum", "field", "tag", "prefix"]))
    if kind == "flip":
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + draw(st.characters()) + text[i + 1:]
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text) - 1))]
    if kind == "insert":
        i = draw(st.integers(0, len(text)))
        return text[:i] + draw(st.text(min_size=1, max_size=5)) + text[i:]
    if kind == "delete":
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + text[i + 1:]
    if kind == "checksum":
        return text[:-2] + draw(st.sampled_from(["00", "FF", "G1", "", "*", "7"]))
    if kind == "field":
        # a syntactically fine sentence (correct checksum) with one field replaced
        start = text.rfind("!")
        body = text[start + 1:text.rfind("*")].split(",")
        i = draw(st.integers(1, len(body) - 1))
        body[i] = draw(st.sampled_from(["", "0", "10", "x", "6", "-1", "Z", "1" * 300, "@@@"]))
        new = ",".join(body)
        return f"{text[:start]}!{new}*{checksum(new)}"
    if kind == "tag":
        block = draw(st.sampled_from(["s:rx,c:1790000000*00", "c:99999999999999999", "g:1-2-3", "c:nan",
                                      "s:a", "", "c:1790000000"]))
        return f"\\{block}\\{text}"
    return draw(st.sampled_from(["1790000000 ", "2026-09-21T12:00:00Z,", "99 ", "2026-13-45 12:00:00 "])) + text


@st.composite
def traffic(draw) -> list[str]:
    """A stream mixing valid messages, fragments out of order / missing / duplicated, mutated
    lines and noise."""
    out: list[str] = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["valid", "valid", "fragments", "mutated", "noise", "nmea_noise",
                                     "random_message"]))
        if kind == "valid":
            out.extend(draw(st.sampled_from(POOL)))
        elif kind == "fragments":
            parts = list(draw(st.sampled_from(MULTI)))
            parts = draw(st.permutations(parts))
            if draw(st.booleans()):
                parts = parts[:-1]                                # one missing
            if parts and draw(st.booleans()):
                parts = parts + [parts[0]]                        # one duplicated
            out.extend(parts)
        elif kind == "mutated":
            out.append(draw(mutated(draw(st.sampled_from(POOL))[0])))
        elif kind == "noise":
            out.append(draw(st.text(max_size=120)))
        elif kind == "random_message":
            # well-formed sentences around random bits: any type (unknown ones too), any length,
            # so decoding fails in every way pyais can fail, in groups of 1-3 sentences
            payload = draw(st.text(alphabet=ARMOUR, min_size=1, max_size=150))
            total = draw(st.integers(1, 3))
            size = -(-len(payload) // total)
            parts = [payload[i:i + size] for i in range(0, len(payload), size)]
            seq = draw(st.integers(0, 9))
            for number, part in enumerate(parts, 1):
                fill = draw(st.integers(0, 5)) if number == len(parts) else 0
                body = f"AIVDM,{len(parts)},{number},{seq},A,{part},{fill}"
                out.append(f"!{body}*{checksum(body)}")
        else:
            payload = draw(st.text(alphabet=ARMOUR, min_size=0, max_size=90))
            total = draw(st.integers(0, 10))
            body = (f"{draw(st.sampled_from(['AIVDM', 'BSVDO', 'GPGGA', 'AIVDX']))},{total},"
                    f"{draw(st.integers(0, 10))},{draw(st.sampled_from(['', '0', '9', 'x']))},"
                    f"{draw(st.sampled_from(['A', 'B', '1', '', 'Q']))},{payload},{draw(st.integers(0, 6))}")
            out.append(f"!{body}*{checksum(body)}")
    return out


def run(lines: list[str], sources: tuple[str, ...] = ("src",), step: float = 0.5):
    counters = Counters()
    sink = ListSink()
    pipeline = Pipeline(sink, counters, timeout_seconds=10.0, max_pending=MAX_PENDING)
    pipeline.feed_many(Line(text, T0 + i * step, sources[i % len(sources)], i) for i, text in enumerate(lines))
    pipeline.finish()
    return counters, sink.documents


def check_accounting(lines: list[str], counters: Counters, docs: list[dict]) -> None:
    snapshot = counters.snapshot()
    reasons = sum(v for k, v in snapshot.items() if k.startswith("rejected."))
    assert snapshot.get("sentences_in", 0) == len(lines)
    assert snapshot.get("lines_in", 0) == len(lines)        # lines fed straight in: no source rejected any
    assert snapshot.get("rejected", 0) == reasons
    assert snapshot.get("sentences_in", 0) == snapshot.get("rejected", 0) + snapshot.get("sentences_decoded", 0), snapshot
    assert snapshot.get("messages_decoded", 0) == len(docs)
    assert snapshot.get("fragments_pending", 0) == 0
    for doc in docs:
        assert set(doc) - {"_id", "_ts"} <= MAPPED
        assert None not in doc.values()
        assert isinstance(doc["_ts"], int) and len(doc["_id"]) == 32


@SETTINGS
@given(st.lists(st.text(max_size=200), max_size=30))
def test_random_strings_never_crash_and_are_all_rejected(lines):
    counters, docs = run(lines)
    check_accounting(lines, counters, docs)
    assert not docs
    assert counters.get("rejected") == len(lines) and counters.get("sentences_decoded") == 0


@SETTINGS
@given(traffic(), st.integers(1, 3), st.sampled_from([0.01, 0.5, 7.0]))
def test_mixed_and_mutated_traffic_is_fully_accounted_for(lines, n_sources, step):
    sources = tuple(f"src{i}" for i in range(n_sources))
    counters, docs = run(lines, sources, step)
    check_accounting(lines, counters, docs)


@SETTINGS
@given(st.lists(st.sampled_from(POOL) | st.sampled_from(MULTI), max_size=40))   # copies and reused keys often
def test_valid_messages_in_order_are_all_decoded(messages):
    lines = [text for message in messages for text in message]
    counters, docs = run(lines, step=0.001)
    check_accounting(lines, counters, docs)
    # Valid lines are refused only as copies of a multi-sentence message completed moments
    # before (well within the time-out) under the same key (station, channel, sequence id,
    # fragment count, second of the message time if the lines have one) when no other message
    # has completed under that key since; single sentences are never copies. (The pool's message
    # times are three seconds apart, so the one-second tolerance plays no part.) (The pool's multi-sentence messages share fewer keys than the
    # assembler remembers, MULTI_KEYS <= MAX_PENDING, so none is forgotten in between.)
    last_completed: dict[tuple, tuple[str, ...]] = {}
    expected_docs = copies = 0
    for message in messages:
        key, payloads = message_key(message)
        if len(message) == 1:
            expected_docs += 1
        elif last_completed.get(key) == payloads:
            copies += len(message)
        else:
            expected_docs += 1
            last_completed[key] = payloads
    assert len(docs) == expected_docs
    assert counters.get("rejected") == counters.get("rejected.fragment_duplicate") == copies


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.floats(-90, 90), st.floats(-180, 180), st.integers(1, 12))
def test_geohash_matches_bisection(lat, lon, precision):
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    code = 0
    for i in range(5 * precision):
        if i % 2 == 0:
            mid = (lon_lo + lon_hi) / 2
            bit = lon >= mid
            lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            bit = lat >= mid
            lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
        code = code << 1 | bit
    expected = "".join(geohash.BASE32[(code >> (5 * (precision - 1 - i))) & 31] for i in range(precision))
    assert geohash.encode(lat, lon, precision) == expected


# --- raw bytes in a real file, through FileSource and the pipeline ---------------------------------

SOURCE_REASONS = ("line_too_long", "not_utf8")       # the file source's own rejections
LINE_ENDS = [b"\n", b"\r\n", b"\r", b"", b"\n\n", b"\r\r\n", b"\n\r"]
# Sizes around the line-length limit, where a read of limit + 1 bytes ends in the middle of a
# CRLF, just before or after a CR, ...
HUGE = [MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 2, 2 * MAX_LINE_BYTES + 3, 300_000]


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """One byte-level mutation of a valid line: any byte (invalid UTF-8, NUL, CR) anywhere."""
    kind = draw(st.sampled_from(["flip", "insert", "truncate", "utf8"]))
    i = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    if kind == "insert":
        return data[:i] + draw(st.binary(min_size=1, max_size=4)) + data[i:]
    if kind == "truncate":
        return data[:i]
    return data[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x00", b"\xc3\xa9"])) + data[i:]


@st.composite
def log_bytes(draw) -> bytes:
    """A log file's bytes: valid messages, mutated ones, binary noise and huge lines, any line ends."""
    out = []
    for _ in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["valid", "valid", "mutated", "noise", "huge"]))
        if kind == "valid":
            pieces = [text.encode() for text in draw(st.sampled_from(POOL))]
        elif kind == "mutated":
            pieces = [draw(mutated_bytes(draw(st.sampled_from(POOL))[0].encode()))]
        elif kind == "noise":
            pieces = [draw(st.binary(max_size=120))]
        else:
            fill = draw(st.sampled_from([b"A", b"\x00", b"\xff", b"!AIVDM,"]))
            size = draw(st.sampled_from(HUGE))
            piece = (fill * (size // len(fill) + 1))[:size]
            if draw(st.booleans()):        # a valid sentence at the end of a huge line
                piece = piece[:-80] + draw(st.sampled_from(POOL))[0].encode()[:80]
            pieces = [piece]
        out.extend(piece + draw(st.sampled_from(LINE_ENDS)) for piece in pieces)
    return b"".join(out)


def expected_source_split(data: bytes) -> tuple[list[str], dict[str, int]]:
    """What the file source must make of ``data``, independently of how it reads: lines end at CR,
    LF or CRLF; empty ones carry nothing; a line over MAX_LINE_BYTES is rejected as line_too_long,
    one that is not UTF-8 as not_utf8; the rest goes to the parser as text."""
    texts, rejected = [], dict.fromkeys(SOURCE_REASONS, 0)
    for raw in re.split(rb"[\r\n]", data):
        if not raw:
            continue
        if len(raw) > MAX_LINE_BYTES:
            rejected["line_too_long"] += 1
            continue
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            rejected["not_utf8"] += 1
    return texts, rejected


def reasons(snapshot: dict) -> dict[str, int]:
    return {k[len("rejected."):]: v for k, v in snapshot.items() if k.startswith("rejected.") and v}


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(log_bytes(), st.sampled_from(["plain", "gzip", "gzip members"]), st.data())
def test_any_bytes_in_a_log_file_are_fully_accounted_for(data, form, draw):
    texts, source_rejected = expected_source_split(data)
    if form == "gzip members":     # concatenated gzip members (``cat a.gz b.gz``), cut anywhere
        cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=3)))
        stored = b"".join(gzip.compress(data[a:b]) for a, b in zip([0] + cuts, cuts + [len(data)]))
    else:
        stored = gzip.compress(data) if form == "gzip" else data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.log"
        path.write_bytes(stored)
        # the lines the source hands on are exactly the expected ones
        assert [line.text for line in FileSource(path).lines()] == texts
        counters = Counters()
        sink = ListSink()
        Pipeline(sink, counters, timeout_seconds=10.0, max_pending=MAX_PENDING).run([FileSource(path, counters=counters)])
    snap = counters.snapshot()
    by_reason = reasons(snap)

    # what the source rejected, reason by reason
    assert {r: by_reason.get(r, 0) for r in SOURCE_REASONS} == source_rejected
    # the rest reached the parser; there every line ended decoded or rejected, reason by reason
    # exactly as when the same lines are fed to the pipeline directly
    direct, direct_docs = run(texts, step=0.0)
    assert snap.get("sentences_in", 0) == len(texts)
    assert {r: n for r, n in by_reason.items() if r not in SOURCE_REASONS} == reasons(direct.snapshot())
    assert snap.get("sentences_decoded", 0) == direct.get("sentences_decoded")
    assert len(sink.documents) == len(direct_docs) == snap.get("messages_decoded", 0)

    # the identities, exactly
    n_source = sum(source_rejected.values())
    assert snap.get("lines_in", 0) == snap.get("sentences_in", 0) + n_source == len(texts) + n_source
    assert snap.get("sentences_in", 0) == (snap.get("sentences_decoded", 0)
                                           + sum(n for r, n in by_reason.items() if r not in SOURCE_REASONS))
    assert snap.get("rejected", 0) == sum(by_reason.values())
    assert snap.get("lines_in", 0) == snap.get("sentences_decoded", 0) + snap.get("rejected", 0)
    assert snap.get("source.file:raw.log.read_errors", 0) == 0
