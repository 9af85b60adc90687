"""Install the index templates into a cluster, with retention for the daily message indices.

``install_templates`` puts every composable template (``es_templates/*.json``, under a namespace)
and, where the server has ILM, an ``<ns>aiswatch-ais-retention`` policy that deletes daily ``ais-*``
indices after the retention; servers without ILM (the embedded and test engines) are told so in
the report, and ``prune_daily_indices`` does what the policy would.

Retention counts an index's age from its creation, as ILM's ``min_age`` does (the policy does not
set ``index.lifecycle.parse_origination_date``), never from the date in its name: a backfill of
year-old messages makes indices that are new, and they are kept for the retention from then on.
"""
from __future__ import annotations

import datetime as dt
import logging

from elasticsearch import ApiError, Elasticsearch

from aiswatch import es_templates
from aiswatch.es_templates import IndexNames

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
                        now: dt.datetime | None = None) -> list[str]:
    """Delete the daily ``ais-YYYY.MM.DD`` indices created more than ``retention_days`` ago (by
    name, never by wildcard), as the ILM policy would. An index whose creation date the server
    does not report is kept."""
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff_ms = (now - dt.timedelta(days=retention_days)).timestamp() * 1000
    prefix = names.messages("")
    deleted = []
    rows = client.cat.indices(index=names.messages_pattern, format="json", expand_wildcards="open",
                              h="index,creation.date")
    for row in rows:
        day = row["index"][len(prefix):]
        try:
            dt.datetime.strptime(day, "%Y.%m.%d")
            created = float(row.get("creation.date") or "nan")
        except (TypeError, ValueError):
            continue  # not one of ours (an ais-* index of someone else), or no creation date
        if created < cutoff_ms:
            client.indices.delete(index=row["index"])
            deleted.append(row["index"])
    return deleted
