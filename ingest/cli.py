"""The ``aiswatch`` command line.

Each command lives beside the code it drives and is loaded only when called, so ``aiswatch ingest
udp`` does not import numpy/scipy and ``aiswatch demod`` does not import the Elasticsearch client.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys

import click

COMMANDS = {
    "run": ("ingest.daemon:run", "Run the daemon: every source in the config (embedded server + simulator when nothing is configured)."),
    "ingest": ("ingest.commands:ingest", "Ingest from one source: udp, tcp, file, aisstream, sdr, iq."),
    "setup": ("ingest.setup:setup", "Install index templates (and Kibana saved objects with --kibana)."),
    "status": ("ingest.status:status", "Show the pipeline counters of a running daemon and the cluster's indices."),
    "simulate": ("ingest.simulate:simulate_command", "Generate realistic AIS traffic as NMEA (file, stdout or UDP)."),
    "demod": ("demod.cli:demod", "Software AIS receiver: IQ recording or RTL-SDR in, NMEA out."),
    "detect": ("behavior.cli:detect", "Behaviour detection: gaps, loitering, encounters, spoofing, identity."),
    "map": ("kibana.render:map_command", "Render the vessel map (the Kibana Vega spec) from live data to PNG/SVG/HTML."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx):
        """Run the subcommand; a configuration problem found on the way (a bad URL, a secret in the
        config file, a missing key file) is one ``Error:`` line, never a traceback. The config
        module is not imported for this: a command that never loaded it cannot raise its error
        (``aiswatch demod`` starts without YAML and the Elasticsearch client)."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            config = sys.modules.get("ingest.config")
            if config is None or not isinstance(exc, config.ConfigError):
                raise
            from ingest.esclient import redact_url

            raise click.ClickException(redact_url(str(exc))) from None

    def format_commands(self, ctx, formatter):
        # list from the table, without importing every module just to print --help
        rows = [(name, help_text) for name, (_, help_text) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), envvar="AISWATCH_CONFIG",
              help="YAML configuration file (default: ./aiswatch.yaml if present).")
@click.option("--log-level", default=lambda: os.environ.get("AISWATCH_LOG_LEVEL", "INFO"), show_default="INFO",
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.version_option(package_name="aiswatch")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str) -> None:
    """aiswatch: AIS receivers in, Elasticsearch and Kibana out."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level.upper() != "DEBUG":
        # one line per HTTP request at INFO, and a traceback per retry at WARNING: our own
        # components say once, in one line, what failed (the sink: "Elasticsearch unavailable")
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def load_config_from(ctx: click.Context):
    """The Config for this invocation (file named by --config, then environment overrides)."""
    from ingest.config import load_config

    root = ctx.find_root()
    path = (root.obj or {}).get("config_path")
    return load_config(path)
