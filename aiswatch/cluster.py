"""Which Elasticsearch to talk to: ``--es URL``, else ``ES_URL``, else the config, else the embedded server.

With no cluster configured aiswatch uses its embedded ES-compatible server (noida-db, data on disk
under ``embedded.data_dir``), shared by every aiswatch process on that directory
(``embedded.SharedServer``): the one recorded as running there is reused, else one is started on
``embedded.port`` (any free port if that is taken), and the last process to leave stops it.
"""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from elasticsearch import Elasticsearch

from aiswatch.es_templates import IndexNames
from aiswatch.common.errors import ConfigError
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


def check_resolvable(url: str) -> None:
    """ConfigError if the cluster's host name does not exist (a typo waits for ever otherwise); a
    temporary failure of the resolver is let through: the cluster may be down, not misnamed."""
    host = urlsplit(url).hostname
    if not host:
        return
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise ConfigError(f"cannot resolve the Elasticsearch host {host!r} of {redact_url(url)}: "
                              f"{exc.strerror}") from None
        log.warning("could not resolve %s now (%s); going on", host, exc.strerror)
    except UnicodeError:
        raise ConfigError(f"bad Elasticsearch host name {host!r}") from None


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
    if embedded is None:
        try:
            check_resolvable(url)   # after make_client, which refuses a URL that does not parse
        except ConfigError:
            client.close()
            raise
    log.info("Elasticsearch: %s (namespace %r)", redact_url(url), names.namespace)
    return Cluster(client, names, url, embedded)
