"""The traffic simulator: every line decodes with pyais to what the specs and tracks say, at ITU intervals.

Ground truth comes from ``Simulator.events`` (the state each report was made from) and the
VesselSpecs; the lines themselves are checked with pyais, our own checksum parse of the tag
block and a real UDP socket.
"""
from __future__ import annotations

import gzip
import math
import re
import socket
import statistics
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from functools import reduce
from operator import xor

import pytest
from click.testing import CliRunner
from pyais import decode

from aiswatch.cli import main
from aiswatch.ingest.simulation import (BASE_STATIONS, MS_PER_KNOT, STATIC_INTERVAL_S, Alongside, AnchoredTrack, Itinerary, Jump, LoiterTrack,
                             MooredTrack, Override, RouteTrack, Segments, Silence, Simulator, VesselSpec,
                             distance_between, haversine_m, imo_is_valid, random_fleet, report_interval, send_udp,
                             write_file)

T0 = 1_790_000_000  # 2026-09-21T13:46:40Z
LINE = re.compile(r"^\\(?P<tag>s:(?P<station>[^,*]+),c:(?P<c>\d+))\*(?P<tcs>[0-9A-F]{2})\\"
                  r"(?P<sentence>!(?P<body>AIVDM,(?P<total>\d),(?P<num>\d),(?P<seq>\d?),(?P<ch>[AB]),[^*]+)"
                  r"\*(?P<cs>[0-9A-F]{2}))$")


def nmea_xor(text: str) -> int:
    return reduce(xor, text.encode("ascii"), 0)


def parse(line: str) -> re.Match:
    m = LINE.match(line)
    assert m, f"not a tag-blocked AIVDM line: {line!r}"
    assert int(m["tcs"], 16) == nmea_xor(m["tag"]), f"bad tag block checksum: {line!r}"
    assert int(m["cs"], 16) == nmea_xor(m["body"]), f"bad sentence checksum: {line!r}"
    return m


@pytest.fixture(scope="module")
def fleet_events():
    fleet = random_fleet(40, seed=7, start=T0)
    sim = Simulator(fleet, start=T0, seed=7)
    return fleet, list(sim.events(1800))


def test_every_line_decodes_to_the_truth(fleet_events):
    fleet, events = fleet_events
    specs = {spec.mmsi: spec for spec, _ in fleet}
    kinds = defaultdict(int)
    for ev in events:
        parsed = [parse(line) for line in ev.lines]
        assert all(int(p["c"]) == ev.time and p["station"] == "sim" for p in parsed)
        msg = decode(*[p["sentence"] for p in parsed]).asdict()
        assert msg["mmsi"] == ev.mmsi and msg["msg_type"] == ev.msg_type
        spec = specs[ev.mmsi]
        kinds[ev.msg_type] += 1
        if ev.state is not None:
            s = ev.state
            assert ev.msg_type in ((1, 3) if spec.cls == "A" else (18,))
            assert msg["lat"] == pytest.approx(s.lat, abs=2e-6) and msg["lon"] == pytest.approx(s.lon, abs=2e-6)
            assert msg["speed"] == pytest.approx(s.sog, abs=0.051)
            assert msg["course"] == pytest.approx(s.cog if s.cog is not None else 360.0, abs=0.051)
            assert msg["heading"] == (s.heading if spec.reports_heading else 511)
            assert msg["second"] == int(ev.time) % 60
            if spec.cls == "A":
                assert int(msg["status"]) == s.nav_status
                assert msg["turn"] == pytest.approx(s.rot, abs=max(1.0, 0.1 * abs(s.rot)))
        elif ev.msg_type == 5:
            assert spec.cls == "A" and len(ev.lines) == 2
            assert (msg["shipname"], msg["callsign"], msg["imo"]) == (spec.name, spec.callsign, spec.imo)
            assert imo_is_valid(msg["imo"])
            assert int(msg["ship_type"]) == spec.ship_type and msg["destination"] == spec.destination
            assert msg["to_bow"] + msg["to_stern"] == spec.length and msg["draught"] == pytest.approx(spec.draught)
            assert (msg["month"], msg["day"], msg["hour"], msg["minute"]) == spec.eta
        else:
            assert ev.msg_type == 24 and spec.cls == "B"
            if msg["partno"] == 0:
                assert msg["shipname"] == spec.name
            else:
                assert (msg["callsign"], int(msg["ship_type"])) == (spec.callsign, spec.ship_type)
                assert msg["to_port"] + msg["to_starboard"] == spec.beam
    # the fleet really has both classes, static data and anchored ships
    assert kinds[1] and kinds[3] and kinds[5] and kinds[18] and kinds[24]
    assert any(ev.state and ev.state.nav_status == 1 for ev in events)
    assert any(ev.state and ev.state.heading is None for ev in events)  # class B sets without heading sensor


