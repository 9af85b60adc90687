"""Options several commands share, declared once: which cluster (``--es``, ``--namespace``) and
how documents are delivered (``--spool-dir``, ``--dead-letter``, ``--batch-size``, ``--no-setup``)."""
from __future__ import annotations

import functools

import click

from aiswatch.runner import IngestOptions


def cluster_options(fn):
    """--es and --namespace, passed on as ``es_url`` and ``namespace``."""
    fn = click.option("--namespace", default=None, help="Prefix for every index name.")(fn)
    return click.option("--es", "es_url", envvar="ES_URL", default=None, metavar="URL",
                        help="Elasticsearch URL (default: ES_URL, the config, else the embedded server).")(fn)


spool_dir_option = click.option(
    "--spool-dir", default=None,
    help="Disk spool for documents while Elasticsearch is slow or down (default: one of this process's own "
         "under sink.spool_dir).")
no_setup_option = click.option(
    "--no-setup", is_flag=True,
    help="Do not install index templates first (`aiswatch setup` installs them, perhaps as another user).")


def delivery_options(fn):
    """The cluster options and the sink's, passed on as one ``opts`` (IngestOptions) after the context."""
    @cluster_options
    @spool_dir_option
    @click.option("--dead-letter", default=None, help="NDJSON file for documents Elasticsearch rejected.")
    @click.option("--batch-size", type=click.IntRange(min=1), default=None,
                  help="Documents per bulk request at most.")
    @no_setup_option
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx, es_url, namespace, spool_dir, dead_letter, batch_size, no_setup, *args, **kwargs):
        opts = IngestOptions(es_url=es_url, namespace=namespace, spool_dir=spool_dir, dead_letter=dead_letter,
                             batch_size=batch_size, setup=not no_setup)
        return fn(ctx, opts, *args, **kwargs)
    return wrapper
