"""The disk spool on its own: order, resume after reopening, torn writes, segment rolling."""
from __future__ import annotations

from aiswatch.ingest.counters import Counters
from aiswatch.ingest.spool import DiskSpool


def records(start, n):
    return [{"n": i, "text": "x" * 50} for i in range(start, start + n)]


def drain(spool, chunk=7):
    out = []
    while True:
        recs, pos = spool.read(chunk)
        if not recs:
            if pos[2]:
                spool.ack(pos)
                continue
            return out
        out.extend(r["n"] for r in recs)
        spool.ack(pos)


def test_fifo_order_and_depth(tmp_path):
    counters = Counters()
    spool = DiskSpool(tmp_path, counters)
    spool.append(records(0, 10))
    spool.append(records(10, 5))
    assert spool.depth == 15 and counters.get("spool_depth") == 15
    recs, pos = spool.read(4)
    assert [r["n"] for r in recs] == [0, 1, 2, 3]
    recs_again, _ = spool.read(4)  # not consumed until acked
    assert recs_again == recs
    spool.ack(pos)
    assert spool.depth == 11
    assert drain(spool) == list(range(4, 15))
    assert spool.depth == 0 and counters.get("spool_depth") == 0
    assert counters.get("spooled_total") == 15


def test_resume_exactly_after_reopen(tmp_path):
    spool = DiskSpool(tmp_path)
    spool.append(records(0, 20))
    recs, pos = spool.read(8)
    spool.ack(pos)
    spool.close()  # a crash leaves the same files behind: nothing is written at close
    reopened = DiskSpool(tmp_path, Counters())
    assert reopened.depth == 12
    reopened.append(records(20, 3))  # a new process writes to a new segment, behind the old one
    assert drain(reopened) == list(range(8, 23))


def test_unacked_records_are_replayed_after_crash(tmp_path):
    spool = DiskSpool(tmp_path)
    spool.append(records(0, 5))
    spool.read(5)  # read but never acked: the process died before Elasticsearch answered
    spool.close()
    assert drain(DiskSpool(tmp_path)) == [0, 1, 2, 3, 4]


def test_a_second_process_cannot_use_the_same_spool(tmp_path):
    import subprocess
    import sys

    spool = DiskSpool(tmp_path)
    code = ("import sys; from aiswatch.ingest.spool import DiskSpool, SpoolError\n"
            "try:\n    DiskSpool(sys.argv[1])\nexcept SpoolError as e:\n    print(e); sys.exit(3)")
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert other.returncode == 3 and "in use by another aiswatch process" in other.stdout
    spool.close()
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)]).returncode == 0


def test_torn_last_line_is_skipped_and_counted(tmp_path):
    spool = DiskSpool(tmp_path)
    spool.append(records(0, 3))
    spool.close()
    seg = sorted(tmp_path.glob("seg-*.ndjson"))[-1]
    with open(seg, "ab") as f:
        f.write(b'{"n": 99, "text": "torn')  # the write a kill interrupted
    counters = Counters()
    reopened = DiskSpool(tmp_path, counters)
    assert reopened.depth == 3
    reopened.append(records(3, 2))
    assert drain(reopened) == [0, 1, 2, 3, 4]
    assert counters.get("spool_torn") == 1


def test_segments_roll_and_delivered_ones_are_deleted(tmp_path):
    spool = DiskSpool(tmp_path, segment_bytes=500)
    for i in range(10):
        spool.append(records(i * 4, 4))
    assert len(list(tmp_path.glob("seg-*.ndjson"))) >= 5
    assert drain(spool, chunk=3) == list(range(40))
    assert len(list(tmp_path.glob("seg-*.ndjson"))) <= 1
    spool.close()
    assert DiskSpool(tmp_path).depth == 0


def test_a_spool_belongs_to_one_cluster_and_namespace(tmp_path):
    import pytest

    from aiswatch.ingest.spool import SpoolForeign, SpoolTarget

    here = SpoolTarget.for_url("http://elastic@ES01:9200/", "a-", "uuid-1")
    assert here.url == "http://es01:9200" and SpoolTarget.for_url("es01", "a-").url == "http://es01:9200"
    # the UUID decides where both are known (another URL of the same cluster is the same cluster) ...
    assert here.accepts(SpoolTarget.for_url("http://10.0.0.5:9200", "a-", "uuid-1"))
    assert not here.accepts(SpoolTarget.for_url("http://es01:9200", "a-", "uuid-2"))
    # ... else the URL; and the namespace always
    assert here.accepts(SpoolTarget.for_url("http://es01:9200", "a-"))
    assert not here.accepts(SpoolTarget.for_url("http://es02:9200", "a-"))
    assert not here.accepts(SpoolTarget.for_url("http://es01:9200", "b-", "uuid-1"))

    spool = DiskSpool(tmp_path, target=here)
    spool.append(records(0, 3))
    spool.close()
    with pytest.raises(SpoolForeign, match="holds 3 documents meant for http://es01:9200"):
        DiskSpool(tmp_path, target=SpoolTarget.for_url("http://es02:9200", "a-"))
    # reopened while its cluster does not answer (no UUID yet): accepted by URL, checked when it answers
    spool = DiskSpool(tmp_path, target=SpoolTarget.for_url("http://es01:9200", "a-"))
    with pytest.raises(SpoolForeign):
        spool.confirm_cluster("uuid-2")   # another cluster behind the same URL
    spool.confirm_cluster("uuid-1")
    spool.close()
    # the same cluster through another URL, its UUID known at start: delivered there
    assert DiskSpool(tmp_path, target=SpoolTarget.for_url("http://es02:9200", "a-", "uuid-1")).depth == 3


def test_each_process_gets_a_spool_of_its_own_under_the_root(tmp_path):
    from aiswatch.ingest.spool import SpoolTarget, spool_dir_for

    target = SpoolTarget.for_url("http://127.0.0.1:9200", "ns-")
    first = spool_dir_for(tmp_path, target)
    held = DiskSpool(first, target=target)
    second = spool_dir_for(tmp_path, target)
    assert second != first and second.parent == tmp_path == first.parent
    other = spool_dir_for(tmp_path, SpoolTarget.for_url("http://127.0.0.1:9200", "other-"))
    assert other not in (first, second)
    held.append(records(0, 2))
    held.close()
    DiskSpool(second, target=target).close()     # an empty one of the same target exists too
    assert spool_dir_for(tmp_path, target) == first  # the one with a previous run's documents first