def test_time_order_span_and_valid_identities(fleet_events):
    fleet, events = fleet_events
    times = [ev.time for ev in events]
    assert times == sorted(times)
    assert T0 <= times[0] and times[-1] < T0 + 1800
    mmsis = [spec.mmsi for spec, _ in fleet]
    assert len(set(mmsis)) == len(mmsis)
    assert all(100_000_000 <= m <= 799_999_999 for m in mmsis)
    assert len({spec.name for spec, _ in fleet}) == len(fleet)


def test_report_intervals_follow_itu(fleet_events):
    fleet, events = fleet_events
    last_pos, last_static = {}, {}
    allowed = {"A": {2, 6, 10, 180}, "B": {30, 180}}
    checked = 0
    for ev in events:
        cls = fleet[ev.vessel][0].cls
        if ev.state is not None:
            if ev.vessel in last_pos:
                t_prev, s_prev = last_pos[ev.vessel]
                gap = ev.time - t_prev
                assert gap == report_interval(cls, s_prev) and gap in allowed[cls]
                checked += 1
            last_pos[ev.vessel] = (ev.time, ev.state)
        elif ev.msg_type == 5 or (ev.msg_type == 24 and ev.lines[0] and decode(ev.lines[0].split("\\")[-1]).partno == 0):
            if ev.vessel in last_static:
                assert ev.time - last_static[ev.vessel] == STATIC_INTERVAL_S
            last_static[ev.vessel] = ev.time
    assert checked > 1000
    # every transmitting vessel sent static data within its first 6 minutes
    assert len(last_static) == len(fleet)


def test_report_interval_table():
    from aiswatch.ingest.simulation import TrackState

    def st(sog, status=0):
        return TrackState(54.0, 3.0, sog, 90.0, 90, status)

    assert [report_interval("A", st(v)) for v in (0.0, 13.9, 14.1, 22.9, 23.1, 30.0)] == [10, 10, 6, 6, 2, 2]
    assert report_interval("A", st(0.1, 1)) == 180 and report_interval("A", st(0.0, 5)) == 180
    assert report_interval("A", st(5.0, 1)) == 10  # "at anchor" but moving > 3 kn
    assert [report_interval("B", st(v)) for v in (0.5, 2.0, 2.1, 15.0)] == [180, 180, 30, 30]


def test_sequence_ids_rotate_and_channels_alternate(fleet_events):
    _, events = fleet_events
    seqs = [parse(ev.lines[0])["seq"] for ev in events if len(ev.lines) > 1]
    assert seqs[:12] == [str(k % 10) for k in range(12)]
    for ev in events:
        assert len({parse(line)["ch"] for line in ev.lines}) == 1  # fragments share the channel
    # each vessel's messages alternate A, B, A, ... (the fragments of one message share its channel)
    for vessel in {ev.vessel for ev in events}:
        chans = [parse(ev.lines[0])["ch"] for ev in events if ev.vessel == vessel]
        assert all(a != b for a, b in zip(chans, chans[1:]))


def test_same_seed_same_traffic_other_seed_other_traffic():
    def run(seed):
        sim = Simulator(random_fleet(15, seed=seed, start=T0), start=T0, seed=seed)
        return list(sim.messages(600))

    a, b, c = run(3), run(3), run(4)
    assert a == b
    assert a != c and len(a) > 100


