"""aiswatch: AIS receivers in, Elasticsearch and Kibana out.

One import name for the project's folders (setup.cfg maps them): ``aiswatch.ingest`` (lines to
documents to Elasticsearch), ``aiswatch.demod`` (the software radio), ``aiswatch.behavior``
(detection as Elasticsearch queries), ``aiswatch.kibana`` (Vega specs, saved objects, the offline
map), ``aiswatch.es_templates`` (index templates). The modules directly in this package are the
application shell above them: the command line and the wiring (docs/architecture.md).
"""
__version__ = "0.1.0"
