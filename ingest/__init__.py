"""aiswatch ingest: receive NMEA lines, reassemble and decode AIS, index into Elasticsearch.

Data flows one way, one module per arrow:

    sources/*.py   -> Line            (text, receive time, source id)
    nmea.py        -> Sentence        (checksum, tag block, fields)
    assembler.py   -> SentenceGroup   (complete multi-fragment message)
    decoder.py     -> Decoded         (pyais message as a dict + metadata)
    documents.py   -> dict            (the ais-* document; ships-seen state)
    sink.py        -> Elasticsearch   (bulk, daily indices, ships-seen, spool, dead letters)

``pipeline.py`` wires them; ``counters.py`` counts every stage.
"""
from aiswatch.ingest import native as _native

_native.guard()  # compiled stage modules, unless their sources changed since (ingest/native.py)
