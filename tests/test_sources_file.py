"""FileSource: plain and gzip logs (by magic bytes), line numbers as offsets, pacing, progress, summary;
damaged gzip files and over-long lines are counted, logged and survived."""
import gzip
import logging
import random
import threading
import time
import tracemalloc
import zlib

import pytest
from pyais.encode import encode_dict

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.pipeline import ListSink, Pipeline
from aiswatch.sources import make_source
from aiswatch.ingest.sources.file import FileSource, line_time, tag_block_time
from aiswatch.ingest.sources.framing import MAX_LINE_BYTES

LINES = [
    "!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C",
    "\\s:rx1,c:1700000000*5C\\!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5F",
    "1700000000.123 !AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C",
    "1700000000123;!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C",
    "2026-11-22T05:00:00Z !AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C",
    "2026-11-22 05:00:00.123,!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C",
]


def _write(path, lines, ending="\n", compress=False):
    data = "".join(l + ending for l in lines).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_plain_and_gzip_by_magic_not_suffix_pass_lines_through(tmp_path):
    plain = _write(tmp_path / "feed.gz", LINES, "\r\n")                  # plain text named .gz
    packed = _write(tmp_path / "feed.log", LINES, "\n", compress=True)    # gzip named .log
    counters = Counters()
    src = FileSource([plain, packed], counters=counters)
    got = list(src.lines())
    assert [l.text for l in got] == LINES + LINES
    assert [l.offset for l in got] == list(range(1, 7)) * 2
    assert [l.source for l in got] == ["file:feed.gz"] * 6 + ["file:feed.log"] * 6
    assert counters.get(f"source.{src.id}.lines") == 12
    summary = src.summary()
    assert summary["lines"] == 12 and summary["files"] == 2
    assert summary["bytes"] == sum(len(l) + 2 for l in LINES) + sum(len(l) + 1 for l in LINES)
    assert summary["elapsed"] >= 0


def test_replay_gives_the_same_offsets_and_skips_blank_lines(tmp_path):
    path = tmp_path / "gaps.nmea"
    path.write_bytes(b"!AIVDM,a*00\n\n!AIVDM,b*00\r!AIVDM,c*00\n\xff\xfe\n!AIVDM,d*00")
    counters = Counters()
    first = [(l.text, l.offset) for l in FileSource(path, counters=counters).lines()]
    second = [(l.text, l.offset) for l in FileSource(path).lines()]
    # offsets are line numbers as an editor shows them: the blank line 2 and the bad line 5 count
    assert first == second == [("!AIVDM,a*00", 1), ("!AIVDM,b*00", 3), ("!AIVDM,c*00", 4), ("!AIVDM,d*00", 6)]
    assert counters.get("rejected.not_utf8") == 1


def test_truncated_gzip_keeps_what_was_read_and_counts_the_error(tmp_path):
    data = gzip.compress("".join(f"!AIVDM,{i}*00\n" for i in range(5000)).encode())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    counters = Counters()
    src = FileSource(path, counters=counters)
    got = list(src.lines())
    assert 0 < len(got) < 5000
    assert [l.offset for l in got] == list(range(1, len(got) + 1))
    assert counters.get(f"source.{src.id}.read_errors") == 1


def _file_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aiswatch.ingest.sources.file" and r.levelno >= logging.ERROR]


def test_corrupt_gzip_body_is_one_error_line_not_a_crash(tmp_path, caplog):
    # A valid gzip header, then garbage: the first deflate block header has the reserved type 11,
    # which zlib refuses with zlib.error (not an OSError or EOFError).
    header = gzip.compress(b"")[:10]
    garbage = bytes([0x07]) + random.Random(5).randbytes(4000)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(header + garbage)
    with pytest.raises(zlib.error):          # what the file source has to catch
        gzip.decompress(header + garbage)
    good = _write(tmp_path / "good.nmea", LINES[:2])
    counters = Counters()
    src = FileSource([bad, good], counters=counters)
    got = list(src.lines())
    assert [l.text for l in got] == LINES[:2]             # the next file is still read
    assert counters.get(f"source.{src.id}.read_errors") == 1
    errors = _file_errors(caplog)
    assert len(errors) == 1 and "bad.gz: gzip data is corrupt after line 0" in errors[0], errors


