"""What a failure says on the command line: one ``Error:`` line and an exit status, in one place.

Exit statuses (documented in docs/operations.md):

- 0: done.
- 1: the command could not do its job: a configuration or argument value it cannot use, a file
  that cannot be read, a port in use, a cluster that refuses us or cannot be reached when the
  command needs it, a source that failed, documents left in the spool at the end of a replay.
- 2: the command line itself is wrong (click's usage errors), or the radio hardware is missing.
- 130: interrupted (Ctrl-C) before the command could finish cleanly.

A library says a failure is expected by raising ConfigError (or a subclass: a recording or a
setting the receiver cannot use), an OSError, an Elasticsearch client error, or an exception that
carries an ``exit_status`` (no dongle, the embedded server, a server refusing a query, a map that
cannot be drawn). Only failures we do not expect print a traceback; ``--debug`` shows it for every
failure.
"""
from __future__ import annotations

import errno

from aiswatch.common.errors import ConfigError
from aiswatch.common.secrets import redact_url


def explain(exc: BaseException) -> tuple[int, str] | None:
    """(exit status, one-line message) for an expected failure, None for a bug (a traceback)."""
    from elastic_transport import ConnectionError as TransportConnectionError
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    status = int(getattr(exc, "exit_status", 1))
    if isinstance(exc, ConfigError):
        return status, str(exc)
    if isinstance(exc, TransportConnectionError):
        return 1, f"cannot reach Elasticsearch: {_transport_reason(exc)}"
    if isinstance(exc, TransportError):
        return 1, f"Elasticsearch did not answer: {_transport_reason(exc)}"
    if isinstance(exc, ApiError):
        reason = exc.message if hasattr(exc, "message") else str(exc)
        return 1, f"Elasticsearch refused the request ({exc.meta.status}): {str(reason)[:300]}"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return 1, (f"{exc.strerror or exc}: the port is taken by another program (another aiswatch, rtl_ais, "
                       "AIS-catcher's own server?); choose another with --port or in the config")
        text = exc.strerror or str(exc)
        if getattr(exc, "filename", None):
            text = f"{exc.filename}: {text}"
        return 1, text
    if hasattr(exc, "exit_status"):   # a library's error that names its own status (see the module docstring)
        return status, str(exc)
    return None


def _transport_reason(exc: Exception) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return redact_url(text.split("(", 1)[0].strip() if "Failed to establish" in text else text)[:300]


def one_line(message: str) -> str:
    return redact_url(" ".join(str(message).split()))
