"""Line framing properties: however a byte stream is cut into reads, the same lines come out."""
from hypothesis import given, settings, strategies as st

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.sources.framing import MAX_LINE_BYTES, StreamSplitter, split_datagram

line_text = st.text(alphabet="!$\\,*:.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ`abcdefw", min_size=1, max_size=90)
endings = st.sampled_from([b"\r\n", b"\n", b"\r"])


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(st.tuples(line_text, endings), min_size=1, max_size=30), st.data())
def test_any_chunking_gives_the_same_lines(lines, data):
    stream = b"".join(text.encode() + end for text, end in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    splitter = StreamSplitter(Counters(), "test")
    got = [l for chunk in chunks for l in splitter.feed(chunk)] + splitter.flush()
    assert got == [text.encode() for text, _ in lines]
    assert split_datagram(stream) == got


def test_a_runaway_line_is_rejected_once_not_buffered_forever():
    counters = Counters()
    splitter = StreamSplitter(counters, "test")
    assert splitter.feed(b"x" * (MAX_LINE_BYTES + 1)) == []
    assert counters.get("rejected.line_too_long") == 1
    # The rest of that line, however long, is dropped with it: no second rejection, and no
    # fragment of it passed on as a line of its own.
    for _ in range(5):
        assert splitter.feed(b"y" * (MAX_LINE_BYTES + 1)) == []
    assert splitter.feed(b"end of the runaway\r\n!AIVDM,ok*00\r\n") == [b"!AIVDM,ok*00"]
    # the same when its line end comes alone, and when it is a bare CR
    assert splitter.feed(b"z" * (MAX_LINE_BYTES + 1)) == []
    assert splitter.feed(b"\n") == []
    assert splitter.feed(b"!AIVDM,two*00\r") == [b"!AIVDM,two*00"]
    assert splitter.feed(b"\n" + b"w" * (MAX_LINE_BYTES + 1)) == []
    assert splitter.feed(b"w\r!AIVDM,three*00\n") == [b"!AIVDM,three*00"]
    assert counters.get("rejected.line_too_long") == counters.get("rejected") == 3
    assert counters.get("lines_in") == 3      # source-level rejections are lines in
