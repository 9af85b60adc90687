"""``aiswatch status``: which aiswatch processes run, their counters, and the cluster as it is now.

Every ingesting process writes a status file every few seconds (``metrics.status_file``; a second
process beside the daemon writes ``status-<pid>.json`` next to it) and marks it stopped when it
ends. A process counts as running only if its pid is alive on this host and its file is fresh;
the cluster is probed, never taken from what a process last saw. Exit status 0 when a process
runs and the cluster answers, 1 otherwise (so scripts and healthchecks can use it).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from aiswatch.cli.options import cluster_options

def status_files(path: Path) -> list[Path]:
    """The status file and its per-process siblings (``status-<pid>.json``)."""
    siblings = sorted(path.parent.glob(f"{path.stem}-*{path.suffix}")) if path.parent.is_dir() else []
    return ([path] if path.is_file() else []) + siblings


@click.command()
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print each process's status (with its state) as JSON.")
@click.pass_context
def status(ctx, es_url, namespace, as_json):
    """Show which aiswatch processes run, their counters, and the cluster's indices."""
    from aiswatch.cli import load_config_from
    from aiswatch.ingest.metrics import process_state, render_status

    cfg = load_config_from(ctx)
    path = Path(cfg["metrics"]["status_file"])
    processes = []
    for file in status_files(path):
        try:
            snapshot = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        snapshot["state"] = process_state(snapshot)
        snapshot["status_file"] = str(file)
        processes.append(snapshot)
    running = [p for p in processes if p["state"] == "running"]
    reachable = _print_cluster(cfg, es_url, namespace, quiet=as_json)
    if as_json:
        click.echo(json.dumps({"processes": processes, "cluster_reachable": reachable}, indent=2, sort_keys=True))
    else:
        if not processes:
            click.echo(f"no aiswatch process has run here (no status file at {path}): start one with aiswatch run")
        now = time.time()
        for snapshot in processes:
            name = f"{snapshot.get('process', '?')} (pid {snapshot.get('pid', '?')})"
            if snapshot["state"] == "running":
                click.echo(f"{name}: running, status written {now - float(snapshot['written_at']):.0f} s ago")
                click.echo(render_status(snapshot))
            elif snapshot["state"] == "stopped":
                ago = now - float(snapshot["stopped_at"])
                click.echo(f"{name}: not running (stopped {_ago(ago)} ago); its last counters:")
                click.echo(render_status(snapshot, live=False))
            else:
                ago = now - float(snapshot.get("written_at") or 0)
                click.echo(f"{name}: not running (it did not stop cleanly; last sign of life {_ago(ago)} ago)")
    if not running or not reachable:
        ctx.exit(1)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _print_cluster(cfg, es_url, namespace, quiet: bool) -> bool:
    """Probe the cluster now and list aiswatch's indices; False if it does not answer."""
    import logging

    from aiswatch.cluster import connect
    from aiswatch.common.errors import ConfigError
    from aiswatch.common.secrets import redact_url

    echo = (lambda *a, **k: None) if quiet else click.echo
    # an unreachable cluster is one line here, not the transport's retry tracebacks
    logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
    try:
        cluster = connect(cfg, es_url, namespace, start_embedded=False)
    except ConfigError:
        raise  # a bad URL is the caller's to fix: one Error: line from the command line
    except Exception as exc:
        echo(f"cluster: not reachable ({type(exc).__name__}: {redact_url(str(exc))})")
        return False
    try:
        try:
            cluster.client.options(request_timeout=5, max_retries=0).info()
        except Exception as exc:
            echo(f"cluster {redact_url(cluster.url)}: not reachable ({type(exc).__name__})")
            return False
        names = cluster.names
        rows = []
        for pattern in (names.messages_pattern, names.ships, names.events, names.metrics):
            try:
                rows += cluster.client.cat.indices(index=pattern, format="json", expand_wildcards="open")
            except Exception:
                continue
        echo(f"cluster {redact_url(cluster.url)}: reachable")
        for row in sorted(rows, key=lambda r: r["index"]):
            echo(f"  {row['index']:<40} {row.get('docs.count', '?'):>10} docs")
        if not rows:
            echo("  no aiswatch indices yet")
        return True
    finally:
        cluster.client.close()
