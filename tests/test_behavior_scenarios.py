"""Behaviour detection on small purpose-built scenarios, through the real ingest pipeline, on the test engine.

- Two ships far apart sharing one MMSI: the slot means jump at every slot where both report. The
  jump refinement stays small (one ~20-bucket query per chain of jumps, at most
  ``spoofing.max_refines`` per run, a warning past it) instead of one 1-minute histogram over the
  whole chain.
- A ship reported dark while it is silent, then back: the ongoing dark event becomes the gap, one
  document updated under the same id, not a second one.
- ``detect schedule`` against a server that refuses a request stops with one line and exit 1.
"""
from __future__ import annotations

import logging
import time
import uuid

import pytest
from click.testing import CliRunner

from aiswatch.behavior.events import EventStore
from helpers import load_simulation
from aiswatch.behavior.runner import Detector
from aiswatch.behavior.scenarios import SCENARIOS
from aiswatch.behavior.metering import ByteMeter
from helpers import delete_namespace
from aiswatch.es_templates import IndexNames
from aiswatch.ingest.esclient import make_client
from aiswatch.ingest.simulation import RouteTrack, Segments, VesselSpec

HOUR = 3600
SHARED = 244999001


def shared_mmsi_fleet(t0: int) -> list:
    """Two ships 50 nm apart with one MMSI. The second is heard in alternate 10-minute slots for 3 h
    (one chain of 18 jumps), then 20 minutes an hour (two separate jumps an hour)."""
    def spec(name):
        return VesselSpec(mmsi=SHARED, name=name, ship_type=70, length=100, beam=16, cls="B", callsign="XSHARE")

    a = RouteTrack([(55.0, 3.0), (56.0, 3.0)], 10.0, t0, seed=1)
    heard = [(t0 + 600 * k, t0 + 600 * (k + 1)) for k in range(0, 18, 2)]
    heard += [(t0 + h * HOUR, t0 + h * HOUR + 1200) for h in range(3, 6)]
    b = Segments((start, end, RouteTrack([(55.0, 4.5), (56.0, 4.5)], 10.0, t0, seed=2)) for start, end in heard)
    return [(spec("SHARED ONE"), a), (spec("SHARED TWO"), b)]