def test_gzip_corrupted_midway_keeps_the_lines_before_the_damage(tmp_path, caplog):
    lines = [f"!AIVDM,1,1,,A,line{i:05d},0*00" for i in range(3000)]
    before = "".join(l + "\n" for l in lines[:2000]).encode()
    after = "".join(l + "\n" for l in lines[2000:]).encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)        # 31: gzip wrapping
    head = packer.compress(before) + packer.flush(zlib.Z_FULL_FLUSH)   # byte-aligned: the damage starts here
    tail = packer.compress(after) + packer.flush()
    damaged = head + bytes([0x07]) + tail[1:]               # the next block header overwritten
    path = tmp_path / "midway.nmea.gz"
    path.write_bytes(damaged)
    counters = Counters()
    sink = ListSink()
    Pipeline(sink, counters).run([FileSource(path, counters=counters)])   # as `aiswatch ingest file` runs it
    assert counters.get("sentences_in") == 2000
    assert counters.get("lines_in") == 2000
    assert counters.get("source.file:midway.nmea.gz.lines") == 2000
    assert counters.get("source.file:midway.nmea.gz.read_errors") == 1
    assert counters.get("source.file:midway.nmea.gz.failures") == 0      # no "source ... failed"
    errors = _file_errors(caplog)
    assert len(errors) == 1 and "gzip data is corrupt after line 2000" in errors[0], errors
    # and what was delivered is the lines before the damage, in order
    assert [l.text for l in FileSource(path).lines()] == lines[:2000]