def test_silent_window_produces_no_messages():
    route = RouteTrack([(54.0, 3.0), (54.5, 3.0)], 12.0, T0)
    dark = (T0 + 600, T0 + 1800)
    quiet = VesselSpec(mmsi=244123456, name="QUIET ONE", cls="A")
    other = VesselSpec(mmsi=244654321, name="CHATTY", cls="A")
    sim = Simulator([(quiet, Silence(route, [dark])), (other, route)], start=T0, seed=1)
    events = list(sim.events(2700))
    quiet_times = [ev.time for ev in events if ev.mmsi == quiet.mmsi]
    other_times = [ev.time for ev in events if ev.mmsi == other.mmsi]
    assert not [t for t in quiet_times if dark[0] <= t < dark[1]]
    assert any(t < dark[0] for t in quiet_times)
    # it reappears within one report interval of the window's end, with static data within 6 min
    assert min(t for t in quiet_times if t >= dark[1]) < dark[1] + 10
    assert any(dark[0] <= t < dark[1] for t in other_times)


def test_route_positions_agree_with_speed_and_course():
    route = RouteTrack([(54.0, 3.0), (55.0, 4.0)], 14.0, T0, seed=9)
    assert route.duration_s == pytest.approx(haversine_m(54.0, 3.0, 55.0, 4.0) / (14.0 * MS_PER_KNOT))
    states = [route.state(t) for t in range(T0, T0 + 3 * 3600, 10)]
    for a, b in zip(states, states[1:]):
        implied = haversine_m(a.lat, a.lon, b.lat, b.lon) / 10.0 / MS_PER_KNOT
        assert implied == pytest.approx((a.sog + b.sog) / 2, abs=0.05)
        assert 13.5 < a.sog < 14.5
        assert abs((a.heading - a.cog + 180) % 360 - 180) < 6  # heading near course (leeway + yaw)
    cogs = [s.cog for s in states]
    assert 25 < statistics.mean(cogs) < 35 and statistics.pstdev(cogs) > 0.1  # wobble, not a ruler line
    assert route.state(T0 - 1) is None and route.state(route.end_time + 1) is None
    end = route.state(route.end_time)
    assert haversine_m(end.lat, end.lon, 55.0, 4.0) < 50


def test_loop_route_keeps_going_and_exact_mode():
    route = RouteTrack([(54.0, 3.0), (54.1, 3.0)], 10.0, T0, loop=True, wobble=False)
    s = route.state(T0 + 10 * route.duration_s + 1)
    assert s is not None and s.sog == 10.0
    half = route.state(T0 + route.duration_s / 4)
    assert half.lat == pytest.approx(54.05, abs=1e-4) and half.cog == pytest.approx(0.0, abs=0.01)


def test_anchored_moored_loiter_and_meeting_pair():
    anchored = AnchoredTrack(52.05, 3.75, swing_radius_m=40, seed=2)
    moored = MooredTrack(51.95, 4.05, heading=123, seed=2)
    for t in range(T0, T0 + 86400, 900):
        a, m = anchored.state(t), moored.state(t)
        assert a.nav_status == 1 and a.sog <= 0.3 and haversine_m(a.lat, a.lon, 52.05, 3.75) < 50
        assert m.nav_status == 5 and m.sog == 0 and m.heading == 123 and haversine_m(m.lat, m.lon, 51.95, 4.05) < 6
    loiter = LoiterTrack((55.0, 3.0), radius_m=400, speed_kn=1.0, start=T0, end=T0 + 4 * 3600, seed=1)
    partner = Alongside(loiter, distance_m=250, bearing_deg=60)
    states = [(loiter.state(t), partner.state(t)) for t in range(T0, T0 + 4 * 3600, 60)]
    assert statistics.mean(s.sog for s, _ in states) == pytest.approx(1.0, abs=0.05)
    assert max(s.sog for s, _ in states) < 2.0
    assert all(haversine_m(s.lat, s.lon, 55.0, 3.0) <= 401 for s, _ in states)
    assert all(249 < distance_between(s, p) < 251 and p.sog < 2.0 for s, p in states)
    assert loiter.state(T0 + 4 * 3600) is None and partner.state(T0 - 1) is None
    # relative=True keeps the partner on the leader's beam as it turns
    beam = Alongside(loiter, distance_m=100, bearing_deg=90, relative=True)
    assert all(99 < distance_between(s, beam.state(t)) < 101
               for t, (s, _) in zip(range(T0, T0 + 3600, 60), states))


