"""``aiswatch setup``: install the index templates (and ILM retention where supported), and
optionally import the Kibana saved objects.

Retention: on Elasticsearch with ILM, an ``aiswatch-ais-retention`` policy deletes daily ``ais-*``
indices after ``elasticsearch.retention_days``. Servers without ILM (the embedded and test engines)
get a clear message, and ``prune_daily_indices`` (run by the daemon once a day) deletes daily indices
older than the retention by name instead.
"""
from __future__ import annotations

import datetime as dt
import logging
import os

import click
from elasticsearch import ApiError, Elasticsearch

import es_templates
from es_templates import IndexNames

log = logging.getLogger(__name__)


def install_templates(client: Elasticsearch, names: IndexNames, retention_days: int | None = 90,
                      echo=log.info) -> dict[str, str]:
    """Put every composable template; attach ILM retention to ais-* where the server has ILM.

    Returns {template or policy name: what happened}."""
    report: dict[str, str] = {}
    templates = es_templates.all_templates(names.namespace)
    policy = names.template_name("ais-retention")
    if retention_days:
        try:
            client.ilm.put_lifecycle(name=policy, policy={
                "_meta": {"managed_by": "aiswatch"},
                "phases": {"hot": {"actions": {}},
                           "delete": {"min_age": f"{int(retention_days)}d", "actions": {"delete": {}}}}})
            templates[names.template_name("ais")]["template"]["settings"]["index.lifecycle.name"] = policy
            report[policy] = f"ILM policy: delete ais-* after {retention_days} days"
        except ApiError as exc:
            report[policy] = (f"this server has no ILM ({exc.meta.status}): retention is done by the daemon "
                              f"deleting daily indices older than {retention_days} days")
    for name, body in templates.items():
        client.indices.put_index_template(name=name, **body)
        report[name] = "template " + ", ".join(body["index_patterns"])
    for name, what in report.items():
        echo(f"{name}: {what}")
    return report


def prune_daily_indices(client: Elasticsearch, names: IndexNames, retention_days: int,
                        today: dt.date | None = None) -> list[str]:
    """Delete ``ais-YYYY.MM.DD`` indices older than ``retention_days`` (by name; never by wildcard)."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    cutoff = today - dt.timedelta(days=retention_days)
    prefix = names.messages("")
    deleted = []
    for row in client.cat.indices(index=names.messages_pattern, format="json", expand_wildcards="open"):
        day = row["index"][len(prefix):]
        try:
            when = dt.datetime.strptime(day, "%Y.%m.%d").date()
        except ValueError:
            continue  # not one of ours (an ais-* index of someone else)
        if when < cutoff:
            client.indices.delete(index=row["index"])
            deleted.append(row["index"])
    return deleted


def kibana_credentials(cfg, environ=None) -> dict:
    """Credentials for Kibana's API: none here when ``KIBANA_*`` ones are in the environment (the
    import reads those), else the Elasticsearch ones as the cluster connection reads them, key files
    (``password_file``, ``api_key_file``) included."""
    from ingest.config import read_secret

    environ = os.environ if environ is None else environ
    if any(environ.get(k) for k in ("KIBANA_API_KEY", "KIBANA_USERNAME", "KIBANA_PASSWORD")):
        return {}
    es_cfg = cfg["elasticsearch"]
    return {"api_key": read_secret("ES_API_KEY", es_cfg.get("api_key_file"), environ),
            "username": es_cfg.get("username") or environ.get("ES_USERNAME"),
            "password": read_secret("ES_PASSWORD", es_cfg.get("password_file"), environ)}


@click.command()
@click.option("--es", "es_url", envvar="ES_URL", help="Elasticsearch URL (default: config, else the embedded server).")
@click.option("--namespace", default=None, help="Prefix for every index and template name.")
@click.option("--kibana", "kibana_url", default=None, help="Also import the saved objects into this Kibana.")
@click.option("--kibana-wait", default=300.0, show_default=True, help="Seconds to wait for Kibana to be ready.")
@click.option("--kibana-space", default=None, help="Kibana space id (default: the default space).")
@click.pass_context
def setup(ctx, es_url, namespace, kibana_url, kibana_wait, kibana_space):
    """Install index templates (and Kibana saved objects with --kibana)."""
    from ingest.cli import load_config_from
    from ingest.cluster import connect

    cfg = load_config_from(ctx)
    cluster = connect(cfg, es_url, namespace)
    namespace = cluster.names.namespace
    try:
        install_templates(cluster.client, cluster.names, cfg["elasticsearch"].get("retention_days"), echo=click.echo)
    finally:
        cluster.close()
    if kibana_url:
        from kibana.saved_objects import import_saved_objects

        results = import_saved_objects(kibana_url, wait_seconds=kibana_wait, space=kibana_space,
                                       namespace=namespace, **kibana_credentials(cfg))
        failed = 0
        for row in results:
            ok = row.get("success", False)
            failed += not ok
            click.echo(f"kibana {row.get('type')} {row.get('id')}: {'ok' if ok else 'FAILED ' + str(row.get('error'))}")
        if failed:
            raise click.ClickException(f"{failed} saved objects failed to import")
