"""make_client: a ready NDJSON bulk body goes out as it is; other bodies are serialised as before."""
from aiswatch.ingest.esclient import make_client


def test_a_ready_bulk_body_is_sent_without_a_copy():
    client = make_client("http://127.0.0.1:9")
    serializers = client.transport.serializers
    body = b'{"index":{"_index":"a","_id":"1"}}\n{"x":1}\n'
    for mimetype in ("application/x-ndjson", "application/vnd.elasticsearch+x-ndjson; compatible-with=8"):
        assert serializers.dumps(body, mimetype=mimetype) is body
        assert serializers.dumps([{"index": {}}, {"x": 1}], mimetype=mimetype) == b'{"index":{}}\n{"x":1}\n'
        assert serializers.dumps(b'{"x":1}', mimetype=mimetype) == b'{"x":1}\n'  # no newline: as before
    assert serializers.dumps({"a": 1}, mimetype="application/json") == b'{"a":1}'
    client.close()
