"""Helpers shared by the tests: reading a source, answering like Elasticsearch over HTTP."""
import json
import threading


def reply_json(handler, status: int, payload) -> None:
    """Answer an ``http.server`` request as Elasticsearch does: JSON with its product header."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("X-Elastic-Product", "Elasticsearch")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def collect(src, n: int, timeout: float = 15.0) -> list:
    """The first n lines of src, closing it from a watchdog if they do not come; src is closed after."""
    out = []
    watchdog = threading.Timer(timeout, src.close)
    watchdog.start()
    try:
        for line in src.lines():
            out.append(line)
            if len(out) == n:
                break
    finally:
        watchdog.cancel()
        src.close()
    return out