@pytest.mark.parametrize("compress", [False, True])
def test_a_20_mb_line_is_rejected_once_in_bounded_memory(tmp_path, compress, caplog):
    first, last = (encode_dict({"type": 1, "mmsi": mmsi, "lat": 54.0, "lon": 10.0})[0] for mmsi in (211000001, 211000002))
    data = first.encode() + b"\r\n" + b"\x00A" * 10_000_000 + b"\r\n" + last.encode() + b"\r\n"
    path = tmp_path / ("huge.nmea.gz" if compress else "huge.nmea")
    path.write_bytes(gzip.compress(data) if compress else data)
    counters = Counters()
    sink = ListSink()
    tracemalloc.start()
    try:
        Pipeline(sink, counters).run([FileSource(path, counters=counters)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the line was read in pieces of 64 KiB: a fraction of its 20 MB was ever held
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert sorted(d["mmsi"] for d in sink.documents) == ["211000001", "211000002"]
    assert counters.get("rejected.line_too_long") == counters.get("rejected") == 1
    assert counters.get("lines_in") == 3 and counters.get("sentences_in") == 2
    assert counters.get(f"source.file:{path.name}.bytes") == len(data)
    assert "line 2 has 20000002 bytes without a line end" in caplog.text
    # the line after it keeps its editor line number
    assert [(l.text, l.offset) for l in FileSource(path).lines()] == [(first, 1), (last, 3)]


def test_lines_at_the_length_limit_and_bare_cr_files_longer_than_it(tmp_path):
    at_limit = "!" + "x" * (MAX_LINE_BYTES - 1)
    over = "!" + "y" * MAX_LINE_BYTES
    path = tmp_path / "edge.nmea"
    path.write_bytes(f"{at_limit}\r\n{over}\r\n{at_limit}\n{LINES[0]}\n".encode())
    counters = Counters()
    got = [(l.text, l.offset) for l in FileSource(path, counters=counters).lines()]
    assert got == [(at_limit, 1), (at_limit, 3), (LINES[0], 4)]
    assert counters.get("rejected.line_too_long") == 1

    # A bare-CR log (one "line" of 2 MB to readline) gives every line, none rejected.
    lines = [f"!AIVDM,1,1,,A,cr{i:06d},0*00" for i in range(70_000)]
    path = tmp_path / "cr.nmea"
    path.write_bytes("".join(l + "\r" for l in lines).encode())
    counters = Counters()
    got = list(FileSource(path, counters=counters).lines())
    assert [l.text for l in got] == lines
    assert [l.offset for l in got] == list(range(1, len(lines) + 1))
    assert counters.get("rejected") == 0


def test_message_time_of_a_line():
    assert line_time(LINES[0]) is None
    assert line_time(LINES[1]) == 1700000000
    assert line_time(LINES[2]) == pytest.approx(1700000000.123)
    assert line_time(LINES[3]) == pytest.approx(1700000000.123)
    assert tag_block_time("\\c:1700000000500,s:x*00\\!AIVDM") == 1700000000.5   # milliseconds
    assert tag_block_time("\\s:x*00\\!AIVDM") is None
    assert tag_block_time("\\c:soon*00\\!AIVDM") is None
    assert tag_block_time("\\c:1700000000") is None                           # unterminated


def test_realtime_sleeps_by_message_time_differences(tmp_path):
    path = _write(tmp_path / "timed.nmea", [
        "1700000000.0 !AIVDM,a*00",
        "!AIVDM,untimed*00",                                  # goes at once
        "\\c:1700000000*00\\!AIVDM,b*00",                    # same second: at once
        "1700000000.4 !AIVDM,c*00",
        "1700000000.6 !AIVDM,d*00",
        "1699999000 !AIVDM,e*00",                             # backwards: restart the clock, no wait
    ])
    src = FileSource(path, rate="realtime")
    start = time.monotonic()
    stamps = [(l.text, time.monotonic() - start) for l in src.lines()]
    assert [text[-4:] for text, _ in stamps] == ["a*00", "d*00", "b*00", "c*00", "d*00", "e*00"]
    times = [t for _, t in stamps]
    assert times[2] < 0.15
    assert 0.38 <= times[3] < 0.6
    assert 0.58 <= times[4] < 0.8
    assert times[5] - times[4] < 0.15


def test_max_rate_does_not_sleep(tmp_path):
    path = _write(tmp_path / "t.nmea", [f"{1700000000 + 3600 * i} !AIVDM,x*00" for i in range(50)])
    start = time.monotonic()
    assert len(list(FileSource(path).lines())) == 50
    assert time.monotonic() - start < 1.0


def test_close_interrupts_a_realtime_wait(tmp_path):
    path = _write(tmp_path / "slow.nmea", ["1700000000 !AIVDM,a*00", "1700003600 !AIVDM,b*00"])
    src = FileSource(path, rate="realtime")
    threading.Timer(0.3, src.close).start()
    start = time.monotonic()
    assert [l.text for l in src.lines()] == ["1700000000 !AIVDM,a*00"]
    assert time.monotonic() - start < 1.5


def test_progress_bar_on_stderr(tmp_path, capsys):
    path = _write(tmp_path / "p.nmea.gz", [f"!AIVDM,{i}*00" for i in range(2000)], compress=True)
    assert len(list(FileSource(path, progress=True).lines())) == 2000
    err = capsys.readouterr().err
    assert "file:p.nmea.gz" in err and "100%" in err


def test_clear_errors_for_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="NMEA log not found"):
        FileSource(tmp_path / "missing.nmea")
    with pytest.raises(ValueError, match="rate must be one of"):
        FileSource(_write(tmp_path / "x", ["!AIVDM"]), rate="fast")
    with pytest.raises(ValueError, match="at least one file"):
        FileSource([])


def test_make_source_builds_each_type(tmp_path, monkeypatch):
    from aiswatch.config import ConfigError
    counters = Counters()
    log = _write(tmp_path / "m.nmea", LINES[:2])
    src = make_source({"type": "file", "paths": [str(log)], "rate": "max"}, counters)
    assert [l.offset for l in src.lines()] == [1, 2]
    udp = make_source({"type": "udp", "host": "127.0.0.1", "port": 0}, counters)
    udp.close()
    tcp = make_source({"type": "tcp", "address": "[::1]:10111"}, counters)
    assert (tcp.host, tcp.port) == ("::1", 10111)
    monkeypatch.delenv("AISSTREAM_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="API key"):
        make_source({"type": "aisstream", "bboxes": [[[0, 0], [1, 1]]]}, counters)
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        make_source({"type": "tcp", "address": "feed.example"}, counters)
    with pytest.raises(ValueError, match="unknown source type 'carrier-pigeon'"):
        make_source({"type": "carrier-pigeon"}, counters)
