"""``aiswatch run``: the daemon. Every source in the config at once, into Elasticsearch.

With no sources configured it listens on UDP 127.0.0.1:10110 (where rtl_ais and AIS-catcher send)
and plays the simulator's traffic (station ``sim``) so there is something on the map at once.
With no Elasticsearch configured it uses the embedded server (see ``ingest.cluster``).
"""
from __future__ import annotations

import logging

import click

from aiswatch.ingest.counters import Counters
from aiswatch.common.secrets import redact_url
from aiswatch.runner import IngestOptions, exit_on_failure, run_sources, summary_lines

log = logging.getLogger(__name__)

DEFAULT_SOURCES = [
    {"type": "udp", "host": "127.0.0.1", "port": 10110},
    {"type": "simulate", "vessels": 60, "seed": 1},
]


def make_sources_from_config(specs: list[dict], counters: Counters) -> list:
    """One source per config entry (types: udp, tcp, file, aisstream, sdr, iq, simulate)."""
    sources = []
    for spec in specs:
        spec = dict(spec)
        kind = spec.pop("type", None)
        if kind == "simulate":
            from aiswatch.ingest.sources.simulate import SimulatedTrafficSource
            sources.append(SimulatedTrafficSource(counters=counters, **spec))
        elif kind == "iq":
            from aiswatch.demod.sources import IQFileSource
            sources.append(IQFileSource(**spec))
        elif kind == "sdr":
            from aiswatch.demod.sources import SDRSource
            sources.append(SDRSource(**spec))
        else:
            from aiswatch.ingest.sources import make_source
            sources.append(make_source({"type": kind, **spec}, counters))
    return sources


@click.command()
@click.option("--es", "es_url", envvar="ES_URL", default=None,
              help="Elasticsearch URL (default: config, else the embedded server).")
@click.option("--namespace", default=None, help="Prefix for every index name.")
@click.option("--spool-dir", default=None,
              help="Disk spool for documents while Elasticsearch is slow or down (default: one of this "
                   "process's own under sink.spool_dir).")
@click.option("--simulate/--no-simulate", default=None,
              help="Also play simulated traffic (default: only when no sources are configured).")
@click.pass_context
def run(ctx, es_url, namespace, spool_dir, simulate):
    """Run the daemon: every source in the config (embedded server + simulator when nothing is configured)."""
    from aiswatch.cli import load_config_from

    cfg = load_config_from(ctx)   # a ConfigError is one Error: line (ingest.cli.LazyGroup.invoke)
    specs = list(cfg.get("sources") or [])
    if not specs:
        specs = [dict(s) for s in DEFAULT_SOURCES]
        if simulate is False:
            specs = [s for s in specs if s["type"] != "simulate"]
        click.echo("no sources configured: listening on UDP 127.0.0.1:10110"
                   + (" and playing simulated traffic (source 'simulate:sim')" if simulate is not False else ""),
                   err=True)
    elif simulate:
        specs.append(dict(DEFAULT_SOURCES[1]))

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

    opts = IngestOptions(es_url=es_url, namespace=namespace, spool_dir=spool_dir)
    counters = run_sources(cfg, lambda c: make_sources_from_config(specs, c), opts, on_ready=ready)
    click.echo("\n".join(summary_lines(counters)), err=True)
    exit_on_failure(counters, opts)
