"""``aiswatch map``: render a Kibana Vega spec (``aiswatch.kibana.render``) from live data to PNG,
SVG or a self-contained HTML page, with land and coastlines under the data."""
from __future__ import annotations

import datetime as dt
import logging

import click

from aiswatch.cli.options import cluster_options
from aiswatch.common.durations import parse_duration
from aiswatch.common.times import iso_from_seconds, parse_iso
from aiswatch.kibana import SPEC_NAMES, load_spec


def _iso(t: dt.datetime) -> str:
    return iso_from_seconds(t.timestamp())


@click.command("map")
@cluster_options
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .png, .svg or .html (a self-contained page).")
@click.option("--spec", "spec_name", default="vessel_map", show_default=True, type=click.Choice(SPEC_NAMES),
              help="Which Kibana Vega spec to render.")
@click.option("--since", default="1h", show_default=True, help="Time range ending now (30m, 6h, 2d).")
@click.option("--start", default=None, help="Start of the time range (ISO 8601, UTC if no zone); overrides --since.")
@click.option("--end", default=None, help="End of the time range (ISO 8601; default now).")
@click.option("--width", default=960, show_default=True)
@click.option("--height", default=640, show_default=True)
@click.option("--land/--no-land", default=True, show_default=True,
              help="Draw land and coastlines (Natural Earth 1:10m, shipped with aiswatch) under the data.")
@click.pass_context
def map_command(ctx, es_url, namespace, out, spec_name, since, start, end, width, height, land):
    """Render the vessel map (the Kibana Vega spec) from live data to PNG/SVG/HTML."""
    from aiswatch.cli import load_config_from
    from aiswatch.cluster import connect
    from aiswatch.common.secrets import redact_url
    from aiswatch.kibana.placeholders import KibanaContext, RenderError
    from aiswatch.kibana.render import render_spec, vl_convert

    try:
        t_end = parse_iso(end) if end else dt.datetime.now(dt.timezone.utc)
        t_start = parse_iso(start) if start else t_end - dt.timedelta(seconds=parse_duration(since, "--since"))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    kctx = KibanaContext(t_start, t_end)
    try:
        vl_convert()  # before any query: a missing library is a setup problem, not a data one
    except RenderError as exc:
        raise click.ClickException(str(exc)) from None
    # an unreachable cluster is one line, not the transport's retry tracebacks (as in aiswatch status)
    logging.getLogger("elastic_transport").setLevel(logging.CRITICAL)
    cfg = load_config_from(ctx)
    try:
        # nothing configured: the embedded server's data, as aiswatch ingest left it (started
        # here if no daemon runs it)
        cluster = connect(cfg, es_url, namespace)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError:  # the client's message repeats the URL, password included
        url = redact_url(str(es_url or cfg["elasticsearch"].get("url")))
        raise click.ClickException(f"not a valid Elasticsearch URL: {url} (expected e.g. http://localhost:9200)") from None
    try:
        try:
            cluster.client.options(request_timeout=10, max_retries=0).info()
        except Exception as exc:
            raise click.ClickException(f"Elasticsearch at {redact_url(cluster.url)} is not reachable "
                                       f"({type(exc).__name__})") from None
        title = f"aiswatch {spec_name.replace('_', ' ')}  {_iso(t_start)[:16]} .. {_iso(t_end)[:16]} UTC"
        counts, problems = render_spec(load_spec(spec_name), cluster.client, kctx, out, cluster.names.namespace,
                                       width, height, title, land)
    except RenderError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        cluster.close()
    rows = ", ".join(f"{name}: {n}" for name, n in counts.items())
    click.echo(f"wrote {out} ({rows})")
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    if not any(counts.values()):
        click.echo(f"warning: no data in {_iso(t_start)} .. {_iso(t_end)}; try a longer --since", err=True)
