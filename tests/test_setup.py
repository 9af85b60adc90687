"""Index templates installed on a real ES-compatible server; retention by creation date where there is no ILM."""
import datetime as dt

from aiswatch.es_templates.install import install_templates, prune_daily_indices


def test_templates_installed_and_applied(es, names):
    report = install_templates(es, names, retention_days=30, echo=lambda *_: None)
    assert names.template_name("ais") in report
    es.index(index=names.messages("2026.11.22"), id="1", refresh=True,
             document={"@timestamp": "2026-11-22T00:00:00.000Z", "mmsi": "244123456", "location": {"lat": 52.0, "lon": 4.0}})
    props = es.indices.get_mapping(index=names.messages("2026.11.22"))[names.messages("2026.11.22")]["mappings"]["properties"]
    assert props["location"]["type"] == "geo_point"
    assert props["mmsi"]["type"] == "keyword"
    assert props["name"]["fields"]["keyword"]["type"] == "keyword"
    es.index(index=names.ships, id="244123456", refresh=True, document={"mmsi": "244123456"})
    ships = es.indices.get_mapping(index=names.ships)[names.ships]["mappings"]["properties"]
    assert ships["location"]["type"] == "geo_point"
    # helper indices never match the raw pattern
    for helper in (names.events, names.metrics, names.state, names.ships):
        assert not helper.startswith(names.messages(""))
    # idempotent
    install_templates(es, names, retention_days=30, echo=lambda *_: None)


def test_retention_counts_from_creation_and_keeps_a_fresh_backfill(es, names):
    """As ILM does: an index's age is counted from its creation, so a backfill of messages a year
    older than the retention is kept, and goes once the retention has passed since it was made."""
    install_templates(es, names, retention_days=None, echo=lambda *_: None)
    backfill = [names.messages(day) for day in ("2024.01.01", "2025.06.30")]
    for index in backfill + [names.messages("notadate")]:
        es.indices.create(index=index)
    now = dt.datetime.now(dt.timezone.utc)
    assert prune_daily_indices(es, names, retention_days=30, now=now) == []
    assert prune_daily_indices(es, names, retention_days=30, now=now + dt.timedelta(days=29)) == []
    deleted = prune_daily_indices(es, names, retention_days=30, now=now + dt.timedelta(days=31))
    assert sorted(deleted) == sorted(backfill)
    left = {row["index"] for row in es.cat.indices(index=names.messages_pattern, format="json")}
    assert left == {names.messages("notadate")}  # not a daily index of ours: never touched


def _aiswatch(args, home, **kw):
    import os
    import subprocess
    import sys

    env = dict(os.environ, AISWATCH_HOME=str(home), AISWATCH_METRICS__STATUS_FILE=str(home / "status.json"))
    env.pop("ES_URL", None)
    return subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, timeout=120, **kw)


def test_status_shows_the_counters_and_the_indices(es_url, es, names, tmp_path):
    """After a replay, ``aiswatch status`` shows the pipeline counters and each index's document count."""
    from aiswatch.ingest.simulation import Simulator, random_fleet

    t0 = 1_763_164_800
    sim = Simulator(random_fleet(5, seed=3, start=t0), start=t0, seed=3)
    lines = [line for _, group in sim.messages(600) for line in group]
    log = tmp_path / "feed.nmea"
    log.write_text("\n".join(lines) + "\n")
    ingest = _aiswatch(["ingest", "file", str(log), "--es", es_url, "--namespace", names.namespace,
                        "--spool-dir", str(tmp_path / "spool")], tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    es.indices.refresh(index=names.messages_pattern)
    n_docs = es.count(index=names.messages_pattern)["count"]
    assert n_docs > 0
    status = _aiswatch(["status", "--es", es_url, "--namespace", names.namespace], tmp_path)
    assert status.returncode == 1, status.stderr   # the replay has ended: nothing runs
    out = status.stdout
    assert "not running (stopped" in out and "Traceback" not in out + status.stderr
    assert f"messages_decoded{'':>8}" in out or "messages_decoded" in out
    day_index = names.messages(dt.datetime.fromtimestamp(t0, dt.timezone.utc).strftime("%Y.%m.%d"))
    row = next(line for line in out.splitlines() if line.strip().startswith(day_index))
    assert int(row.split()[1]) == n_docs
    assert any(line.strip().startswith(names.ships) for line in out.splitlines())


def test_status_with_an_unreachable_cluster_is_one_line(tmp_path):
    status = _aiswatch(["status", "--es", "http://user:pw-secret@127.0.0.1:9"], tmp_path)
    assert status.returncode == 1
    text = status.stdout + status.stderr
    assert "not reachable" in text and "Traceback" not in text and "pw-secret" not in text
    assert "no aiswatch indices" not in text


def test_a_finished_replay_is_searchable_at_once(noida, tmp_path):
    """noida-db (like Elasticsearch) makes documents searchable at its refresh interval; ``ingest file``
    refreshes when it is done, so a count straight after the replay sees every message."""
    from aiswatch.ingest.esclient import make_client
    from aiswatch.ingest.simulation import Simulator, random_fleet

    server = noida("replay")
    t0 = 1_763_164_800
    sim = Simulator(random_fleet(4, seed=5, start=t0), start=t0, seed=5)
    groups = [group for _, group in sim.messages(300)]
    log = tmp_path / "feed.nmea"
    log.write_text("\n".join(line for group in groups for line in group) + "\n")
    done = _aiswatch(["ingest", "file", str(log), "--es", server.url, "--spool-dir", str(tmp_path / "spool")],
                     tmp_path)
    assert done.returncode == 0, done.stderr
    client = make_client(server.url)
    try:
        assert client.count(index="ais-*")["count"] == len(groups)
        assert client.count(index="ships-seen")["count"] == 4
    finally:
        client.close()


def test_status_tells_a_running_process_from_a_dead_one(es_url, names, tmp_path):
    """A daemon that runs is shown running (exit 0); the same daemon killed with SIGKILL (no chance
    to say goodbye) is shown as not running, and the exit status says so (1)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path
    env = dict(os.environ, AISWATCH_HOME=str(home), AISWATCH_METRICS__STATUS_FILE=str(home / "status.json"))
    env.pop("ES_URL", None)
    daemon = subprocess.Popen([sys.executable, "-c", "from aiswatch.cli import main; main()", "ingest", "udp",
                               "--port", "0", "--es", es_url, "--namespace", names.namespace,
                               "--spool-dir", str(tmp_path / "spool")], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while not (home / "status.json").exists() and time.time() < deadline:
            time.sleep(0.2)
        running = _aiswatch(["status", "--es", es_url, "--namespace", names.namespace], tmp_path)
        assert running.returncode == 0, running.stdout + running.stderr
        assert f"(pid {daemon.pid}): running" in running.stdout
        as_json = json.loads(_aiswatch(["status", "--json", "--es", es_url], tmp_path).stdout)
        assert [p["state"] for p in as_json["processes"]] == ["running"] and as_json["cluster_reachable"]
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
    dead = _aiswatch(["status", "--es", es_url, "--namespace", names.namespace], tmp_path)
    assert dead.returncode == 1
    assert f"(pid {daemon.pid}): not running (it did not stop cleanly" in dead.stdout
    assert "cluster" in dead.stdout and "reachable" in dead.stdout
