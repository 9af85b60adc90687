"""Behaviour detection end to end on the test engine.

The ``planted`` scenario (behavior/scenarios.py: 13 vessels, 24 h, ~29k messages) goes through the
real ingest pipeline and sink into a fresh namespace once per module; every test then runs the
detectors against it. Checked: every planted event is found with the right vessels and times
(within one reporting interval), no trap produces an event, a rerun writes nothing, a loitering
that spans two runs is one event, the detector receives <= 5 % of the raw position bytes, and a
``detect schedule`` process killed mid-way resumes from its watermark without a gap or duplicate.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
from click.testing import CliRunner

from behavior.events import EventStore, parse_time_ms
from behavior.loader import load_simulation
from behavior.runner import Detector, read_watermark
from behavior.scenarios import DURATION_HOURS, SCENARIOS, TRAPS, expected_events
from behavior.tracks import ByteMeter
from es_templates import IndexNames
from ingest.esclient import make_client
from conftest import delete_namespace

HOUR_MS = 3_600_000
# one reporting interval: a slow class B vessel reports every 180 s (the simulator's times are whole
# seconds with a random phase, hence the few seconds on top)
TOLERANCE_MS = 185_000


@pytest.fixture(scope="module")
def planted(es_url):
    """(client, names, t0 seconds, LoadResult): the planted scenario ingested through the pipeline."""
    client = make_client(es_url, request_timeout=120)
    names = IndexNames(f"tb{uuid.uuid4().hex[:6]}-")
    # 270 s past a slot boundary, so planted events do not line up with the 10-minute slots
    t0 = int((time.time() - 26 * 3600) // 600 * 600) + 270
    hours = DURATION_HOURS["planted"]
    try:
        loaded = load_simulation(client, names, SCENARIOS["planted"](t0, 0), t0, hours * 3600)
        yield client, names, t0, loaded
    finally:
        delete_namespace(client, names.namespace)
        client.close()


def fresh_events(client, names: IndexNames) -> None:
    """Drop the events and the watermark so a test starts with none (the templates stay)."""
    for index in (names.events, names.state):
        client.indices.delete(index=index, ignore_unavailable=True)


def window(t0: int) -> tuple[int, int]:
    return t0 * 1000, int((t0 + DURATION_HOURS["planted"] * 3600) * 1000)


def stored_events(client, names) -> list[dict]:
    client.indices.refresh(index=names.events, ignore_unavailable=True)
    return EventStore(client, names.events).recent(limit=1000)


def check_against_ground_truth(events, t0: int) -> None:
    expected = expected_events("planted", t0)
    traps = set(TRAPS["planted"])
    for e in events:
        assert not traps & set(e.mmsi), f"a trap produced an event: {e.as_json()}"
    found = {(e.type, tuple(sorted(e.mmsi))): e for e in events}
    assert len(found) == len(events), f"duplicate events: {[e.as_json() for e in events]}"
    assert set(found) == {(x.type, tuple(sorted(x.mmsi))) for x in expected}, [e.as_json() for e in events]
    for x in expected:
        e = found[(x.type, tuple(sorted(x.mmsi)))]
        if x.subtype:
            assert e.subtype == x.subtype
        tolerance = TOLERANCE_MS
        assert abs(e.start_ms - x.start * 1000) <= tolerance, (x, e.as_json())
        assert abs(e.end_ms - x.end * 1000) <= tolerance, (x, e.as_json())


def test_planted_events_found_no_trap_fires_and_rerun_changes_nothing(planted):
    client, names, t0, _ = planted
    fresh_events(client, names)
    detector = Detector(client, names, {})
    since, until = window(t0)
    first = detector.run(since, until)
    check_against_ground_truth(first.events, t0)
    assert first.written.created == len(first.events) and first.written.errors == 0

    encounter = next(e for e in first.events if e.type == "encounter")
    assert sorted(encounter.names) == ["HAI FENG 8", "NORD KAPP"]
    assert 100 <= encounter.details["median_distance_m"] <= 200      # planted 150 m apart
    gap = next(e for e in first.events if e.type == "gap")
    assert 13.9 <= gap.details["duration_h"] <= 14.1 and 9 <= gap.details["implied_speed_kn"] <= 11
    assert gap.details["start_shore_nm"] > 50 and gap.details["end_shore_nm"] > 50

    stored = stored_events(client, names)
    assert len(stored) == len(first.events)
    again = detector.run(since, until)
    assert (again.written.created, again.written.updated) == (0, 0)
    assert again.written.unchanged == len(first.events)
    assert sorted(d["_id"] for d in stored_events(client, names)) == sorted(d["_id"] for d in stored)

    # identity, area and risk landed on ships-seen
    ghost = client.get(index=names.ships, id="123456789")["_source"]
    assert ghost["identity"]["valid"] is False and "test_number" in ghost["identity"]["problems"]
    carrier = client.get(index=names.ships, id="636123002")["_source"]
    assert carrier["identity"]["flag_code"] == "LR" and carrier["identity"]["flag_of_convenience"] is True
    assert carrier["risk"]["score"] == 25.0 and carrier["risk"]["events"] == ["loitering"]   # 10 + FOC 15
    anchored = client.get(index=names.ships, id="244123010")["_source"]
    assert anchored["area"]["in_port"] is True and anchored["area"]["port"] == "Rotterdam"
    assert anchored["risk"]["score"] == 0


def test_vessels_dark_now_are_reported_only_far_from_shore(planted):
    """13 h after the scenario ends every vessel is silent: only those last seen > 50 nm out count."""
    client, names, t0, _ = planted
    end_ms = window(t0)[1]
    result = Detector(client, names, {}).run(end_ms, end_ms + 13 * HOUR_MS, only=["gap"], write=False)
    dark = {e.mmsi[0]: e for e in result.events if e.subtype == "dark"}
    assert {"244123001", "636123002", "273123003", "412123004", "219123005"} <= set(dark)
    assert not set(dark) & set(TRAPS["planted"]) - {"244123015", "244123016"}   # in port / near the coast
    for e in dark.values():
        assert e.ongoing and e.details["start_shore_nm"] > 50
        assert end_ms - 2 * HOUR_MS <= e.start_ms <= end_ms and e.end_ms == end_ms + 13 * HOUR_MS


def test_loitering_across_two_runs_is_one_event(planted):
    client, names, t0, _ = planted
    fresh_events(client, names)
    detector = Detector(client, names, {})
    since, until = window(t0)
    split = since + 7 * HOUR_MS  # the loitering lasts from hour 2 to hour 8
    first = detector.run(since, split, only=["loitering"])
    assert [(e.type, e.ongoing) for e in first.events] == [("loitering", True)]
    second = detector.run(split, until, only=["loitering"])
    assert second.written.created == 0 and second.written.updated == 1
    stored = stored_events(client, names)
    assert len(stored) == 1 and stored[0]["ongoing"] is False
    assert abs(parse_time_ms(stored[0]["start"]) - (t0 + 2 * 3600) * 1000) <= TOLERANCE_MS
    assert abs(parse_time_ms(stored[0]["end"]) - (t0 + 8 * 3600) * 1000) <= TOLERANCE_MS


def test_detector_receives_under_5_percent_of_raw_position_bytes(planted, es_url):
    _, names, t0, loaded = planted
    meter = ByteMeter()
    client = make_client(es_url, node_class=meter.node_class())
    try:
        result = Detector(client, names, {}).run(*window(t0), write=False)
    finally:
        client.close()
    assert len(result.events) == len(expected_events("planted", t0))
    ratio = meter.bytes / loaded.position_bytes
    assert 0 < ratio <= 0.05, f"{meter.bytes} bytes received for {loaded.position_bytes} raw position bytes"


def test_cli_run_json_and_list(planted, es_url):
    from ingest.cli import main

    client, names, t0, _ = planted
    fresh_events(client, names)
    since, until = window(t0)
    runner = CliRunner()
    args = ["detect", "run", "--es", es_url, "--namespace", names.namespace, "--since", str(since // 1000),
            "--until", str(until // 1000), "--only", "gap,spoofing", "--json"]
    out = runner.invoke(main, args)
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert sorted((r["type"], r["mmsi"][0]) for r in rows) == [
        ("gap", "244123001"), ("spoofing", "219123005"), ("spoofing", "538123006")]
    assert set(rows[0]) >= {"type", "mmsi", "start", "end", "lat", "lon", "details"}
    listed = runner.invoke(main, ["detect", "list", "--es", es_url, "--namespace", names.namespace])
    assert listed.exit_code == 0 and "244123001" in listed.stdout and "219123005" in listed.stdout
    bad = runner.invoke(main, args[:-3] + ["--only", "nonsense"])
    assert bad.exit_code != 0 and "unknown detector" in bad.output


def _schedule(es_url, names, t0, log_path):
    env = dict(os.environ, ES_URL=es_url, AISWATCH_DETECT__SCHEDULE__MAX_WINDOW_HOURS="2",
               AISWATCH_DETECT__SCHEDULE__LAG_MINUTES="0")
    cmd = [sys.executable, "-c", "from ingest.cli import main; main()", "detect", "schedule", "--every", "0.2s",
           "--namespace", names.namespace, "--from", str(t0)]
    return subprocess.Popen(cmd, env=env, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)


def _wait_watermark(client, names, at_least_ms, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mark = read_watermark(client, names)
        if mark is not None and mark >= at_least_ms:
            return mark
        assert proc.poll() is None, "detect schedule exited early"
        time.sleep(0.2)
    raise AssertionError(f"watermark did not reach {at_least_ms} in {timeout} s")


def test_schedule_killed_and_restarted_resumes_without_gap_or_duplicate(planted, es_url, tmp_path):
    client, names, t0, _ = planted
    fresh_events(client, names)
    since, until = window(t0)
    log_path = tmp_path / "schedule.log"
    proc = _schedule(es_url, names, t0, log_path)
    try:
        killed_at = _wait_watermark(client, names, since + 6 * HOUR_MS, proc)
        proc.send_signal(signal.SIGKILL)   # no goodbye: the watermark is what survives
        proc.wait(10)
        assert read_watermark(client, names) >= killed_at
        proc = _schedule(es_url, names, t0, log_path)
        _wait_watermark(client, names, until, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # the windows printed by both processes chain without a hole: each starts where one ended
    spans = []
    for line in log_path.read_text().splitlines():
        m = re.match(r"^(\S+Z) \.\. (\S+Z): \d+ events", line)
        if m:
            spans.append((parse_time_ms(m.group(1)), parse_time_ms(m.group(2))))
    assert spans and spans[0][0] == since
    ends = {b for _, b in spans}
    for a, _ in spans[1:]:
        assert a in ends, f"window starting {a} does not follow a finished one: {spans}"
    assert max(b for _, b in spans) >= until

    from behavior.events import Event
    scheduled = [Event.from_document(d) for d in stored_events(client, names)]
    check_against_ground_truth(scheduled, t0)


def test_detectors_run_on_the_embedded_noida_db(noida):
    """noida-db (the embedded default) lacks min/max over dates: times degrade to the 10-minute slot."""
    server = noida("behavior")
    client = make_client(server.url, request_timeout=120)
    try:
        names = IndexNames("nd-")
        t0 = int((time.time() - 26 * 3600) // 600 * 600)
        load_simulation(client, names, SCENARIOS["planted"](t0, 0), t0, DURATION_HOURS["planted"] * 3600)
        result = Detector(client, names, {}).run(*window(t0))
        found = {(e.type, tuple(sorted(e.mmsi))): e for e in result.events}
        expected = expected_events("planted", t0)
        assert set(found) == {(x.type, tuple(sorted(x.mmsi))) for x in expected}
        for x in expected:
            e = found[(x.type, tuple(sorted(x.mmsi)))]
            assert abs(e.start_ms - x.start * 1000) <= 600_000 + TOLERANCE_MS
            assert abs(e.end_ms - x.end * 1000) <= 600_000 + TOLERANCE_MS
    finally:
        client.close()
