"""``aiswatch run``: the daemon. Every source in the config at once, into Elasticsearch.

With no sources configured it listens on UDP 127.0.0.1:10110 (where rtl_ais and AIS-catcher send)
and plays the simulator's traffic (station ``sim``) so there is something on the map at once.
With no Elasticsearch configured it uses the embedded server (see ``ingest.cluster``).
"""
from __future__ import annotations

import logging
import threading
import time

import click

from ingest.counters import Counters
from ingest.esclient import redact_url
from ingest.lines import Line
from ingest.runner import IngestOptions, exit_on_failure, run_sources, summary_lines

log = logging.getLogger(__name__)

DEFAULT_SOURCES = [
    {"type": "udp", "host": "127.0.0.1", "port": 10110},
    {"type": "simulate", "vessels": 60, "seed": 1},
]


class SimulatedTrafficSource:
    """The traffic simulator as a live source: a fleet that sails from now on, messages at real time."""

    def __init__(self, vessels: int = 60, seed: int = 1, bbox=None, station: str = "sim",
                 duration_s: float = 30 * 86400, speedup: float = 1.0, counters: Counters | None = None):
        from ingest import simulate

        self.id = f"simulate:{station}"
        self._start = time.time()
        kwargs = {"seed": seed, "start": self._start}
        if bbox:
            kwargs["bbox"] = bbox
        fleet = simulate.random_fleet(vessels, **kwargs)
        self._sim = simulate.Simulator(fleet, start=self._start, seed=seed, station=station)
        self._duration = duration_s
        self._speedup = speedup
        self._closed = threading.Event()

    def lines(self):
        for msg_time, texts in self._sim.messages(self._duration):
            delay = self._start + (msg_time - self._start) / self._speedup - time.time()
            if delay > 0 and self._closed.wait(delay):
                return
            if self._closed.is_set():
                return
            now = time.time()
            for text in texts:
                yield Line(text, now, self.id)

    def close(self) -> None:
        self._closed.set()


def make_sources_from_config(specs: list[dict], counters: Counters) -> list:
    """One source per config entry (types: udp, tcp, file, aisstream, sdr, iq, simulate)."""
    sources = []
    for spec in specs:
        spec = dict(spec)
        kind = spec.pop("type", None)
        if kind == "simulate":
            sources.append(SimulatedTrafficSource(counters=counters, **spec))
        elif kind == "iq":
            from demod.sources import IQFileSource
            sources.append(IQFileSource(**spec))
        elif kind == "sdr":
            from demod.sources import SDRSource
            sources.append(SDRSource(**spec))
        else:
            from ingest.sources import make_source
            sources.append(make_source({"type": kind, **spec}, counters))
    return sources


@click.command()
@click.option("--es", "es_url", envvar="ES_URL", default=None,
              help="Elasticsearch URL (default: config, else the embedded server).")
@click.option("--namespace", default=None, help="Prefix for every index name.")
@click.option("--simulate/--no-simulate", default=None,
              help="Also play simulated traffic (default: only when no sources are configured).")
@click.option("--no-setup", is_flag=True,
              help="Do not install index templates first (they are installed by `aiswatch setup`, as another user).")
@click.pass_context
def run(ctx, es_url, namespace, simulate, no_setup):
    """Run the daemon: every source in the config (embedded server + simulator when nothing is configured)."""
    from ingest.cli import load_config_from

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

    opts = IngestOptions(es_url=es_url, namespace=namespace, setup=not no_setup)
    counters = run_sources(cfg, lambda c: make_sources_from_config(specs, c), opts, on_ready=ready)
    click.echo("\n".join(summary_lines(counters)), err=True)
    exit_on_failure(counters, opts)
