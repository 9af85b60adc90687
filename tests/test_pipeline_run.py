"""Pipeline.run: sources in their own threads, lines (or lists of lines) through one bounded queue."""
from __future__ import annotations

import threading
import time

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.lines import Line
from aiswatch.ingest.pipeline import ListSink, Pipeline, _LineQueue
from aiswatch.ingest.sources.file import BATCH_LINES, FileSource

SENTENCES = [
    "!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5F",
    "\\s:rx1,c:1700000000*01\\!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5F",
    "!AIVDM,2,1,3,B,55P5TL01VIaAL@7WKO@mBplU@<PDhh000000001S;AJ::4A80?4i@E53,0*3E",
    "!AIVDM,2,2,3,B,1@0000000000000,2*55",
    "garbage",
]


class LinesOnly:
    """A source with lines() only: handed over one line at a time."""

    def __init__(self, lines, source_id="test:lines"):
        self.id = source_id
        self._lines = lines

    def lines(self):
        for i, text in enumerate(self._lines):
            yield Line(text, 1_700_000_000.0, self.id, i)

    def close(self):
        pass


def run(sources):
    sink = ListSink()
    counters = Counters()
    Pipeline(sink, counters).run(sources)
    return sink.documents, counters


def test_a_file_in_batches_gives_what_feeding_it_line_by_line_gives(tmp_path):
    lines = SENTENCES * (BATCH_LINES // 2)   # several lists, the last one partial
    path = tmp_path / "feed.nmea"
    path.write_text("\n".join(lines) + "\n")
    batched, counters = run([FileSource(path)])

    sink = ListSink()
    expected_counters = Counters()
    pipeline = Pipeline(sink, expected_counters)
    for line in FileSource(path).lines():
        pipeline.feed(line)
    pipeline.finish()
    assert len(batched) > BATCH_LINES
    assert [d["_id"] for d in batched] == [d["_id"] for d in sink.documents]
    assert counters.get("sentences_in") == len(lines)
    assert counters.get("rejected.not_nmea") == BATCH_LINES // 2
    got, want = counters.snapshot(), expected_counters.snapshot()
    assert {k: v for k, v in got.items() if not k.startswith("source.")} == want


def test_line_sources_and_batch_sources_run_together(tmp_path):
    path = tmp_path / "feed.nmea"
    path.write_text("\n".join(SENTENCES) + "\n")
    docs, counters = run([FileSource(path), LinesOnly(SENTENCES)])
    assert len(docs) == 6 and counters.get("sentences_in") == 2 * len(SENTENCES)
    assert counters.get("messages_decoded") == 6


def test_realtime_files_hand_over_one_line_at_a_time(tmp_path):
    path = tmp_path / "feed.nmea"
    path.write_text("\n".join(SENTENCES) + "\n")
    assert [len(b) for b in FileSource(path, rate="realtime").line_batches()] == [1] * len(SENTENCES)
    assert [len(b) for b in FileSource(path).line_batches()] == [len(SENTENCES)]


def test_the_queue_bound_counts_lines_not_lists():
    q = _LineQueue(maxsize=10)
    q.put(["a"] * 6)
    assert q.qsize() == 6 and not q.full()
    q.put("one line")
    q.put(["b"] * 3)
    assert q.qsize() == 10 and q.full()
    put_done = threading.Event()

    def put_more():
        q.put(["c"] * 2)
        put_done.set()

    threading.Thread(target=put_more, daemon=True).start()
    time.sleep(0.05)
    assert not put_done.is_set()          # a full queue blocks the source
    assert q.get() == ["a"] * 6
    assert put_done.wait(2) and q.qsize() == 6
    assert q.get() == "one line" and q.get() == ["b"] * 3 and q.get() == ["c"] * 2 and q.empty()


def test_stop_ends_a_source_that_never_ends():
    class Endless:
        id = "test:endless"

        def __init__(self):
            self.closed = threading.Event()

        def line_batches(self):
            i = 0
            while not self.closed.is_set():
                yield [Line(SENTENCES[0], time.time(), self.id, i)]
                i += 1

        def close(self):
            self.closed.set()

    sink = ListSink()
    pipeline = Pipeline(sink, Counters(), queue_size=50)
    threading.Timer(0.2, pipeline.stop).start()
    pipeline.run([Endless()])
    assert sink.documents  # what was read before the stop is processed


class ThreadRecordingSink:
    """A ListSink that also records which threads submitted (composition: compiled classes,
    ingest/native.py, take no Python subclasses)."""

    def __init__(self):
        self._list = ListSink()
        self.documents = self._list.documents
        self.threads = set()

    def submit(self, doc):
        self.threads.add(threading.current_thread().name)
        self._list.submit(doc)

    def flush(self):
        self._list.flush()


def test_a_lone_file_at_full_speed_is_read_in_the_processing_thread(tmp_path):
    path = tmp_path / "feed.nmea"
    path.write_text("\n".join(SENTENCES * 300) + "\n")
    source = FileSource(path)
    assert source.reads_without_waiting and not FileSource(path, rate="realtime").reads_without_waiting
    sink = ThreadRecordingSink()
    counters = Counters()
    before = {t.name for t in threading.enumerate()}
    Pipeline(sink, counters).run([source])
    assert sink.threads == {threading.current_thread().name}
    assert not any(t.name.startswith("source-") for t in threading.enumerate() if t.name not in before)
    # the same documents as through a source thread (a realtime source is never read inline)
    threaded = ListSink()
    pipeline = Pipeline(threaded, Counters())
    pipeline.run([LinesOnly([line.text for line in FileSource(path).lines()], source.id)])
    assert sink.documents and len(sink.documents) == len(threaded.documents)
    assert counters.get("sentences_in") == len(SENTENCES) * 300


class Endless:
    id = "test:endless"
    reads_without_waiting = True

    def __init__(self, fail_after=None):
        self.closed = threading.Event()
        self.fail_after = fail_after

    def line_batches(self):
        i = 0
        while not self.closed.is_set():
            if self.fail_after is not None and i >= self.fail_after:
                raise OSError("disk gone")
            yield [Line(SENTENCES[0], time.time(), self.id, i)]
            i += 1

    def close(self):
        self.closed.set()


def test_stop_ends_an_inline_source_and_a_failing_one_is_counted():
    sink = ListSink()
    pipeline = Pipeline(sink, Counters())
    threading.Timer(0.2, pipeline.stop).start()
    source = Endless()
    pipeline.run([source])
    assert sink.documents and source.closed.is_set()

    sink = ListSink()
    counters = Counters()
    Pipeline(sink, counters).run([Endless(fail_after=3)])
    assert len(sink.documents) == 3 and counters.get("source.test:endless.failures") == 1


def test_a_count_batch_adds_its_counts_at_flush():
    from aiswatch.ingest.counters import CountBatch

    shared = Counters()
    batch = CountBatch(shared)
    batch.incr("sentences_in")
    batch.add(("messages_decoded", 1), ("sentences_decoded", 2))
    batch.reject("bad_checksum", 3)
    batch.gauge("fragments_pending", 5)
    assert shared.get("sentences_in") == 0 and shared.get("fragments_pending") == 5   # gauges at once
    batch.flush()
    assert shared.snapshot() == {"fragments_pending": 5, "messages_decoded": 1, "rejected": 3,
                                 "rejected.bad_checksum": 3, "sentences_decoded": 2, "sentences_in": 1}
    batch.flush()   # nothing new: nothing added twice
    batch.incr("sentences_in")
    assert batch.get("sentences_in") == 2   # reading through flushes first
