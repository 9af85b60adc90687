"""``aiswatch setup``: install the index templates and retention (``aiswatch.es_templates.install``),
and optionally import the Kibana saved objects (``aiswatch.kibana.saved_objects``)."""
from __future__ import annotations

import click

from aiswatch.es_templates.install import install_templates


@click.command()
@click.option("--es", "es_url", envvar="ES_URL", help="Elasticsearch URL (default: config, else the embedded server).")
@click.option("--namespace", default=None, help="Prefix for every index and template name.")
@click.option("--kibana", "kibana_url", default=None, help="Also import the saved objects into this Kibana.")
@click.option("--kibana-wait", default=300.0, show_default=True, help="Seconds to wait for Kibana to be ready.")
@click.option("--kibana-space", default=None, help="Kibana space id (default: the default space).")
@click.pass_context
def setup(ctx, es_url, namespace, kibana_url, kibana_wait, kibana_space):
    """Install index templates (and Kibana saved objects with --kibana)."""
    from aiswatch.cli import load_config_from
    from aiswatch.cluster import connect

    cfg = load_config_from(ctx)
    cluster = connect(cfg, es_url, namespace)
    namespace = cluster.names.namespace
    try:
        install_templates(cluster.client, cluster.names, cfg["elasticsearch"].get("retention_days"), echo=click.echo)
    finally:
        cluster.close()
    if kibana_url:
        from aiswatch.kibana.saved_objects import import_saved_objects

        results = import_saved_objects(kibana_url, wait_seconds=kibana_wait, space=kibana_space,
                                       namespace=namespace)
        failed = 0
        for row in results:
            ok = row.get("success", False)
            failed += not ok
            click.echo(f"kibana {row.get('type')} {row.get('id')}: {'ok' if ok else 'FAILED ' + str(row.get('error'))}")
        if failed:
            raise click.ClickException(f"{failed} saved objects failed to import")
