"""Build an Elasticsearch client from a URL and credentials.

elasticsearch-py 8 sends ``application/vnd.elasticsearch+json; compatible-with=8``. Elasticsearch 8
accepts plain ``application/json`` just as well, and OpenSearch-flavoured servers (osmem-server)
answer 406 to the vendor type, so every request goes out with the plain media types.

Bulk bodies are built whole by the sink (``ingest.sink``): ``BytesNdjsonSerializer`` sends such a
body as it is, where elasticsearch-py's NDJSON serializer would copy it twice (a megabyte or
more per request, fresh memory each time: page faults that cost more than building it).
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from elastic_transport import Urllib3HttpNode
from elasticsearch import Elasticsearch
from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer

from aiswatch.common.errors import ConfigError
from aiswatch.common.secrets import redact_url

_PLAIN = {
    "application/vnd.elasticsearch+json; compatible-with=8": "application/json",
    "application/vnd.elasticsearch+x-ndjson; compatible-with=8": "application/x-ndjson",
}


class BytesNdjsonSerializer(NdjsonSerializer):
    """NDJSON that passes a ready body (bytes ending with a newline) through without copying it."""

    def dumps(self, data: Any) -> bytes:
        if type(data) is bytes and data.endswith(b"\n"):
            return data
        return super().dumps(data)


class PlainJsonNode(Urllib3HttpNode):
    """An HTTP node that sends plain JSON media types instead of the v8 compatibility ones."""

    def perform_request(self, method, target, body=None, headers=None, **kwargs):  # type: ignore[override]
        if headers:
            headers = headers.copy()
            for key in ("accept", "content-type"):
                value = headers.get(key)
                if value in _PLAIN:
                    headers[key] = _PLAIN[value]
        return super().perform_request(method, target, body=body, headers=headers, **kwargs)


def make_client(url: str, *, api_key: str | None = None, username: str | None = None,
                password: str | None = None, ca_certs: str | None = None,
                verify_certs: bool = True, request_timeout: float = 30.0, **extra: Any) -> Elasticsearch:
    """An Elasticsearch client for ``url``.

    api_key: an encoded API key (``ES_API_KEY``); username/password: basic auth (``ES_USERNAME``,
    ``ES_PASSWORD``); ca_certs: path to the cluster's CA certificate; the environment fills any
    argument left as None. Credentials are never logged.
    """
    url = check_url(url)
    api_key = api_key or os.environ.get("ES_API_KEY") or None
    username = username or os.environ.get("ES_USERNAME") or None
    password = password or os.environ.get("ES_PASSWORD") or None
    ca_certs = ca_certs or os.environ.get("ES_CA_CERTS") or None
    # orjson parses the bulk responses (one item per document) several times faster than json
    kwargs: dict[str, Any] = {"node_class": PlainJsonNode, "request_timeout": request_timeout,
                              "serializers": {"application/json": OrjsonSerializer(),
                                              "application/x-ndjson": BytesNdjsonSerializer()}}
    if api_key:
        kwargs["api_key"] = api_key
    elif username:
        kwargs["basic_auth"] = (username, password or "")
    if url.startswith("https"):
        kwargs["verify_certs"] = verify_certs
        if ca_certs:
            kwargs["ca_certs"] = ca_certs
    kwargs.update(extra)
    return Elasticsearch(url, **kwargs)


def check_url(url: str) -> str:
    """``url`` if it is a usable http(s) URL of a cluster, else ConfigError naming what is wrong
    (with any credentials in it replaced: the message reaches the terminal and the logs)."""
    text = str(url).strip()
    shown = redact_url(text)
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise ConfigError(f"bad Elasticsearch URL {shown}: {redact_url(str(exc))}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"bad Elasticsearch URL {shown}: expected http:// or https://")
    if not parts.hostname:
        raise ConfigError(f"bad Elasticsearch URL {shown}: no host")
    if port == 0:
        raise ConfigError(f"bad Elasticsearch URL {shown}: port 0")
    return text
