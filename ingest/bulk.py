"""One ``_bulk`` exchange: pre-serialised actions in, one result per action out, 429s retried.

``BulkSender.send(actions)`` takes ``(action line, source line)`` pairs, each newline-terminated
bytes, joins them into one NDJSON body and hands it to ``client.bulk`` as is; items rejected with
429 are sent again with backoff (counted ``bulk_retries``), up to ``ATTEMPTS`` requests. It
returns ``(status, error)`` per action in order, None where the response has no item for it.
A request refused as such (400, 413: sending it again would be refused again) gives every
pending action that status; a request that fails otherwise (connection, timeout, 5xx, a 429 on
every attempt) raises ``BulkFailed`` with the results received so far.

``ActionLines`` makes the action lines: the one for a raw document from a cached prefix per
index (this runs per document), the versioned one for ships-seen.

Not ``elasticsearch.helpers.streaming_bulk``: fed the same bytes (one chunk per batch, results
matched back by index and id, since it yields retried items out of order) it takes about three
and a half times this module's CPU per document, a third of the indexing side's whole budget
(``python bench/bulk_body.py``; figures in docs/delivery.md).
"""
from __future__ import annotations

import time
from itertools import chain
from typing import Any

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError

from aiswatch.ingest.counters import Counters

ATTEMPTS = 4
# results are matched by position, so the response needs only each item's status and error:
# a tenth of the bytes to receive and parse
FILTER_PATH = "errors,items.*.status,items.*.error"
# whole-request statuses worth retrying later (auth and timeouts are fixed outside the request)
RETRY_REQUEST_STATUS = (401, 403, 408, 429)
NDJSON = orjson.OPT_APPEND_NEWLINE  # a document's source line, ready for the bulk body
_OK = (200, None)  # the result of every item of a bulk response without errors

Result = tuple[int, Any]


class BulkFailed(Exception):
    """A bulk request failed as a whole; ``results`` holds the answers received before (None: none)."""

    def __init__(self, reason: str, results: list):
        super().__init__(reason)
        self.reason = reason
        self.results = results


class BulkSender:
    """Sends pre-serialised bulk actions through ``client``, counting ``bulk_requests``,
    ``bulk_retries`` and ``bulk_errors``."""

    def __init__(self, client, counters: Counters) -> None:
        self.client = client
        self.counters = counters

    def send(self, actions: list[tuple[bytes, bytes]]) -> list[Result | None]:
        """One NDJSON bulk request of ``actions``, the 429-rejected ones retried (see the module)."""
        results: list[Result | None] = [None] * len(actions)
        pending = list(range(len(actions)))
        backoff = 0.5
        for attempt in range(ATTEMPTS):
            if attempt:
                self.counters.incr("bulk_retries")
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            self.counters.incr("bulk_requests")
            body = b"".join(chain.from_iterable(actions if attempt == 0 else [actions[i] for i in pending]))
            retry: list[int] = []
            try:
                resp = self.client.bulk(operations=body, filter_path=FILTER_PATH).body
            except (TransportError, ApiError) as exc:
                status = exc.status_code if isinstance(exc, ApiError) else None
                if status == 429 and attempt + 1 < ATTEMPTS:
                    continue  # the whole request was rejected: retry it after the backoff
                if status is not None and 400 <= status < 500 and status not in RETRY_REQUEST_STATUS:
                    # the request itself is refused (400, 413): sending it again would refuse it
                    # again and stall everything queued behind it, so its items become dead letters
                    error = {"type": "request_rejected", "reason": str(exc)[:500]}
                    for pos in pending:
                        results[pos] = (status, error)
                    self.counters.incr("bulk_errors")
                    return results
                self.counters.incr("bulk_errors")
                raise BulkFailed(f"bulk: {reason(exc)}", results) from exc
            items = resp.get("items") or ()
            if resp.get("errors") is False and len(items) == len(pending):
                for pos in pending:  # the common case: every item succeeded
                    results[pos] = _OK
                break
            # items answer the actions in order; one missing leaves its result None (re-sent later)
            for pos, item in zip(pending, items):
                for res in item.values():
                    status = res.get("status", 500)
                    results[pos] = (status, res.get("error"))
                    if status == 429:
                        retry.append(pos)
            if not retry:
                break
            pending = retry
        return results


class ActionLines:
    """Bulk action lines, newline-terminated."""

    def __init__(self) -> None:
        self._prefix: dict[str, bytes] = {}

    def index(self, index: str, doc_id: str) -> bytes:
        """``{"index":{"_index":…,"_id":…}}`` for a raw document (from a cached prefix per index)."""
        prefix = self._prefix.get(index)
        if prefix is None:
            prefix = self._prefix[index] = b'{"index":{"_index":' + orjson.dumps(index) + b',"_id":'
        return prefix + orjson.dumps(doc_id) + b"}}\n"

    def versioned(self, index: str, doc_id: str, version: int) -> bytes:
        """An index action that only wins over an older version (``version_type=external_gte``)."""
        return orjson.dumps({"index": {"_index": index, "_id": doc_id, "version": version,
                                       "version_type": "external_gte"}}, option=NDJSON)


def reason(exc: Exception) -> str:
    """A failed request in a few words: the exception's type and HTTP status, if any."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return f"{type(exc).__name__}{' ' + str(status) if status else ''}"

