"""``aiswatch setup``: install the index templates and retention (``aiswatch.es_templates.install``),
and optionally import the Kibana saved objects (``aiswatch.kibana.saved_objects``)."""
from __future__ import annotations

import os

import click

from aiswatch.cli.options import cluster_options
from aiswatch.es_templates.install import install_templates


def kibana_credentials(cfg, environ=None) -> dict:
    """Credentials for Kibana's API: none here when ``KIBANA_*`` ones are in the environment (the
    import reads those), else the Elasticsearch ones as the cluster connection reads them, key files
    (``password_file``, ``api_key_file``) included."""
    from aiswatch.common.secrets import read_secret

    environ = os.environ if environ is None else environ
    if any(environ.get(k) for k in ("KIBANA_API_KEY", "KIBANA_USERNAME", "KIBANA_PASSWORD")):
        return {}
    es_cfg = cfg["elasticsearch"]
    return {"api_key": read_secret("ES_API_KEY", es_cfg.get("api_key_file"), environ),
            "username": es_cfg.get("username") or environ.get("ES_USERNAME"),
            "password": read_secret("ES_PASSWORD", es_cfg.get("password_file"), environ)}


@click.command()
@cluster_options
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
                                       namespace=namespace, **kibana_credentials(cfg))
        failed = 0
        for row in results:
            ok = row.get("success", False)
            failed += not ok
            click.echo(f"kibana {row.get('type')} {row.get('id')}: {'ok' if ok else 'FAILED ' + str(row.get('error'))}")
        if failed:
            raise click.ClickException(f"{failed} saved objects failed to import")
