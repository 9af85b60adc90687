"""Test fixtures: real ES-compatible servers started by the suite itself.

- ``es_url``: the cluster in ``ES_URL`` if set, else an osmem-server process started for the session.
- ``names``: a fresh ``IndexNames`` namespace per test, so tests never see each other's indices
  (and can run against a shared real cluster); its indices are deleted afterwards.
- ``es``: an Elasticsearch client for ``es_url``.
- ``noida``: a factory for noida-db servers that keep their data on disk and can be stopped,
  killed and restarted (fault tests). With ``ES_URL`` set those tests use that cluster and skip
  the parts that need to stop it.
"""
from __future__ import annotations

import os
import uuid

import pytest

from aiswatch.es_templates import IndexNames
from aiswatch.embedded import EmbeddedServer
from aiswatch.ingest.esclient import make_client
from helpers import delete_namespace


@pytest.fixture(scope="session")
def es_url():
    url = os.environ.get("ES_URL")
    if url:
        yield url
        return
    from osmem_server import OsmemServer

    server = OsmemServer.start(japanese=False)
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def es(es_url):
    client = make_client(es_url)
    yield client
    client.close()


@pytest.fixture
def names(es_url):
    ns = f"t{uuid.uuid4().hex[:8]}-"
    yield IndexNames(ns)
    client = make_client(es_url)
    try:
        delete_namespace(client, ns)
    finally:
        client.close()


@pytest.fixture
def noida(tmp_path):
    """Start noida-db servers with data on disk under tmp_path; all are stopped at the end."""
    started: list[EmbeddedServer] = []

    def start(name: str = "es", port: int | None = None) -> EmbeddedServer:
        server = EmbeddedServer(tmp_path / name, port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