@pytest.fixture(scope="module")
def shared(es_url):
    client = make_client(es_url, request_timeout=120)
    names = IndexNames(f"ts{uuid.uuid4().hex[:6]}-")
    t0 = int((time.time() - 8 * HOUR) // 600 * 600)
    try:
        load_simulation(client, names, shared_mmsi_fleet(t0), t0, 6 * HOUR)
        yield client, names, t0
    finally:
        delete_namespace(client, names.namespace)
        client.close()


def _jump_run(es_url, names, t0, cfg):
    meter = ByteMeter()
    client = make_client(es_url, node_class=meter.node_class(), request_timeout=120)
    try:
        detector = Detector(client, names, cfg)
        result = detector.run(t0 * 1000, (t0 + 6 * HOUR) * 1000, only=["spoofing"], write=False)
    finally:
        client.close()
    fine = [n for target, n, _ in meter.records if "ais-" in target][1:]   # the first one is the track slots
    return result, detector.reader.fine_queries, fine


def test_a_shared_mmsi_refines_each_chain_of_jumps_in_one_small_query(shared, es_url):
    _, names, t0 = shared
    result, queries, fine = _jump_run(es_url, names, t0, {})
    jumps = [e for e in result.events if e.subtype == "jump"]
    assert jumps and all(e.mmsi == [str(SHARED)] for e in jumps)
    assert len(fine) == queries and 1 <= queries <= 2 * len(jumps) <= 20
    assert max(fine) < 6_000, fine                      # ~20 one-minute buckets, whatever the chain's length
    chain = max(jumps, key=lambda e: e.end_ms - e.start_ms)   # the 3 h of alternating slots: one event
    assert chain.details["jumps"] >= 10 and chain.details["refined"]
    assert chain.start_ms <= (t0 + 900) * 1000 and chain.end_ms >= (t0 + 2 * HOUR + 40 * 60) * 1000
    # a minute with both ships averages to half-way between them (52 nm apart)
    assert 20 <= chain.details["distance_nm"] <= 60


def test_jump_refinements_are_capped_per_run_with_a_warning(shared, es_url, caplog):
    _, names, t0 = shared
    with caplog.at_level(logging.WARNING, logger="aiswatch.behavior.spoofing"):
        result, queries, fine = _jump_run(es_url, names, t0, {"detect": {"spoofing": {"max_refines": 3}}})
    jumps = [e for e in result.events if e.subtype == "jump"]
    assert queries == len(fine) <= 3
    assert sum(1 for e in jumps if e.details["refined"]) <= 3 < len(jumps)   # the rest at slot level ...
    warned = [r.getMessage() for r in caplog.records if r.name == "aiswatch.behavior.spoofing"]
    assert len(warned) == 1 and "past the cap of 3 refinement queries" in warned[0]   # ... and said so


def test_detect_schedule_stops_on_a_refusal_with_one_line(shared, es_url):
    from aiswatch.cli import main

    _, names, t0 = shared
    out = CliRunner(env={"AISWATCH_DETECT__SLOT_MINUTES": "0.001"}).invoke(main, [
        "detect", "schedule", "--es", es_url, "--namespace", names.namespace, "--from", str(t0),
        "--every", "1m", "--max-runs", "3"])
    assert out.exit_code == 1, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert "Traceback" not in out.output, out.output
    assert lines[0].startswith("detect schedule: a run every 1m from ")   # what it will do, said at start
    assert len(lines) == 2 and lines[1].startswith("Error: detect schedule stopped: ") and "HTTP 400" in lines[1]


def test_a_dark_vessel_that_reappears_is_one_gap_document(es_url):
    """Run 1 ends while DARK HORSE has been silent 13 h: an ongoing dark event. Its positions after
    the silence are ingested, run 2 finds the gap: the same document, updated, not a second one."""
    client = make_client(es_url, request_timeout=120)
    names = IndexNames(f"td{uuid.uuid4().hex[:6]}-")
    t0 = int((time.time() - 26 * HOUR) // 600 * 600) + 270
    dark_horse = [v for v in SCENARIOS["planted"](t0, 0) if v[0].mmsi == 244123001]
    try:
        load_simulation(client, names, dark_horse, t0, 16 * HOUR)
        first = Detector(client, names, {}).run(t0 * 1000, (t0 + 16 * HOUR) * 1000, only=["gap"])
        assert [(e.subtype, e.ongoing) for e in first.events] == [("dark", True)]
        assert first.written.created == 1
        dark_id = first.events[0].id

        load_simulation(client, names, dark_horse, t0 + 16 * HOUR, 8 * HOUR)
        second = Detector(client, names, {}).run((t0 + 16 * HOUR) * 1000, (t0 + 24 * HOUR) * 1000, only=["gap"])
        assert [(e.subtype, e.ongoing) for e in second.events] == [("gap", False)]
        assert (second.written.created, second.written.updated) == (0, 1)
        stored = EventStore(client, names.events).recent()
        assert [(d["_id"], d["subtype"], d["ongoing"]) for d in stored] == [(dark_id, "gap", False)]
        assert abs(second.events[0].end_ms - (t0 + 17 * HOUR) * 1000) <= 33_000   # back after 14 h
    finally:
        delete_namespace(client, names.namespace)
        client.close()


def test_two_touching_episodes_stored_as_one_document_are_one_event(es, names):
    """Two episodes of one vessel that touch (within join_ms) are merged into one document: the
    store returns one event, under that document's id, not one per episode."""
    from aiswatch.behavior.events import Event

    store = EventStore(es, names.events)
    t = 1_800_000_000_000
    a = Event("loitering", "loitering", "medium", ["636000001"], t, t + 5 * HOUR * 1000, 55.0, 3.0, {"x": 1})
    b = Event("loitering", "loitering", "medium", ["636000001"], t + 5 * HOUR * 1000 + 60_000, t + 7 * HOUR * 1000,
              55.1, 3.1, {"x": 2})
    written, events = store.write([a, b], since_ms=t, until_ms=t + 8 * HOUR * 1000, join_ms=1_200_000)
    assert written.created == 1 and len(events) == 1
    docs = store.recent()
    assert [d["_id"] for d in docs] == [events[0].stored_id] and events[0].as_json()["id"] == docs[0]["_id"]
    assert (events[0].start_ms, events[0].end_ms) == (a.start_ms, b.end_ms)


def test_detect_run_after_the_first_on_a_machine_takes_about_a_second(es_url):
    """The land grid is built once per machine (AISWATCH_HOME) and loaded after: a second ``detect run``
    process over a vessel (so the geography is used) does not build it and takes < 2 s, and one
    over an empty namespace does not either."""
    import os
    import subprocess
    import sys

    client = make_client(es_url, request_timeout=120)
    names = IndexNames(f"tq{uuid.uuid4().hex[:6]}-")
    t0 = int((time.time() - 2 * HOUR) // 600 * 600)
    one = [v for v in SCENARIOS["planted"](t0, 0) if v[0].mmsi == 244123001]
    env = dict(os.environ, ES_URL=es_url)   # this machine's AISWATCH_HOME: its land grid cache, if built

    def detect(namespace):
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "detect", "run",
                              "--namespace", namespace, "--since", str(t0), "--until", str(t0 + HOUR), "--dry-run"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return time.monotonic() - started, out.stderr

    try:
        load_simulation(client, names, one, t0, HOUR)
        detect(names.namespace)                                 # the first on this machine may build the grid
        seconds, log = min(detect(names.namespace) for _ in range(2))
        assert "building the" not in log and "1 vessels" in log, log
        assert seconds < 2.0, seconds
        empty, log = min(detect(f"tq{uuid.uuid4().hex[:6]}-") for _ in range(2))
        assert empty < 2.0 and "0 vessels" in log, log
    finally:
        delete_namespace(client, names.namespace)
        client.close()
