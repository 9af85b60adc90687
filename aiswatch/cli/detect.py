"""``aiswatch detect``: run the behaviour detectors once, on a schedule, or list recent events.

    aiswatch detect run --since 24h [--until TIME] [--only gap,loitering] [--json]
    aiswatch detect schedule --every 10m [--from TIME]
    aiswatch detect list [--limit 50] [--type gap]

TIME is ISO-8601 (``2026-11-20T06:00Z``), epoch seconds, or a duration back from now (``24h``).
The cluster comes from ``--es`` / ``ES_URL`` / the config (else the embedded server); thresholds
from the config's ``detect:`` section (see behavior/settings.py and docs/detection.md).
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import time

import click

from aiswatch.behavior.events import iso
from aiswatch.cli.options import cluster_options
from aiswatch.common import times
from aiswatch.common.durations import format_duration, parse_duration
from aiswatch.common.errors import ConfigError

log = logging.getLogger(__name__)


def parse_time(text: str | None, now_ms: int, option: str = "time") -> int | None:
    """Epoch ms from 'now', ISO-8601, epoch seconds, or a duration before now ('24h', '90m', '2d')."""
    if text is None:
        return None
    try:
        return int(times.parse_time(text, now=now_ms / 1000.0, what=option) * 1000)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _open(ctx, es_url, namespace):
    from aiswatch.cli import load_config_from
    from aiswatch.cluster import connect

    cfg = load_config_from(ctx)
    cluster = connect(cfg, es_url=es_url, namespace=namespace)
    return cfg, cluster


def _detector(cfg, cluster):
    from aiswatch.behavior.runner import Detector

    return Detector(cluster.client, cluster.names, cfg)


def event_row(e) -> str:
    names = "/".join(n for n in e.names if n) or ""
    where = f"{e.lat:.4f},{e.lon:.4f}" if e.lat is not None else "-"
    dur = (e.end_ms - e.start_ms) / 3_600_000
    return (f"{e.type:<10} {e.subtype:<18} {e.severity:<6} {','.join(sorted(e.mmsi)):<20} {iso(e.start_ms)[:16]:<17} "
            f"{iso(e.end_ms)[:16]:<17} {dur:6.1f}h {where:<20} {names[:30]}")


def _raise_refusal(exc: Exception, client, prefix: str = "") -> None:
    """A 4xx from the cluster as one line (click exits 1); anything else is left to the caller."""
    from aiswatch.behavior.cluster import ServerRefused, is_refusal, refused

    if isinstance(exc, ServerRefused):
        raise click.ClickException(prefix + str(exc)) from None
    if is_refusal(exc):
        raise click.ClickException(prefix + str(refused(client, "request", exc))) from None


HEADER = (f"{'type':<10} {'subtype':<18} {'sev':<6} {'mmsi':<20} {'start (UTC)':<17} {'end (UTC)':<17} "
          f"{'dur':>7} {'lat,lon':<20} names")



@click.group()
def detect():
    """Behaviour detection as Elasticsearch aggregations: gaps, loitering, encounters, spoofing, identity."""


@detect.command("run")
@click.option("--since", default="24h", show_default=True, help="Window start: ISO time, epoch s or duration ago.")
@click.option("--until", default=None, help="Window end (default: now).")
@click.option("--only", default=None,
              help="Comma-separated detectors: gap,loitering,encounter,gear,spoofing,identity.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per stored event (its stored id) instead of the table.")
@click.option("--dry-run", is_flag=True, help="Detect and print, but write no events.")
@cluster_options
@click.pass_context
def run_command(ctx, since, until, only, as_json, dry_run, es_url, namespace):
    """Run the detectors once over a window and print the events."""
    from aiswatch.behavior.events import now_ms

    now = now_ms()
    since_ms, until_ms = parse_time(since, now, "--since"), parse_time(until, now, "--until") or now
    if since_ms >= until_ms:
        raise click.BadParameter(f"--since ({iso(since_ms)}) must be before --until ({iso(until_ms)})")
    cfg, cluster = _open(ctx, es_url, namespace)
    try:
        detector = _detector(cfg, cluster)
        try:
            result = detector.run(since_ms, until_ms, only=only.split(",") if only else None, write=not dry_run,
                                  full_events=True)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a refusal is one line, anything else a traceback
            _raise_refusal(exc, cluster.client)
            raise
        if as_json:
            for e in result.events:
                click.echo(json.dumps(e.as_json(), ensure_ascii=False))
        else:
            click.echo(HEADER)
            for e in result.events:
                click.echo(event_row(e))
            w = result.written
            click.echo(f"{len(result.events)} events in {iso(since_ms)} .. {iso(until_ms)} "
                       f"({w.created} new, {w.updated} extended/updated, {w.unchanged} unchanged); "
                       f"{result.vessels} vessels, {result.slots} slots, {result.seconds:.1f} s", err=True)
    finally:
        cluster.close()


@detect.command("schedule")
@click.option("--every", default=None, help="Period between runs, at least a minute: 1m, 10m, 1h "
              "(default: detect.schedule.every, 10m).")
@click.option("--from", "start", default=None,
              help="Where to start when no watermark is stored yet (default: detect.schedule.initial_lookback_hours ago).")
@click.option("--only", default=None, help="Comma-separated detectors.")
@click.option("--max-runs", type=int, default=None, help="Stop after this many runs (default: run forever).")
@cluster_options
@click.pass_context
def schedule_command(ctx, every, start, only, max_runs, es_url, namespace):
    """Run the detectors for ever, resuming from the watermark stored in Elasticsearch."""
    from aiswatch.behavior.events import now_ms
    from aiswatch.behavior.runner import read_watermark, run_scheduled

    if every is not None:   # a bad period is said before anything is opened
        _period(every)
    cfg, cluster = _open(ctx, es_url, namespace)
    stopping = {"flag": False}

    def on_signal(signum, frame):
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        detector = _detector(cfg, cluster)
        sched = detector.settings["schedule"]
        every_s = _period(every or sched["every"])
        start_ms = parse_time(start, now_ms(), "--from")
        click.echo(_plan(detector, read_watermark(detector.client, detector.names), start_ms, every_s, now_ms()),
                   err=True)

        def sleep(seconds):
            end = time.monotonic() + seconds
            while not stopping["flag"] and time.monotonic() < end:
                time.sleep(min(0.2, seconds))

        def report(result):
            w = result.written
            click.echo(f"{iso(result.since_ms)} .. {iso(result.until_ms)}: {len(result.events)} events "
                       f"({w.created} new, {w.updated} updated, {w.unchanged} unchanged) {result.seconds:.1f} s")
            sys.stdout.flush()

        try:
            runs = run_scheduled(detector, every_s=every_s, only=only.split(",") if only else None,
                                 start_ms=start_ms, max_runs=max_runs,
                                 stop=lambda: stopping["flag"], on_result=report, sleep=sleep)
        except Exception as exc:  # noqa: BLE001 - a refusal stops the schedule with one line
            _raise_refusal(exc, cluster.client, "detect schedule stopped: ")
            raise
        click.echo(f"stopped after {runs} runs", err=True)
    finally:
        cluster.close()


MIN_PERIOD_S = 60.0


def _period(text) -> float:
    """Seconds of a schedule period, at least a minute (a shorter one only spins: runs read whole slots)."""
    try:
        seconds = parse_duration(text, "--every")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--every") from None
    if seconds < MIN_PERIOD_S:
        raise click.BadParameter(f"{text!r} is shorter than a minute: runs read whole 10-minute slots, so a "
                                 "run every minute is already more than enough", param_hint="--every")
    return seconds


def _plan(detector, watermark: int | None, start_ms: int | None, every_s: float, now: int) -> str:
    """What the schedule will do and when its first run is due, and why then."""
    from aiswatch.behavior.tracks import align_down

    sched = detector.settings["schedule"]
    slot_ms, lag_ms = detector.slot_ms, int(sched["lag_minutes"] * 60_000)
    if watermark is not None:
        origin = f"from the stored watermark {iso(watermark)}"
    elif start_ms is not None:
        watermark, origin = start_ms, f"from {iso(start_ms)} (--from)"
    else:
        watermark = now - lag_ms - int(sched["initial_lookback_hours"] * 3_600_000)
        origin = f"from {iso(watermark)} ({sched['initial_lookback_hours']:g} h back: no watermark stored yet)"
    first_end = align_down(min(now - lag_ms, watermark + int(sched["max_window_hours"] * 3_600_000)), slot_ms)
    if first_end > watermark:
        due = "now"
    else:   # the first whole slot after the watermark must end, and the lag pass, before it is read
        ready = align_down(watermark, slot_ms) + slot_ms + lag_ms
        due = f"at {iso(ready)[11:19]}Z (in {format_duration(max(0, (ready - now) // 1000))}: the first " \
              f"{slot_ms // 60_000}-minute slot after it closes, {sched['lag_minutes']:g} min behind the ingest)"
    return (f"detect schedule: a run every {format_duration(every_s)} {origin}, over windows that end on "
            f"{slot_ms // 60_000}-minute slot boundaries {sched['lag_minutes']:g} min behind now (the ingest may "
            f"still be writing the newest minutes); first run due {due}; one line per run")


@detect.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Show at most this many events, the most recent first.")
@click.option("--type", "types", multiple=True, help="Only these event types (repeatable).")
@click.option("--since", default=None, help="Only events that ended after this (ISO, epoch s or duration ago).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event (as stored) instead of the table.")
@cluster_options
@click.pass_context
def list_command(ctx, limit, types, since, as_json, es_url, namespace):
    """Show the most recent events."""
    from aiswatch.behavior.events import Event, EventStore, now_ms

    cfg, cluster = _open(ctx, es_url, namespace)
    try:
        docs = EventStore(cluster.client, cluster.names.events).recent(limit, list(types) or None,
                                                                      parse_time(since, now_ms(), "--since"))
        if not as_json:
            click.echo(HEADER)
        for doc in docs:
            e = Event.from_document(doc)
            click.echo(json.dumps(e.as_json() | {"id": doc["_id"]}, ensure_ascii=False) if as_json else event_row(e))
    finally:
        cluster.close()