def test_itinerary_is_continuous_and_records_windows():
    it = Itinerary(T0, (54.0, 3.0), seed=5)
    it.sail([(54.3, 3.4)], 12.0).loiter(3 * 3600, radius_m=800, speed_kn=1.2)
    dark_from = it.now
    it.sail_for(14 * 3600, bearing=0.0, speed_kn=10.0, dark=True).anchor(3600)
    track = it.track()
    assert [w[2] for w in it.windows] == ["sail", "loiter", "sail", "anchor"]
    prev, max_step = None, 0.0
    for t in range(T0, int(it.now), 10):
        s = track.state(t)
        if dark_from <= t < dark_from + 14 * 3600:
            assert s is None
            prev = None
            continue
        assert s is not None
        if prev is not None:
            max_step = max(max_step, distance_between(prev, s))
        prev = s
    assert max_step < 12.5 * MS_PER_KNOT * 10  # never faster than the transit speed
    # after 14 h dark at 10 kn the ship is ~140 nm north of where it went dark
    before, after = track.state(dark_from - 1), track.state(dark_from + 14 * 3600 + 1)
    assert haversine_m(before.lat, before.lon, after.lat, after.lon) == pytest.approx(140 * 1852, rel=0.01)
    assert track.state(T0 - 1) is None and track.state(it.now + 1) is None


def test_segments_jump_override():
    a = MooredTrack(54.0, 3.0, seed=1)
    b = RouteTrack([(54.0, 3.0), (54.2, 3.0)], 8.0, T0 + 3600)
    seg = Segments([(T0, T0 + 3600, a), (T0 + 3600, T0 + 7200, b)])
    assert seg.state(T0 + 10).nav_status == 5 and seg.state(T0 + 4000).nav_status == 0
    assert seg.state(T0 - 1) is None and seg.state(T0 + 7200) is None
    with pytest.raises(ValueError):
        Segments([(T0, T0 + 100, a), (T0 + 50, T0 + 200, a)])
    jumped = Jump(b, at=T0 + 5000, to=(54.5, 4.0))
    s = jumped.state(T0 + 5000)
    assert (s.lat, s.lon) == pytest.approx((54.5, 4.0))
    j1, j2 = jumped.state(T0 + 4990), jumped.state(T0 + 5000)
    assert distance_between(j1, j2) > 50_000  # the planted jump
    assert distance_between(jumped.state(T0 + 6000), b.state(T0 + 6000)) > 50_000
    spoof = Jump(b, at=T0 + 5000, to=(54.5, 4.0), until=T0 + 5600, follow=False)
    assert (spoof.state(T0 + 5300).lat, spoof.state(T0 + 5300).lon) == (54.5, 4.0)
    assert spoof.state(T0 + 5600) == b.state(T0 + 5600)
    fishing = Override(b, start=T0 + 4000, nav_status=7, sog=None)
    assert fishing.state(T0 + 4100).nav_status == 7 and fishing.state(T0 + 3700).nav_status == 0
    with pytest.raises(ValueError):
        Override(b, speed=3)


def test_fake_mmsi_no_static_and_unavailable_fields_encode():
    from aiswatch.ingest.simulation import TrackState

    class Fixed:
        def state(self, t):
            return TrackState(53.5, 4.5, None, None, None, 15, None)

    fake = VesselSpec(mmsi=123456789, cls="A", send_static=False)
    tiny = VesselSpec(mmsi=1000, name="GHOST", cls="B")
    events = list(Simulator([(fake, Fixed()), (tiny, Fixed())], start=T0).events(400))
    assert {ev.mmsi for ev in events} == {123456789, 1000}
    assert not [ev for ev in events if ev.mmsi == 123456789 and ev.state is None]  # no static at all
    msg = decode(events[0].lines[0].split("\\")[-1]).asdict()
    assert msg["speed"] == 102.3 and msg["course"] == 360.0 and msg["heading"] == 511
    # a planted "position not available" (lat 91, lon 181) goes out as the AIS sentinels
    unknown = Override(Fixed(), lat=91.0, lon=181.0)
    msg = decode(next(Simulator([(fake, unknown)], start=T0).messages(60))[1][0].split("\\")[-1]).asdict()
    assert (msg["lat"], msg["lon"], msg["turn"]) == (91.0, 181.0, -128.0)
    with pytest.raises(ValueError):
        VesselSpec(mmsi=2 ** 30)
    with pytest.raises(ValueError):
        VesselSpec(mmsi=211000001, name="Ærø")
    with pytest.raises(ValueError):
        VesselSpec(mmsi=211000001, cls="C")


