"""Requests the detectors send to the cluster, and what a refusal means.

Every search the detectors make goes through ``search`` with the name of the feature it relies on
(``"composite aggregation"``, ``"min/max over @timestamp"``, ...). A 4xx answer is not a passing
outage: the server cannot do what was asked (a test engine without an aggregation, a mapping that
does not fit), so it becomes ``ServerRefused``, whose message is one line naming the feature and
the server. ``detect run`` prints it and exits non-zero; ``detect schedule`` stops on it instead
of retrying the same refused request for ever. 429 and 408 stay transient (overload, time-out),
as do 5xx and connection errors.
"""
from __future__ import annotations

from elasticsearch import ApiError

TRANSIENT_4XX = (408, 429)


class ServerRefused(Exception):
    """The server answered 4xx to a request the detectors need."""

    exit_status = 1   # one Error: line on the command line (aiswatch.cli.errors)

    def __init__(self, feature: str, server: str, status: int, reason: str):
        super().__init__(f"{server} refused the {feature} (HTTP {status}: {reason})")
        self.feature, self.server, self.status, self.reason = feature, server, status, reason


def is_refusal(exc: BaseException) -> bool:
    """True for a 4xx API error that retrying cannot fix."""
    status = getattr(exc, "status_code", None) if isinstance(exc, ApiError) else None
    return isinstance(status, int) and 400 <= status < 500 and status not in TRANSIENT_4XX


def reason_of(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        if causes and isinstance(causes[0], dict) and causes[0].get("reason"):
            return str(causes[0]["reason"])
        if error.get("reason"):
            return str(error["reason"])
    if isinstance(error, str):
        return error
    return str(exc.message)


def server_name(client) -> str:
    """'<node name> (<distribution> <version>) at <url>' for messages, as far as the server says."""
    url = ""
    try:
        url = str(client.transport.node_pool.get().base_url)
    except Exception:  # noqa: BLE001 - only for a message
        pass
    try:
        info = client.info().body
        version = info.get("version") or {}
        name = f"{info.get('name', 'server')} ({version.get('distribution', 'elasticsearch')} {version.get('number', '?')})"
    except Exception:  # noqa: BLE001 - the refusal matters more than the name
        name = "the server"
    return f"{name} at {url}" if url else name


def refused(client, feature: str, exc: ApiError) -> ServerRefused:
    return ServerRefused(feature, server_name(client), int(exc.status_code), reason_of(exc))


def search(client, feature: str, *, request_timeout: float | None = None, **kwargs) -> dict:
    """``client.search(**kwargs).body``; a 4xx answer raises ``ServerRefused`` naming ``feature``."""
    target = client.options(request_timeout=request_timeout) if request_timeout else client
    try:
        return target.search(**kwargs).body
    except ApiError as exc:
        if is_refusal(exc):
            raise refused(client, feature, exc) from None
        raise
