"""Which Elasticsearch to talk to: ``--es URL``, else ``ES_URL``, else the config, else the embedded server.

With no cluster configured aiswatch uses its embedded ES-compatible server (noida-db, data on disk
under ``embedded.data_dir``): it reuses one already answering on ``embedded.port`` (a running daemon's)
or starts one that lives as long as this process.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from elasticsearch import Elasticsearch

from aiswatch.es_templates import IndexNames
from aiswatch.config import Config, read_secret
from aiswatch.embedded import EmbeddedServer
from aiswatch.common.secrets import redact_url
from aiswatch.ingest.esclient import make_client

log = logging.getLogger(__name__)


@dataclass
class Cluster:
    client: Elasticsearch
    names: IndexNames
    url: str
    embedded: EmbeddedServer | None = None

    def close(self) -> None:
        self.client.close()
        if self.embedded is not None:
            self.embedded.stop()


def connect(cfg: Config, es_url: str | None = None, namespace: str | None = None,
            start_embedded: bool = True) -> Cluster:
    """Open the configured cluster (starting the embedded server if none is configured)."""
    es_cfg = cfg["elasticsearch"]
    url = es_url or es_cfg.get("url")
    names = IndexNames(es_cfg.get("namespace", "") if namespace is None else namespace)
    embedded = None
    if not url:
        emb_cfg = cfg["embedded"]
        candidate = EmbeddedServer(emb_cfg["data_dir"], port=int(emb_cfg["port"]))
        if candidate.healthy():
            log.info("using the embedded Elasticsearch-compatible server already running at %s", candidate.url)
        elif start_embedded:
            log.info("no Elasticsearch configured: starting the embedded server (data in %s)", candidate.data_dir)
            embedded = candidate.start()
        else:
            raise RuntimeError("no Elasticsearch configured (--es, ES_URL or elasticsearch.url) "
                               f"and no embedded server answers at {candidate.url}")
        url = candidate.url
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
