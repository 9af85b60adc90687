"""``aiswatch run``: the daemon. Every source in the config at once, into Elasticsearch.

With no sources configured it listens on UDP 127.0.0.1:10110 (where rtl_ais and AIS-catcher send)
and plays the simulator's traffic (station ``sim``) so there is something on the map at once.
With no Elasticsearch configured it uses the embedded server (see ``ingest.cluster``).
"""
from __future__ import annotations

import logging

import click

from aiswatch.cli.options import cluster_options, no_setup_option, spool_dir_option
from aiswatch.common.secrets import redact_url
from aiswatch.ingest.counters import Counters
from aiswatch.runner import IngestOptions, exit_on_failure, run_sources, summary_lines
from aiswatch.sources import make_source

log = logging.getLogger(__name__)

DEFAULT_SOURCES = [
    {"type": "udp", "host": "127.0.0.1", "port": 10110},
    {"type": "simulate", "vessels": 60, "seed": 1},
]


@click.command()
@cluster_options
@spool_dir_option
@click.option("--simulate/--no-simulate", default=None,
              help="Also play simulated traffic (default: only when no sources are configured).")
@no_setup_option
@click.pass_context
def run(ctx, es_url, namespace, spool_dir, simulate, no_setup):
    """Run the daemon: every source in the config (embedded server + simulator when nothing is configured)."""
    from aiswatch.cli import load_config_from

    cfg = load_config_from(ctx)   # a ConfigError is one Error: line (aiswatch.cli.LazyGroup.invoke)
    specs = list(cfg.get("sources") or [])
    if not specs:
        specs = [dict(s) for s in DEFAULT_SOURCES]
        if simulate is False:
            specs = [s for s in specs if s["type"] != "simulate"]
        click.echo("no sources configured: listening on UDP 127.0.0.1:10110"
                   + (" and playing simulated traffic (source 'simulate:sim')" if simulate is not False else ""),
                   err=True)
    else:
        if simulate and not any(s.get("type") == "simulate" for s in specs):
            specs.append(dict(DEFAULT_SOURCES[1]))
        playing = any(s.get("type") == "simulate" for s in specs)
        click.echo(f"sources from {cfg.source}: " + ", ".join(_describe(s) for s in specs)
                   + ("" if playing else "; no simulated traffic (--simulate, or a source of type simulate, adds it)"),
                   err=True)
    counters = Counters()
    # built now, before the cluster: a port in use, a missing file or key is one line at once
    sources = [make_source(spec, counters) for spec in specs]

    def ready(cluster):
        names = cluster.names
        url = redact_url(cluster.url)  # printed, so never with the password of an ES_URL
        click.echo(
            f"\naiswatch is running. Data goes to {url}\n"
            f"  latest state per ship:  curl '{url}/{names.ships}/_search?size=5&pretty'\n"
            f"  raw messages (daily):   curl '{url}/{names.messages_pattern}/_count?pretty'\n"
            f"  pipeline counters:      aiswatch status\n"
            f"  a map of the ships:     aiswatch map --out ships.png\n"
            f"  behaviour detection:    aiswatch detect run --since 24h\n"
            f"Stop with Ctrl-C (everything buffered is flushed or spooled first).\n", err=True)

    opts = IngestOptions(es_url=es_url, namespace=namespace, spool_dir=spool_dir, setup=not no_setup)
    counters = run_sources(cfg, lambda c: sources, opts, counters=counters, on_ready=ready)
    click.echo("\n".join(summary_lines(counters)), err=True)
    exit_on_failure(counters, opts)


def _describe(spec: dict) -> str:
    """``udp 127.0.0.1:10110``, ``file a.nmea``: a source entry in a few words."""
    details = {k: v for k, v in spec.items() if k != "type"}
    if {"host", "port"} <= set(details):
        return f"{spec['type']} {details['host']}:{details['port']}"
    shown = ", ".join(f"{k}={v}" for k, v in list(details.items())[:3])
    return f"{spec['type']} ({shown})" if shown else str(spec["type"])