def test_random_fleet_shape():
    fleet = random_fleet(200, seed=11, start=T0)
    classes = [spec.cls for spec, _ in fleet]
    anchored = [tr for spec, tr in fleet if isinstance(tr, AnchoredTrack)]
    assert 0.15 < classes.count("B") / 200 < 0.35
    assert 10 <= len(anchored) <= 45
    assert {spec.mmsi // 1_000_000 for spec, _ in fleet} >= {211, 219, 235, 244, 257}
    # every vessel is inside the default box and transmitting at start
    for spec, tr in fleet:
        s = tr.state(T0)
        assert s is not None and 49.9 < s.lat < 56.1 and -2.1 < s.lon < 8.1


def test_udp_output_reaches_a_real_socket():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    port = rx.getsockname()[1]
    messages = list(Simulator(random_fleet(10, seed=2, start=T0), start=T0, seed=2).messages(600))
    expected_bytes = sum(len(line) + 2 for _, ls in messages for line in ls)
    received: list[bytes] = []

    def receive():
        try:
            while sum(map(len, received)) < expected_bytes:
                received.append(rx.recv(65535))
        except socket.timeout:
            pass  # lost datagrams: the assertions below say so

    thread = threading.Thread(target=receive)
    thread.start()
    stats = send_udp("127.0.0.1", port, messages, rate=4000)  # paced so the receiver keeps up
    thread.join()
    rx.close()
    assert stats.messages == len(messages) and stats.datagrams == len(received) > 1
    assert all(len(d) < 1400 and d.endswith(b"\r\n") for d in received)
    lines = [line for d in received for line in d.decode("ascii").split("\r\n") if line]
    assert lines == [line for _, ls in messages for line in ls]
    for d in received:  # a multi-sentence message is never split across datagrams
        parts = [parse(x) for x in d.decode("ascii").split("\r\n") if x]
        assert sum(int(p["num"]) == 1 for p in parts) == sum(int(p["num"]) == int(p["total"]) for p in parts)


def test_udp_realtime_pacing_follows_message_time():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    messages = [(T0 + k, [f"line {k}"]) for k in (0.0, 0.0, 0.5, 1.0)]
    started = time.monotonic()
    stats = send_udp("127.0.0.1", rx.getsockname()[1], messages, rate="realtime")
    elapsed = time.monotonic() - started
    rx.settimeout(1)
    received = [rx.recv(2048) for _ in range(stats.datagrams)]
    rx.close()
    assert 0.95 < elapsed < 2.5
    # the two messages due at once share a datagram; the later ones leave when due
    assert received == [b"line 0.0\r\nline 0.0\r\n", b"line 0.5\r\n", b"line 1.0\r\n"]


def test_cli_writes_a_file_that_decodes(tmp_path):
    out = tmp_path / "traffic.nmea"
    result = CliRunner().invoke(main, ["simulate", "--vessels", "8", "--duration", "10m", "--seed", "3",
                                       "--start", "2026-11-22T00:00:00Z", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) > 200
    start = 1_795_305_600  # 2026-11-22T00:00:00Z
    parsed = [parse(line) for line in lines]
    assert all(start <= int(p["c"]) < start + 600 for p in parsed)
    pending = []
    decoded = 0
    for p in parsed:
        pending.append(p["sentence"])
        if p["num"] == p["total"]:
            decode(*pending)
            pending.clear()
            decoded += 1
    assert decoded > 200 and not pending
    assert "8 vessels" in result.stderr and f"{len(lines)} lines" in result.stderr
    # same arguments, same file
    out2 = tmp_path / "again.nmea"
    CliRunner().invoke(main, ["simulate", "--vessels", "8", "--duration", "600", "--seed", "3",
                              "--start", "2026-11-22T00:00:00", "--out", str(out2)])
    assert out2.read_text() == out.read_text()


def test_cli_rejects_bad_input_clearly(tmp_path):
    runner = CliRunner()
    bad_duration = runner.invoke(main, ["simulate", "--duration", "ten minutes", "--out", str(tmp_path / "x")])
    assert bad_duration.exit_code == 2 and "duration" in bad_duration.output
    bad_bbox = runner.invoke(main, ["simulate", "--bbox", "1,2,3", "--out", str(tmp_path / "x")])
    assert bad_bbox.exit_code == 2 and "bbox" in bad_bbox.output
    unknown = runner.invoke(main, ["simulate", "--scenario", "no-such-scenario", "--out", str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "scenario" in unknown.output


def test_file_writer_counts_and_gzip(tmp_path):
    sim = Simulator(random_fleet(5, seed=1, start=T0), start=T0, seed=1)
    stats = write_file(str(tmp_path / "f.nmea"), sim.messages(300))
    text = (tmp_path / "f.nmea").read_text()
    assert stats.lines == len(text.splitlines())
    assert stats.messages < stats.lines and stats.first_time >= T0 and stats.span_s < 300
    assert math.isclose(stats.last_time - stats.first_time, stats.span_s)
    write_file(str(tmp_path / "f.nmea.gz"), sim.messages(300))
    assert gzip.decompress((tmp_path / "f.nmea.gz").read_bytes()).decode("ascii") == text


def test_base_stations_and_reception_loss():
    fleet = random_fleet(20, seed=5, start=T0)
    full = list(Simulator(fleet, start=T0, seed=5, base_stations=BASE_STATIONS[:2]).events(1200))
    lossy = list(Simulator(fleet, start=T0, seed=5, base_stations=BASE_STATIONS[:2], loss=0.2).events(1200))
    base = [ev for ev in full if ev.msg_type == 4]
    assert {ev.mmsi for ev in base} == {BASE_STATIONS[0].mmsi, BASE_STATIONS[1].mmsi}
    for ev in base[:20]:
        msg = decode(parse(ev.lines[0])["sentence"]).asdict()
        station = BASE_STATIONS[ev.vessel - len(fleet)]
        assert msg["mmsi"] == station.mmsi and (msg["lat"], msg["lon"]) == pytest.approx((station.lat, station.lon))
        sent = datetime(msg["year"], msg["month"], msg["day"], msg["hour"], msg["minute"], msg["second"],
                        tzinfo=timezone.utc)
        assert sent.timestamp() == ev.time
    times = [ev.time for ev in base if ev.mmsi == BASE_STATIONS[0].mmsi]
    assert {b - a for a, b in zip(times, times[1:])} == {10.0}
    # loss drops about 20 % of the very same messages and changes nothing else but the sequence
    # ids: the receiver numbers the multi-sentence messages it received, one after the other
    assert 0.15 < 1 - len(lossy) / len(full) < 0.25

    def without_seq(lines):     # the sequence id, and the checksum that covers it
        return tuple(re.sub(r"(!AIVDM,\d,\d),\d,(.*)\*..$", r"\1,,\2", line) for line in lines)

    full_set = {(ev.time, without_seq(ev.lines)) for ev in full}
    assert all((ev.time, without_seq(ev.lines)) in full_set for ev in lossy)
    seqs = [parse(ev.lines[0])["seq"] for ev in lossy if len(ev.lines) > 1]
    assert len(seqs) > 20 and seqs == [str(k % 10) for k in range(len(seqs))]
    # without base stations and loss the vessel traffic is the same as before
    plain = [(ev.time, ev.lines) for ev in Simulator(fleet, start=T0, seed=5).events(1200)]
    assert plain == [(ev.time, ev.lines) for ev in full if ev.msg_type != 4]
    with pytest.raises(ValueError):
        Simulator(fleet, start=T0, loss=1.0)


def test_slow_route_never_goes_astern():
    route = RouteTrack([(54.0, 3.0), (54.02, 3.0)], 0.5, T0, seed=4)
    states = [route.state(t) for t in range(T0, int(route.end_time), 30)]
    assert all(b.lat > a.lat for a, b in zip(states, states[1:]))
    assert all(0.4 < s.sog < 0.6 and abs((s.cog + 180) % 360 - 180) < 10 for s in states)


def test_traffic_goes_through_the_ingest_chain_unchanged():
    """Simulated lines -> parse_line -> FragmentAssembler -> decode -> build_document: nothing rejected,
    every message becomes a document at its message time with the simulated values (group tags on)."""
    from aiswatch.ingest.assembler import FragmentAssembler
    from aiswatch.ingest.counters import Counters
    from aiswatch.ingest.decoder import decode as decode_group
    from aiswatch.ingest.documents import build_document
    from aiswatch.ingest.lines import Line
    from aiswatch.ingest.nmea import parse_line

    fleet = random_fleet(15, seed=8, start=T0)
    specs = {spec.mmsi: spec for spec, _ in fleet}
    sim = Simulator(fleet, start=T0, seed=8, base_stations=BASE_STATIONS[:1], group_tags=True)
    counters = Counters()
    assembler = FragmentAssembler(counters)
    docs = 0
    events = list(sim.events(1200))
    assert any("g:1-2-" in ev.lines[0] for ev in events)
    for ev in events:
        groups = []
        for line in ev.lines:
            sentence = parse_line(Line(line, ev.time + 0.5, "simulate:test"), counters)
            assert sentence is not None, line
            group = assembler.push(sentence)
            if group is not None:
                groups.append(group)
        assert len(groups) == 1
        doc = build_document(groups[0], decode_group(groups[0], counters))
        assert doc["_ts"] == int(ev.time * 1000) and doc["mmsi"] == f"{ev.mmsi:09d}" and doc["station"] == "sim"
        if ev.state is not None:
            assert (doc["lat"], doc["lon"]) == pytest.approx((ev.state.lat, ev.state.lon), abs=2e-6)
            assert doc["msg_kind"] == "position"
        elif ev.msg_type == 5:
            assert doc["name"] == specs[ev.mmsi].name and doc["msg_kind"] == "static"
        elif ev.msg_type == 4:
            assert doc["msg_kind"] == "base_station"
        docs += 1
    assert docs == len(events)
    assert not [k for k in counters.snapshot() if "reject" in k]


def test_stream_pacing_by_rate():
    import io

    from aiswatch.ingest.simulation import write_stream

    messages = [(T0 + k, [f"line {k}"]) for k in range(30)]
    out = io.StringIO()
    started = time.monotonic()
    stats = write_stream(out, messages, rate=100)
    elapsed = time.monotonic() - started
    assert 0.28 < elapsed < 1.5 and stats.messages == 30
    assert out.getvalue().splitlines() == [f"line {k}" for k in range(30)]
    with pytest.raises(ValueError):
        write_stream(io.StringIO(), messages, rate="fast")


def test_cli_fleet_shape_and_static_messages_under_reused_sequence_ids(tmp_path):
    """--anchored and --class-b shape the random fleet; the station's one sequence id counter makes
    a vessel's unchanged type 5 come back under the same id (10 class A vessels: every time)."""
    out = tmp_path / "anchored.nmea"
    result = CliRunner().invoke(main, ["simulate", "--vessels", "10", "--duration", "2h", "--seed", "5",
                                       "--anchored", "1", "--class-b", "0", "--start", "2026-11-22T00:00:00Z",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    parsed = [parse(line) for line in out.read_text().splitlines()]
    positions: dict[str, list[int]] = {}
    statics: dict[tuple, list[tuple[str, str, int]]] = {}
    for i, p in enumerate(parsed):
        if p["total"] == "1":
            message = decode(p["sentence"])
            assert message.msg_type in (1, 3)
            positions.setdefault(message.mmsi, []).append(int(p["c"]))
        elif p["num"] == "1":
            payload = (p["sentence"].split(",")[5], parsed[i + 1]["sentence"].split(",")[5])
            statics.setdefault(payload, []).append((p["seq"], p["ch"], int(p["c"])))
    assert len(positions) == len(statics) == 10      # ten class A vessels, every one at anchor
    assert all(b - a == 180 for times in positions.values() for a, b in zip(times, times[1:]))
    for sent in statics.values():
        assert len(sent) == 20 and len({seq for seq, _, _ in sent}) == 1   # every 6 min, one id throughout
        assert [t2 - t1 for (_, _, t1), (_, _, t2) in zip(sent, sent[1:])] == [360] * 19
        # channels alternate, so the same id on the same channel (the assembler's key) every 12 min
        assert all(c1 == c2 for (_, c1, _), (_, c2, _) in zip(sent, sent[2:]))
    bad = CliRunner().invoke(main, ["simulate", "--anchored", "1.5", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "anchored" in bad.output
