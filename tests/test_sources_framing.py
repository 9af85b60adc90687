"""Line framing properties: however a byte stream is cut into reads, the same lines come out."""
from hypothesis import given, settings, strategies as st

from ingest.counters import Counters
from ingest.sources.framing import MAX_LINE_BYTES, StreamSplitter, split_datagram

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


def test_a_runaway_line_is_rejected_not_buffered_forever():
    counters = Counters()
    splitter = StreamSplitter(counters, "test")
    assert splitter.feed(b"x" * (MAX_LINE_BYTES + 1)) == []
    assert counters.get("rejected.line_too_long") == 1
    assert splitter.feed(b"!AIVDM,ok*00\r\n") == [b"!AIVDM,ok*00"]
