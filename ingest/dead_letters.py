"""Dead letters: documents Elasticsearch refused for their content, kept with the reason.

``DeadLetterFile.write`` appends one NDJSON line per rejection (time, index, id, HTTP status, the
server's error, the document) and fsyncs; counted ``dead_letters`` (and ``bulk_errors``), each
logged at WARNING. A dead letter is never retried: sending it again would be refused again.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from aiswatch.ingest.counters import Counters

log = logging.getLogger(__name__)

# (index, id, document, status, error)
Rejection = tuple[str, str, dict, int, Any]


class DeadLetterFile:
    """An append-only NDJSON file of rejected documents."""

    def __init__(self, path: str | os.PathLike, counters: Counters) -> None:
        self.path = Path(path)
        self.counters = counters

    def write(self, rejections: list[Rejection]) -> None:
        """Append ``(index, id, document, status, error)`` rejections, durably."""
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = []
        for index, doc_id, document, status, error in rejections:
            lines.append(orjson.dumps({"time": now, "index": index, "id": doc_id, "status": status,
                                       "error": error, "document": document},
                                      option=orjson.OPT_NON_STR_KEYS, default=repr) + b"\n")
            log.warning("dead letter: %s/%s rejected with %s: %s", index, doc_id, status, short_error(error))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(b"".join(lines))
            f.flush()
            os.fsync(f.fileno())
        self.counters.incr("dead_letters", len(lines))
        self.counters.incr("bulk_errors", len(lines))


def short_error(error: Any) -> str:
    """An Elasticsearch error (a dict with type and reason, or anything) in one short line."""
    if isinstance(error, dict):
        return f"{error.get('type')}: {str(error.get('reason'))[:200]}"
    return str(error)[:200]
