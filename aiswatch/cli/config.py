"""``aiswatch config check [FILE]``: read a configuration as the other commands would, say what is
wrong with it, or print the effective configuration (defaults, file and environment merged) with
every secret redacted."""
from __future__ import annotations

import click
import yaml


@click.group("config")
def config_command():
    """Check a configuration file and show the effective configuration."""


@config_command.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.pass_context
def check(ctx, path):
    """Check FILE (default: --config, else ./aiswatch.yaml) and print the effective configuration."""
    from aiswatch.config import load_config

    root = ctx.find_root()
    path = path or (root.obj or {}).get("config_path")
    cfg = load_config(path)   # a ConfigError is one Error: line listing every problem (status 1)
    click.echo(f"# effective configuration: defaults <- {cfg.source} <- environment (secrets redacted)")
    click.echo(yaml.safe_dump(cfg.redacted(), sort_keys=False, default_flow_style=False).rstrip())
    click.echo(f"{cfg.source}: ok", err=True)
