"""FileSource: plain and gzip logs (by magic bytes), line numbers as offsets, pacing, progress, summary."""
import gzip
import threading
import time

import pytest

from ingest.counters import Counters
from ingest.sources import make_source
from ingest.sources.file import FileSource, line_time, tag_block_time

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
    from ingest.config import ConfigError
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
    with pytest.raises(ConfigError, match="host:port"):
        make_source({"type": "tcp", "address": "feed.example"}, counters)
    with pytest.raises(ValueError, match="unknown source type 'carrier-pigeon'"):
        make_source({"type": "carrier-pigeon"}, counters)
