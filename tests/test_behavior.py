"""Behaviour detection end to end on the test engine.

The ``planted`` scenario (behavior/scenarios.py: 14 vessels, 24 h, ~29k messages) goes through the
real ingest pipeline and sink into a fresh namespace once per module; every test then runs the
detectors against it. Checked: every planted event is found once with the right vessels and times
(within one reporting interval of that vessel at that edge), no trap produces an event and each
trap would without its filter, a rerun writes nothing, a loitering that spans two runs is one
event (same id and overlap merge), paging (events, ships-seen, vessels) changes nothing, the
detector receives <= 5 % of the raw position bytes in one run and <= 6.5 % over 145 scheduled
10-minute runs, a refusal is one line, and a ``detect schedule`` process killed between its events and its
watermark resumes there and ends with the documents of one that was not killed. noida-db: the
same events (times to the slot), no duplicates, no traps.
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

from aiswatch.behavior.events import Event, EventStore
from aiswatch.common.times import epoch_ms
from helpers import load_simulation
from aiswatch.behavior.runner import Detector, read_watermark
from aiswatch.behavior.scenarios import DURATION_HOURS, SCENARIOS, TRAP_FILTERS, TRAPS, edge_interval_s, expected_events
from aiswatch.behavior.metering import ByteMeter
from aiswatch.es_templates import IndexNames
from aiswatch.ingest.esclient import make_client
from helpers import delete_namespace

HOUR_MS = 3_600_000
# on top of one reporting interval: the simulator's times are whole seconds, the tag block's too
SLACK_MS = 3_000


def edge_tolerance_ms(t0: int, x, at: float) -> int:
    """One reporting interval (of the slowest-reporting vessel of the event) around time ``at``, plus
    slack (and the event's own, for edges known to the slot)."""
    return max(edge_interval_s("planted", t0, m, at) for m in x.mmsi) * 1000 + SLACK_MS + int(x.slack_s * 1000)


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
    """Drop the events, the watermark and the learnt anchorages so a test starts with none (the
    templates stay)."""
    for index in (names.events, names.state, names.anchorages):
        client.indices.delete(index=index, ignore_unavailable=True)


def window(t0: int) -> tuple[int, int]:
    return t0 * 1000, int((t0 + DURATION_HOURS["planted"] * 3600) * 1000)


def stored_events(client, names) -> list[dict]:
    client.indices.refresh(index=names.events, ignore_unavailable=True)
    return EventStore(client, names.events).recent(limit=1000)


def check_against_ground_truth(events, t0: int, extra_ms: int = 0, identity_end_ms: int = 0) -> None:
    """Every planted event, once, with its vessels and subtype, start and end within one reporting
    interval of the truth (``extra_ms`` more where the server degrades times; ``identity_end_ms``
    more for the end of an identity event, which a 10-minute schedule extends hourly); no trap in
    any event."""
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
        assert abs(e.start_ms - x.start * 1000) <= edge_tolerance_ms(t0, x, x.start) + extra_ms, (x, e.as_json())
        late = identity_end_ms if x.type == "identity" else 0
        assert abs(e.end_ms - x.end * 1000) <= edge_tolerance_ms(t0, x, x.end) + extra_ms + late, (x, e.as_json())


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


def test_planted_traps_would_fire_without_their_filter(planted):
    """Each trap is a real near-miss: its preconditions hold in the scenario, and with the one
    filter that stops it switched off, the detectors report it."""
    client, names, t0, _ = planted
    from aiswatch.common.geodesy import haversine_m

    tracks = {str(spec.mmsi): track for spec, track in SCENARIOS["planted"](t0, 0)}
    minutes = [t0 + 60 * k for k in range(int(DURATION_HOURS["planted"] * 60))]

    def states(mmsi):
        return [tracks[mmsi].state(t) for t in minutes]

    for a, b in (("244123010", "244123011"), ("211123012", "211123013")):   # in port, < 500 m, slow, all day
        pairs = list(zip(states(a), states(b)))
        assert all(sa and sb and haversine_m(sa.lat, sa.lon, sb.lat, sb.lon) <= 450 for sa, sb in pairs), (a, b)
        assert all(sa.sog < 2 and sb.sog < 2 for sa, sb in pairs)
    silent = [t for t, st in zip(minutes, states("244123014")) if st is None]
    assert silent and (silent[-1] - silent[0]) / 3600 >= 13.9                 # silent >= 12 h near the coast
    crossing = [(haversine_m(sa.lat, sa.lon, sb.lat, sb.lon), sa.sog, sb.sog)
                for sa, sb in zip(states("244123015"), states("244123016"))]
    closest = min(crossing)
    assert closest[0] < 500 and min(closest[1:]) > 7                          # they do meet, at speed
    assert sum(1 for d, _, _ in crossing if d < 500) < 30                     # ... for minutes, not hours

    since, until = window(t0)
    for what, (mmsis, off, kind) in TRAP_FILTERS["planted"].items():
        result = Detector(client, names, {"detect": off}).run(since, until, write=False)
        fired = [e for e in result.events if set(e.mmsi) == set(mmsis) and e.type == kind]
        assert fired, f"{what}: no {kind} event even without its filter {off}"
    # the rafted boats are stopped by either of two filters: each alone is enough
    rafted = {"244123040", "244123041"}
    for off in ({"encounter": {"min_shore_nm": 0.0}}, {"anchorages": {"learn": False}}):
        result = Detector(client, names, {"detect": off}).run(since, until, write=False)
        assert not [e for e in result.events if set(e.mmsi) == rafted], off
    # and with every filter on, nothing (the ground-truth test checks that too, on the stored events)
    result = Detector(client, names, {}).run(since, until, write=False)
    assert not [e for e in result.events if set(e.mmsi) & set(TRAPS["planted"])]


# the ships last seen more than 50 nm from shore (the others are in port or near the coast, the
# shared-MMSI twins ~20 nm off Norway; GHOST's 123456789 and the net buoys are not ships' numbers)
FAR_OUT_AT_THE_END = {"244123001", "636123002", "273123003", "412123004", "219123005", "538123006",
                      "244123015", "244123016", "219123020"}


def test_vessels_dark_now_are_reported_only_far_from_shore(planted):
    """13 h after the scenario ends every vessel is silent: only those last seen > 50 nm out count,
    each from its last position exactly. Ships-seen is read in pages of 2 (more than one page)."""
    client, names, t0, _ = planted
    end_ms = window(t0)[1]
    result = Detector(client, names, {}, page_size=2).run(end_ms, end_ms + 13 * HOUR_MS, only=["gap"], write=False)
    dark = {e.mmsi[0]: e for e in result.events if e.subtype == "dark"}
    assert len(dark) == len([e for e in result.events if e.subtype == "dark"])
    assert set(dark) == FAR_OUT_AT_THE_END
    for mmsi, e in dark.items():
        ship = client.get(index=names.ships, id=mmsi)["_source"]
        assert e.start_ms == epoch_ms(ship["position_time"])       # the last position, to the millisecond
        assert e.end_ms == end_ms + 13 * HOUR_MS and e.ongoing and e.details["start_shore_nm"] > 50


@pytest.mark.parametrize("split_h", [7.0, 7.5])
def test_loitering_across_two_runs_is_one_event(planted, split_h):
    """Split at 7 h the second run sees the episode from its start (same id, extended); split at
    7.5 h its 5 h context starts after the episode's start (another id: merged by overlap)."""
    client, names, t0, _ = planted
    fresh_events(client, names)
    detector = Detector(client, names, {})
    since, until = window(t0)
    split = since + int(split_h * HOUR_MS)  # the loitering lasts from hour 2 to hour 8
    first = detector.run(since, split, only=["loitering"])
    assert [(e.type, e.ongoing) for e in first.events] == [("loitering", True)]
    second = Detector(client, names, {}).run(split, until, only=["loitering"])
    if split_h == 7.5:
        assert second.events[0].start_ms == first.events[0].start_ms   # stored start kept by the merge
    assert second.written.created == 0 and second.written.updated == 1
    stored = stored_events(client, names)
    assert len(stored) == 1 and stored[0]["ongoing"] is False
    x = next(x for x in expected_events("planted", t0) if x.type == "loitering")
    assert abs(epoch_ms(stored[0]["start"]) - x.start * 1000) <= edge_tolerance_ms(t0, x, x.start)
    assert abs(epoch_ms(stored[0]["end"]) - x.end * 1000) <= edge_tolerance_ms(t0, x, x.end)


def test_events_are_read_back_in_pages_so_a_rerun_duplicates_nothing(planted):
    """The event store reads stored events in pages of 2 here: a rerun finds all and writes none."""
    client, names, t0, _ = planted
    fresh_events(client, names)
    n = len(expected_events("planted", t0))
    detector = Detector(client, names, {}, page_size=2)
    first = detector.run(*window(t0))
    assert first.written.created == n
    again = Detector(client, names, {}, page_size=2).run(*window(t0))
    assert (again.written.created, again.written.updated, again.written.unchanged) == (0, 0, n)
    assert len(stored_events(client, names)) == n


def test_every_way_of_paging_vessels_reads_the_same_tracks_and_events(planted):
    """Vessels paged 3 at a time: by name from ships-seen's list (the default for more than one
    page), composite pages (after_key) and terms partitions give identical slots and events, and so
    does one composite page; a vessel ships-seen does not know is still read (the last request)."""
    client, names, t0, _ = planted
    since, until = window(t0)

    def read(paging, page):
        detector = Detector(client, names, {}, paging=paging, page_vessels=page)
        tracks = detector.reader.slots(detector.read_from(since), until)
        return tracks, [e.as_json() for e in detector.run(since, until, write=False).events]

    base = read("auto", None)
    assert len(base[0]) == len({str(spec.mmsi) for spec, _ in SCENARIOS["planted"](t0, 0)}) == 22
    for paging, page in (("auto", 3), ("composite", 3), ("partitions", 3)):
        assert read(paging, page) == base, (paging, page)
    listed = Detector(client, names, {}).reader.listed_vessels(since - 5 * HOUR_MS, 3)
    assert listed == sorted(base[0])
    ghost = client.get(index=names.ships, id="123456789")["_source"]
    client.delete(index=names.ships, id="123456789", refresh=True)
    try:
        tracks, events = read("auto", 3)
        assert tracks == base[0]                                   # (its name is gone with its document)
        assert [e["id"] for e in events] == [e["id"] for e in base[1]]
    finally:
        client.index(index=names.ships, id="123456789", document=ghost, refresh=True)


def test_scheduled_10_minute_runs_find_the_same_events_within_the_byte_budget(planted, es_url):
    """``detect schedule --every 10m`` over the 24 h: 145 runs of 10 minutes, each reading only its
    new slots. Every planted event is found once, no trap fires, and what the detector receives
    over all the runs (the write path included) stays <= 6.5 % of the raw position bytes."""
    from aiswatch.behavior.runner import run_scheduled

    client, names, t0, loaded = planted
    fresh_events(client, names)
    since, until = window(t0)
    step = 10 * 60_000
    lag = int(Detector(client, names, {}).settings["schedule"]["lag_minutes"] * 60_000)
    now = {"ms": since + lag}

    def clock():   # ten minutes later every time the scheduler looks: one 10-minute window a run
        now["ms"] += step
        return now["ms"]

    meter = ByteMeter()
    counted = make_client(es_url, node_class=meter.node_class(), request_timeout=120)
    windows = []
    try:
        detector = Detector(counted, names, {})
        runs = run_scheduled(detector, every_s=0, start_ms=since, max_runs=145,
                             clock=clock, sleep=lambda s: None, on_result=lambda r: windows.append((r.since_ms, r.until_ms)))
    finally:
        counted.close()
    assert runs == 145 and windows[0][0] == since and windows[-1][1] >= until
    assert all(b - a <= step for a, b in windows) and all(windows[i][1] == windows[i + 1][0] for i in range(runs - 1))
    check_against_ground_truth([Event.from_document(d) for d in stored_events(client, names)], t0,
                               identity_end_ms=HOUR_MS)
    share = meter.bytes / loaded.position_bytes
    # 6.5 %: each slot carries the box of its positions (~50 bytes: shared MMSIs), and one response
    # per 10-minute run per vessel; one run over the window stays under 5 % (the test below)
    assert 0 < share <= 0.065, f"{meter.bytes} bytes received over {runs} runs for {loaded.position_bytes} raw"


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
    from aiswatch.cli import main

    client, names, t0, _ = planted
    fresh_events(client, names)
    # a sentinel score: the run below (gap and spoofing only, no identity) must rescore ships-seen
    client.update(index=names.ships, id="219123005", doc={"risk": {"score": -1.0}}, refresh=True)
    since, until = window(t0)
    runner = CliRunner()
    args = ["detect", "run", "--es", es_url, "--namespace", names.namespace, "--since", str(since // 1000),
            "--until", str(until // 1000), "--only", "gap,spoofing", "--json"]
    out = runner.invoke(main, args)
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert sorted((r["type"], r["mmsi"][0]) for r in rows) == [
        ("gap", "244123001"), ("spoofing", "219123005"), ("spoofing", "227123030"), ("spoofing", "538123006")]
    assert set(rows[0]) >= {"type", "mmsi", "start", "end", "lat", "lon", "details"}
    assert client.get(index=names.ships, id="219123005")["_source"]["risk"]["score"] == 30.0   # one spoofing
    listed = runner.invoke(main, ["detect", "list", "--es", es_url, "--namespace", names.namespace])
    assert listed.exit_code == 0 and "244123001" in listed.stdout and "219123005" in listed.stdout
    bad = runner.invoke(main, args[:-3] + ["--only", "nonsense"])
    assert bad.exit_code != 0 and "unknown detector" in bad.output


def test_cli_run_refused_by_the_server_is_one_line(planted, es_url):
    """A request the server rejects (here a zero-length slot: fixed_interval 0s) is one line naming
    what was refused and by which server, exit 1, no traceback."""
    from aiswatch.cli import main

    _, names, t0, _ = planted
    since, until = window(t0)
    out = CliRunner(env={"AISWATCH_DETECT__SLOT_MINUTES": "0.001"}).invoke(main, [
        "detect", "run", "--es", es_url, "--namespace", names.namespace, "--since", str(since // 1000),
        "--until", str(until // 1000), "--dry-run"])
    assert out.exit_code == 1, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.output, out.output
    assert "refused the " in lines[0] and "aggregation on mmsi" in lines[0] and "(track slots)" in lines[0]
    assert "HTTP 400" in lines[0]
    assert "osmem" in lines[0] or "elasticsearch" in lines[0].lower()


# Run N's events are stored, its watermark not yet: the worst moment to die, made repeatable by
# wrapping the watermark write of the real command in the test's own process start-up.
KILL_BEFORE_WATERMARK = """
import os, signal
import aiswatch.behavior.runner as runner
calls, write = [0], runner.write_watermark
def write_or_die(*args, **kwargs):
    calls[0] += 1
    if calls[0] == {n}:
        os.kill(os.getpid(), signal.SIGKILL)
    return write(*args, **kwargs)
runner.write_watermark = write_or_die
"""


def _schedule(es_url, names, t0, log_path, kill_after: int | None = None):
    env = dict(os.environ, ES_URL=es_url, AISWATCH_DETECT__SCHEDULE__MAX_WINDOW_HOURS="2",
               AISWATCH_DETECT__SCHEDULE__LAG_MINUTES="0")
    hook = KILL_BEFORE_WATERMARK.format(n=kill_after) if kill_after is not None else ""
    # catching up from t0, windows follow each other at once; the period only paces a caught-up schedule
    cmd = [sys.executable, "-c", hook + "from aiswatch.cli import main; main()", "detect", "schedule", "--every", "1m",
           "--namespace", names.namespace, "--from", str(t0)]
    return subprocess.Popen(cmd, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)


def _windows(log_path) -> list[tuple[int, int]]:
    spans = []
    for line in log_path.read_text().splitlines():
        m = re.match(r"^(\S+Z) \.\. (\S+Z): \d+ events", line)
        if m:
            spans.append((epoch_ms(m.group(1)), epoch_ms(m.group(2))))
    return spans


def _run_schedule_until(client, names, es_url, t0, log_path, until_ms, timeout=180):
    proc = _schedule(es_url, names, t0, log_path)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mark = read_watermark(client, names)
            if mark is not None and mark >= until_ms:
                return
            assert proc.poll() is None, f"detect schedule exited early: {log_path.read_text()}"
            time.sleep(0.2)
        raise AssertionError(f"watermark did not reach {until_ms} in {timeout} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _documents(client, names) -> dict[str, dict]:
    return {d["_id"]: {k: v for k, v in d.items() if k not in ("_id", "run_id")} for d in stored_events(client, names)}


def test_schedule_killed_and_restarted_resumes_without_gap_or_duplicate(planted, es_url, tmp_path):
    """A schedule killed (SIGKILL) after its 3rd run's events are stored and before that run's
    watermark restarts exactly at the stored watermark, repeats that window, and ends with the
    very documents of a schedule that ran through."""
    client, names, t0, _ = planted
    since, until = window(t0)
    # the reference: a schedule that is not interrupted
    fresh_events(client, names)
    _run_schedule_until(client, names, es_url, t0, tmp_path / "through.log", until)
    reference = _documents(client, names)
    through = _windows(tmp_path / "through.log")
    check_against_ground_truth([Event.from_document(d) for d in stored_events(client, names)], t0)

    fresh_events(client, names)
    proc = _schedule(es_url, names, t0, tmp_path / "killed.log", kill_after=3)
    assert proc.wait(120) == -signal.SIGKILL
    killed = _windows(tmp_path / "killed.log")
    assert killed == through[:2]                       # the 3rd run's line comes after its watermark
    watermark = read_watermark(client, names)
    assert watermark == killed[-1][1]                  # the 3rd window's events are stored, not its watermark
    assert stored_events(client, names)                # ... and they are there
    _run_schedule_until(client, names, es_url, t0, tmp_path / "restarted.log", until)
    restarted = _windows(tmp_path / "restarted.log")
    assert restarted[0][0] == watermark                # resumes exactly at the stored watermark
    # no window skipped, none repeated but the killed one, up to the end of the data (the last one
    # ends at "now", and either schedule may run one more before it is stopped: a slot boundary may
    # have passed between the two)
    resumed = [w for w in killed + restarted if w[0] < until]
    reference_windows = [w for w in through if w[0] < until]
    assert [a for a, _ in resumed] == [a for a, _ in reference_windows]
    assert [b for _, b in resumed][:-1] == [b for _, b in reference_windows][:-1]
    assert _documents(client, names) == reference      # the same documents, nothing duplicated


def test_detectors_run_on_the_embedded_noida_db(noida):
    """noida-db (the embedded default) lacks min/max over dates and composite: times degrade to the
    10-minute slot, vessels are paged with terms (which noida-db does not partition); the events
    are the planted ones, once each, and no trap fires."""
    server = noida("behavior")
    client = make_client(server.url, request_timeout=120)
    try:
        names = IndexNames("nd-")
        t0 = int((time.time() - 26 * 3600) // 600 * 600)
        load_simulation(client, names, SCENARIOS["planted"](t0, 0), t0, DURATION_HOURS["planted"] * 3600)
        since, until = window(t0)
        result = Detector(client, names, {}).run(since, until)
        check_against_ground_truth(result.events, t0, extra_ms=600_000)
        paged = Detector(client, names, {}, paging="partitions", page_vessels=3).run(since, until, write=False)
        # as stored: noida-db's averages differ in the last bit between requests, which events.stable_round absorbs
        assert {e.id: e.document()["content_sha"] for e in paged.events} == \
            {e.id: e.document()["content_sha"] for e in result.events}
        again = Detector(client, names, {}).run(since, until)
        assert (again.written.created, again.written.updated) == (0, 0)
    finally:
        client.close()


def test_cli_json_is_one_line_per_stored_event_and_a_rerun_prints_them_whole(planted, es_url):
    """``detect run --json``: one line per stored document under its stored id; run again over the
    same window, every line is the stored event in full (position, details), identity events too."""
    from aiswatch.cli import main

    client, names, t0, _ = planted
    fresh_events(client, names)
    since, until = window(t0)
    args = ["detect", "run", "--es", es_url, "--namespace", names.namespace, "--since", str(since // 1000),
            "--until", str(until // 1000), "--json"]
    runs = []
    for _ in range(2):
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 0, out.output
        runs.append([json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")])
    stored = {d["_id"]: d for d in stored_events(client, names)}
    assert len(stored) == len(expected_events("planted", t0))
    for rows in runs:
        assert sorted(r["id"] for r in rows) == sorted(stored)          # one line each, under its stored id
        for r in rows:
            doc = stored[r["id"]]
            assert (r["type"], r["subtype"], r["mmsi"]) == (doc["type"], doc["subtype"], doc["mmsi"])
            assert r["lat"] == doc["lat"] and r["lon"] == doc["lon"] and r["lat"] is not None
            assert r["details"] == doc["details"] and r["details"]
    assert {r["type"] for r in runs[1]} >= {"identity", "gear", "spoofing"}


def test_anchorages_are_learnt_stored_and_used_by_the_next_process(planted):
    """The four boats of the Harlingen dock make an anchorage: stored with its ships, read back by
    another detector, which then keeps the rafted pair out of encounters with the shore filter off.
    A dry run learns in memory and writes nothing. The buoys' risk stays low: gear weighs nothing."""
    client, names, t0, _ = planted
    fresh_events(client, names)
    since, until = window(t0)
    no_shore = {"detect": {"encounter": {"min_shore_nm": 0.0}}}
    dry = Detector(client, names, no_shore).run(since, until, write=False)
    assert not client.indices.exists(index=names.anchorages)
    rafted = {"244123040", "244123041"}
    assert not [e for e in dry.events if set(e.mmsi) == rafted]
    Detector(client, names, {}).run(since, until)
    client.indices.refresh(index=names.anchorages)
    docs = [h["_source"] for h in client.search(index=names.anchorages, size=100)["hits"]["hits"]]
    dock = [d for d in docs if d["anchorage"]]
    assert dock and all(abs(d["lat"] - 53.175) < 0.01 and abs(d["lon"] - 5.415) < 0.01 for d in dock)
    assert {m for d in docs for m in d["vessels"]} >= {"244123040", "244123041", "244123042", "244123043"}
    reader = Detector(client, names, {"detect": {"anchorages": {"learn": True, "min_hours": 1000.0},
                                                 "encounter": {"min_shore_nm": 0.0}}})
    result = reader.run(since, until, write=False)     # learns nothing itself (no stay lasts 1000 h)
    assert any(abs(lat - 53.175) < 0.01 for lat, _ in reader.geo.learnt)
    assert not [e for e in result.events if set(e.mmsi) == rafted]
    buoy = client.get(index=names.ships, id="941191002")["_source"]
    assert buoy["risk"]["score"] == 40.0 and buoy["identity"]["station_type"] == "unknown"   # invalid number only
    hauler = client.get(index=names.ships, id="219123020")["_source"]
    assert hauler["risk"]["score"] == 0 and hauler["risk"]["events"] == ["gear"]
