"""Which Elasticsearch to talk to: ``--es URL``, else ``ES_URL``, else the config, else the embedded server.

With no cluster configured aiswatch uses its embedded ES-compatible server (noida-db, data on disk
under ``embedded.data_dir``), shared by every aiswatch process on that directory
(``embedded.SharedServer``): the one recorded as running there is reused, else one is started on
``embedded.port`` (any free port if that is taken), and the last process to leave stops it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from elasticsearch import Elasticsearch

from aiswatch.es_templates import IndexNames
from aiswatch.config import Config, read_secret
from aiswatch.embedded import EmbeddedServerError, SharedServer
from aiswatch.common.secrets import redact_url
from aiswatch.ingest.esclient import make_client

log = logging.getLogger(__name__)


@dataclass
class Cluster:
    client: Elasticsearch
    names: IndexNames
    url: str
    embedded: SharedServer | None = None

    def close(self) -> None:
        self.client.close()
        if self.embedded is not None:
            self.embedded.release()


def connect(cfg: Config, es_url: str | None = None, namespace: str | None = None,
            start_embedded: bool = True) -> Cluster:
    """Open the configured cluster (starting the embedded server if none is configured)."""
    es_cfg = cfg["elasticsearch"]
    url = es_url or es_cfg.get("url")
    names = IndexNames(es_cfg.get("namespace", "") if namespace is None else namespace)
    embedded = None
    if not url:
        emb_cfg = cfg["embedded"]
        shared = SharedServer(emb_cfg["data_dir"], port=int(emb_cfg["port"]))
        try:
            url = shared.acquire(start=start_embedded)
        except EmbeddedServerError:
            if not start_embedded:
                raise RuntimeError("no Elasticsearch configured (--es, ES_URL or elasticsearch.url) "
                                   f"and no embedded server runs for {shared.data_dir}") from None
            raise
        log.info("no Elasticsearch configured: the embedded server at %s (%s, data in %s)", url,
                 "started" if shared.started_here else "already running", shared.data_dir)
        embedded = shared
    client = make_client(
        url,
        api_key=read_secret("ES_API_KEY", es_cfg.get("api_key_file")),
        username=es_cfg.get("username"),
        password=read_secret("ES_PASSWORD", es_cfg.get("password_file")),
        ca_certs=es_cfg.get("ca_certs"),
        verify_certs=bool(es_cfg.get("verify_certs", True)),
        request_timeout=float(es_cfg.get("request_timeout", 30)),
    )
    log.info("Elasticsearch: %s (namespace %r)", redact_url(url), names.namespace)
    return Cluster(client, names, url, embedded)
