"""``aiswatch ingest <kind>``: one source into Elasticsearch.

There is one command per kind of source in the registry (``aiswatch.sources``), made from that
kind's settings: its options are the keys of its ``sources:`` entry in aiswatch.yaml (``_`` read
as ``-``), checked by the same schema, so a value is judged the same way from either place.
"""
from __future__ import annotations

import sys
import typing
from typing import Any

import click
from pydantic import ValidationError

from aiswatch.cli.options import delivery_options
from aiswatch.common.durations import parse_duration
from aiswatch.common.errors import ConfigError
from aiswatch.common.schema import describe_errors
from aiswatch.runner import IngestOptions, exit_on_failure, run_sources, summary_lines
from aiswatch.sources import KINDS, source_type, summary


def _run(ctx, opts: IngestOptions, make_sources, counters=None, report=None):
    """Run the sources; print the summary (and ``report()``'s lines), exit 1 on a failure."""
    from aiswatch.cli import load_config_from

    counters = run_sources(load_config_from(ctx), make_sources, opts, counters=counters)
    click.echo("\n".join(summary_lines(counters)), err=True)
    if report is not None:
        click.echo(report(), err=True)
    exit_on_failure(counters, opts)
    return counters


def _is_list(annotation: Any) -> bool:
    kinds = {typing.get_origin(a) or a for a in (annotation, *typing.get_args(annotation))}
    return bool(kinds & {list, tuple})


def _choices(annotation: Any) -> list[str] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) is typing.Literal:
            return [str(v) for v in typing.get_args(candidate)]
    return None


def _params(settings) -> tuple[list[click.Parameter], dict[str, str]]:
    """The click parameters of a settings model, and each parameter's name as the user typed it."""
    params: list[click.Parameter] = []
    shown: dict[str, str] = {}
    for name, info in settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        cli = extra.get("cli", "--" + name.replace("_", "-"))
        if cli is None:
            continue
        if cli == "argument":
            params.append(click.Argument([name], nargs=-1 if _is_list(info.annotation) else 1,
                                         required=info.is_required()))
            shown[name] = name.upper()
            continue
        help_text = info.description or ""
        if not info.is_required() and info.default not in (None, [], ()):
            help_text += f"  [default: {info.default}]"
        if info.annotation is bool:
            decl = f"{cli}/--no-{cli[2:]}"
            params.append(click.Option([decl, name], default=None, help=help_text))
        else:
            choices = _choices(info.annotation)
            params.append(click.Option([cli, name], type=click.Choice(choices) if choices else click.STRING,
                                       multiple=bool(extra.get("multiple")), required=info.is_required(),
                                       help=help_text))
        shown[name] = cli
    return params, shown


class UsageLine(click.ClickException):
    """A value on the command line that the source's settings refuse: one ``Error:`` line, status 2."""

    exit_code = 2


def _settings_from(kind, values: dict, shown: dict[str, str]):
    given = {k: v for k, v in values.items() if v is not None and v != ()}
    try:
        return kind.settings.model_validate(given)
    except ValidationError as exc:
        problems = describe_errors(exc, kind.settings)
        loc, message = problems[0]
        hint = shown.get(str(loc[0])) if loc else None
        raise UsageLine(f"invalid value for {hint}: {message}" if hint else message) from None


# options of `aiswatch ingest file` / `iq` that are about the run, not the source
_PARALLEL = click.Option(["--parallel/--no-parallel"], default=True, show_default=True,
                         help="At --rate max, read and decode in a second process while this one indexes (two cores).")
_MAX_WAIT = click.Option(["--max-wait"], default=None, metavar="DURATION",
                         help="How long to wait for Elasticsearch while it is down (retrying with backoff) before "
                              "giving up with exit status 1, the documents kept in the spool (default: "
                              "sink.max_wait, 10m).")


def _command(name: str) -> click.Command:
    kind = source_type(name)
    params, shown = _params(kind.settings)
    if name == "file":
        params.append(_PARALLEL)
    if kind.finite:
        params.append(_MAX_WAIT)

    @delivery_options
    def callback(ctx, opts: IngestOptions, **values):
        from aiswatch.ingest.counters import Counters

        parallel = values.pop("parallel", False)
        max_wait = values.pop("max_wait", None)
        if name == "file" and values.get("progress") is None:
            values["progress"] = sys.stderr.isatty()
        settings = _settings_from(kind, values, shown)
        if max_wait is not None:
            try:
                opts.max_wait = parse_duration(max_wait, "--max-wait")
            except ConfigError as exc:
                raise UsageLine(f"invalid value for --max-wait: {exc}") from None
        opts.progress = bool(getattr(settings, "progress", False))
        counters = Counters()
        source = _open(kind, settings, counters)   # before anything starts: a missing file, dongle or key
        opts.replay = kind.finite
        opts.decode_process = bool(parallel) and getattr(settings, "rate", None) == "max"
        if opts.decode_process:   # the decode process builds its own, counting in its counters
            make = lambda run_counters: [kind.build(settings, run_counters)]  # noqa: E731
        else:
            make = lambda run_counters: [source]  # noqa: E731
        report = (lambda: " ".join(f"{k}={v}" for k, v in source.stats.items())) if hasattr(source, "stats") else None
        return _run(ctx, opts, make, counters=counters, report=report)

    delivery = list(reversed(getattr(callback, "__click_params__", [])))  # what the decorators declared
    return click.Command(name, callback=callback, params=params + delivery, help=summary(name))


def _open(kind, settings, counters):
    """Build the source before anything starts, so a missing dongle, file or key, or a port in use,
    is one clear line at once (aiswatch.cli.errors says it)."""
    try:
        return kind.build(settings, counters)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise click.ClickException(str(exc)) from None


class IngestGroup(click.Group):
    """``aiswatch ingest``: its commands come from the source registry, made when called."""

    def list_commands(self, ctx):
        return sorted(KINDS)

    def get_command(self, ctx, name):
        return _command(name) if name in KINDS else None

    def format_commands(self, ctx, formatter):
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary(name)) for name in sorted(KINDS)])


@click.group(cls=IngestGroup)
def ingest():
    """Ingest from one source: udp, tcp, file, aisstream, sdr, iq, simulate."""
