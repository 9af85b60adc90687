"""The ``aiswatch`` command line.

Each command lives beside the code it drives and is loaded only when called, so ``aiswatch ingest
udp`` does not import numpy/scipy and ``aiswatch demod`` does not import the Elasticsearch client.
"""
from __future__ import annotations

import importlib
import logging
import sys
import os

import click

COMMANDS = {
    "run": ("aiswatch.cli.run:run", "Run the daemon: every source in the config (embedded server + simulator when nothing is configured)."),
    "ingest": ("aiswatch.cli.ingest:ingest", "Ingest from one source: udp, tcp, file, aisstream, sdr, iq."),
    "setup": ("aiswatch.cli.setup:setup", "Install index templates (and Kibana saved objects with --kibana)."),
    "status": ("aiswatch.cli.status:status", "Show the pipeline counters of a running daemon and the cluster's indices."),
    "simulate": ("aiswatch.cli.simulate:simulate_command", "Generate realistic AIS traffic as NMEA (file, stdout or UDP)."),
    "demod": ("aiswatch.cli.demod:demod", "Software AIS receiver: IQ recording or RTL-SDR in, NMEA out."),
    "detect": ("aiswatch.cli.detect:detect", "Behaviour detection: gaps, loitering, encounters, spoofing, identity."),
    "config": ("aiswatch.cli.config:config_command", "Check a configuration file and show the effective configuration."),
    "map": ("aiswatch.cli.map:map_command", "Render the vessel map (the Kibana Vega spec) from live data to PNG/SVG/HTML."),
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
        """Run the subcommand; an expected failure (``aiswatch.cli.errors``) is one ``Error:`` line
        and its exit status, a traceback only with --debug."""
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit as exc:   # a command's ctx.exit(n): the process's status
            sys.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            from aiswatch.cli.errors import explain, one_line

            explained = explain(exc)
            if explained is None or (ctx.obj or {}).get("debug"):
                raise
            status, message = explained
            click.echo(f"Error: {one_line(message)}", err=True)
            sys.exit(status)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's main, with a usage error as one ``Error:`` line (naming the command's --help)
        instead of click's usage block."""
        prog_name = prog_name or "aiswatch"
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "aiswatch"
            click.echo(f"Error: {exc.format_message()} (see {where} --help)", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)

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
@click.option("--debug", is_flag=True, help="Show the traceback of every failure (and log at DEBUG).")
@click.version_option(package_name="aiswatch")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str, debug: bool) -> None:
    """aiswatch: AIS receivers in, Elasticsearch and Kibana out."""
    if debug:
        log_level = "DEBUG"
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level.upper() != "DEBUG":
        # one line per HTTP request at INFO, and a traceback per retry at WARNING: our own
        # components say once, in one line, what failed (the sink: "Elasticsearch unavailable")
        logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["debug"] = debug


def load_config_from(ctx: click.Context):
    """The Config for this invocation (file named by --config, then environment overrides)."""
    from aiswatch.config import load_config

    root = ctx.find_root()
    path = (root.obj or {}).get("config_path")
    return load_config(path)
