"""``aiswatch status``: the running daemon's counters (from its status file) and the cluster's indices."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click


@click.command()
@click.option("--es", "es_url", envvar="ES_URL", default=None, help="Elasticsearch URL (default: config / embedded).")
@click.option("--namespace", default=None, help="Prefix for every index name.")
@click.option("--json", "as_json", is_flag=True, help="Print the status file as JSON.")
@click.pass_context
def status(ctx, es_url, namespace, as_json):
    """Show the pipeline counters of a running daemon and the cluster's indices."""
    from aiswatch.cli import load_config_from
    from aiswatch.ingest.metrics import render_status

    cfg = load_config_from(ctx)
    path = Path(cfg["metrics"]["status_file"])
    snapshot = None
    if path.is_file():
        snapshot = json.loads(path.read_text())
    if as_json:
        click.echo(json.dumps(snapshot or {}, indent=2, sort_keys=True))
        return
    if snapshot is None:
        click.echo(f"no status file at {path}: is a daemon running (aiswatch run / aiswatch ingest …)?")
    else:
        age = time.time() - float(snapshot.get("written_at", 0) or 0)
        click.echo(f"daemon status ({path}, written {age:.0f} s ago):")
        click.echo(render_status(snapshot))
    _print_indices(cfg, es_url, namespace)


def _print_indices(cfg, es_url, namespace) -> None:
    import logging

    from aiswatch.cluster import connect
    from aiswatch.config import ConfigError
    from aiswatch.common.secrets import redact_url

    # an unreachable cluster is one line here, not the transport's retry tracebacks
    logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
    try:
        cluster = connect(cfg, es_url, namespace, start_embedded=False)
    except ConfigError:
        raise  # a bad URL is the caller's to fix: one Error: line from the command line
    except Exception as exc:
        click.echo(f"cluster: not reachable ({type(exc).__name__}: {redact_url(str(exc))})")
        return
    try:
        try:
            cluster.client.options(request_timeout=5, max_retries=0).info()
        except Exception as exc:
            click.echo(f"cluster {redact_url(cluster.url)}: not reachable ({type(exc).__name__})")
            return
        names = cluster.names
        rows = []
        for pattern in (names.messages_pattern, names.ships, names.events, names.metrics):
            try:
                rows += cluster.client.cat.indices(index=pattern, format="json", expand_wildcards="open")
            except Exception:
                continue
        click.echo(f"cluster {redact_url(cluster.url)}:")
        for row in sorted(rows, key=lambda r: r["index"]):
            click.echo(f"  {row['index']:<40} {row.get('docs.count', '?'):>10} docs")
        if not rows:
            click.echo("  no aiswatch indices yet")
    finally:
        cluster.client.close()
