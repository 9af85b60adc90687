"""aisstream.io websocket source: subscribe, keep the connection healthy, turn JSON into Reports.

What the service needs and what goes wrong with it:

* the subscription ``{"APIKey", "BoundingBoxes": [[[lat, lon], [lat, lon]], ...],
  "FiltersShipMMSI": ["9 digits", ...], "FilterMessageTypes": [...]}`` must arrive within 3 s of
  connecting, and again on every reconnect; empty filters are left out;
* connections drop (close code 1006 every few minutes) or stay open and carry nothing for hours:
  we ping every ``ping_interval`` s (websockets' keepalive) and reconnect after
  ``silence_timeout`` s without a message;
* reconnect storms earn HTTP 429: reconnects back off exponentially with jitter
  (``backoff_initial`` .. ``backoff_max``), and a 429 waits at least 10x the initial delay;
* errors come inline as ``{"error": "..."}``: logged and counted (``source.aisstream.errors``);
  "Api Key Is Not Valid" before any message ever arrived ends the source (``KeyRefused``: a wrong
  key is not retried for ever); after messages have come it is taken as the service's hiccup;
  a message that is not JSON, or not a usable AIS message, is rejected here
  (``rejected.aisstream_bad_json`` / ``aisstream_bad_message``) and counts as one of ``lines_in``.

Each message becomes a ``documents.Report`` via ``ingest.aisstream_map`` (already decoded: no NMEA
round trip) and then the same document as a radio message; its time is aisstream's ``time_utc``.
Unmapped message types are counted (``source.aisstream.unmapped.<type>``) and logged once per type.

The API key is a secret: it is only ever sent in the subscription. It is kept out of repr, log
lines (ours and the websockets library's frame logs at DEBUG), exception messages and counters;
server text is scrubbed of it before logging in case the server echoes it back.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any, Iterable, Iterator

from pydantic import AliasChoices, Field, field_validator
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from aiswatch.common.errors import ConfigError
from aiswatch.common.secrets import read_secret
from aiswatch.ingest.aisstream_map import BadMessage, UnmappedMessage, report_of
from aiswatch.ingest.counters import Counters
from aiswatch.ingest.documents import Report
from aiswatch.ingest.sources import SourceSettings, SourceType
from aiswatch.ingest.sources.backoff import Backoff

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://stream.aisstream.io/v0/stream"
POLL_SECONDS = 0.2          # how soon lines() notices close() between messages
OPEN_TIMEOUT = 10.0

# aisstream's message type names (AisMessageTypes in its published schema).
MESSAGE_TYPES = frozenset("""
    PositionReport UnknownMessage AddressedSafetyMessage AddressedBinaryMessage AidsToNavigationReport
    AssignedModeCommand BaseStationReport BinaryAcknowledge BinaryBroadcastMessage ChannelManagement
    CoordinatedUTCInquiry DataLinkManagementMessage DataLinkManagementMessageData
    ExtendedClassBPositionReport GroupAssignmentCommand GnssBroadcastBinaryMessage Interrogation
    LongRangeAisBroadcastMessage MultiSlotBinaryMessage SafetyBroadcastMessage ShipStaticData
    SingleSlotBinaryMessage StandardClassBPositionReport StandardSearchAndRescueAircraftReport
    StaticDataReport""".split())


class SecretScrubber:
    """Removes a secret (and long fragments of it, as a truncated log line would show) from text."""

    MIN_FRAGMENT = 8

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def __call__(self, text: Any) -> str:
        text = str(text)
        secret = self._secret
        if not secret:
            return text
        text = text.replace(secret, "***")
        if len(secret) >= 2 * self.MIN_FRAGMENT:
            # a prefix or suffix of the key, as shown by a log line cut in the middle
            for size in range(len(secret) - 1, self.MIN_FRAGMENT - 1, -1):
                head, tail = secret[:size], secret[-size:]
                if head in text:
                    text = text.replace(head, "***")
                if tail in text:
                    text = text.replace(tail, "***")
        return text


class _ScrubbingLogger(logging.LoggerAdapter):
    """Given to websockets as its logger: formats each record, scrubs the key, and never shows
    the payload of frames we send (the subscription is the only thing we send)."""

    def __init__(self, logger: logging.Logger, scrub: SecretScrubber) -> None:
        super().__init__(logger, {})
        self._scrub = scrub

    def log(self, level, msg, *args, **kwargs):
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        if text.startswith(("> TEXT", "> BINARY")):
            direction, kind = text.split(" ", 2)[:2]
            text = f"{direction} {kind} [payload not logged]"
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:
            # a traceback is text we do not control either: format it here and scrub it
            if exc_info is True:
                exc_info = sys.exc_info()
            elif isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            text += "\n" + logging.Formatter().formatException(exc_info)
        kwargs.pop("extra", None)
        self.logger.log(level, "%s", self._scrub(text), **kwargs)


def _check_bboxes(bboxes: Iterable) -> list[list[list[float]]]:
    boxes = []
    for box in bboxes or []:
        try:
            (lat1, lon1), (lat2, lon2) = box
            corners = [[float(lat1), float(lon1)], [float(lat2), float(lon2)]]
        except (TypeError, ValueError):
            raise ValueError(f"bounding box {box!r}: expected [[lat, lon], [lat, lon]]") from None
        for lat, lon in corners:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError(f"bounding box {box!r}: latitude first, within ±90; longitude within ±180")
        boxes.append(corners)
    if not boxes:
        raise ValueError("aisstream needs at least one bounding box [[lat, lon], [lat, lon]]")
    return boxes


def _check_mmsis(mmsis: Iterable | None) -> list[str]:
    out = []
    for mmsi in mmsis or []:
        text = str(mmsi).strip()
        if not text.isdigit() or len(text) > 9:
            raise ValueError(f"MMSI {mmsi!r}: expected up to 9 digits")
        out.append(text.zfill(9))     # aisstream wants 9-character strings
    return out


def _check_types(types: Iterable | None) -> list[str]:
    out = list(types or [])
    unknown = [t for t in out if t not in MESSAGE_TYPES]
    if unknown:
        raise ValueError(f"unknown aisstream message types {unknown}; known: {', '.join(sorted(MESSAGE_TYPES))}")
    return out


KEY_ENV = "AISSTREAM_API_KEY"
_KEY_REFUSED = re.compile(r"api ?key.*(not valid|invalid)|(invalid|unknown|bad) api ?key", re.IGNORECASE)


class KeyRefused(ConfigError):
    """aisstream says the API key is not valid, and no message ever came with it."""


class AisstreamSource:
    """Yields NMEA lines re-encoded from the aisstream.io websocket, reconnecting until closed."""

    def __init__(self, api_key: str, bboxes: Iterable, message_types: Iterable[str] | None = None,
                 mmsis: Iterable[int | str] | None = None, url: str = DEFAULT_URL, counters: Counters | None = None,
                 ping_interval: float = 20, silence_timeout: float = 60, backoff_initial: float = 1,
                 backoff_max: float = 60) -> None:
        if not api_key or not str(api_key).strip():
            raise ValueError("aisstream needs an API key")
        self._api_key = str(api_key).strip()
        self._scrub = SecretScrubber(self._api_key)
        self.bboxes = _check_bboxes(bboxes)
        self.message_types = _check_types(message_types)
        self.mmsis = _check_mmsis(mmsis)
        self.url = url
        self.counters = counters if counters is not None else Counters()
        self.ping_interval = ping_interval
        self.silence_timeout = silence_timeout
        self.id = "aisstream"
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._rate_limit_wait = min(backoff_max, 10 * backoff_initial)
        self._closed = threading.Event()
        self._unmapped_seen: set[str] = set()
        self._reports_ever = 0
        self._ws_logger = _ScrubbingLogger(logging.getLogger(__name__ + ".websocket"), self._scrub)

    def _count(self, name: str, n: int = 1) -> None:
        self.counters.incr(f"source.{self.id}.{name}", n)

    def _subscription(self) -> dict:
        message: dict[str, Any] = {"APIKey": self._api_key, "BoundingBoxes": self.bboxes}
        if self.mmsis:
            message["FiltersShipMMSI"] = self.mmsis
        if self.message_types:
            message["FilterMessageTypes"] = self.message_types
        return message

    def lines(self) -> Iterator[Report]:
        while not self._closed.is_set():
            delay_floor = 0.0
            try:
                with connect(self.url, open_timeout=OPEN_TIMEOUT, ping_interval=self.ping_interval,
                             ping_timeout=self.ping_interval, close_timeout=2, logger=self._ws_logger,
                             max_size=2 ** 22) as ws:
                    self._count("connects")
                    ws.send(json.dumps(self._subscription()))
                    log.info("aisstream: connected to %s, subscribed to %d box(es)%s%s", self.url, len(self.bboxes),
                             f", {len(self.mmsis)} MMSI(s)" if self.mmsis else "",
                             f", types {','.join(self.message_types)}" if self.message_types else "")
                    try:
                        yield from self._receive(ws)
                    except GeneratorExit:
                        # the consumer stopped iterating: a normal close (1000), not the 1011
                        # "internal error" the context manager sends when an exception passes
                        ws.close()
                        raise
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 429:
                    self._count("rate_limited")
                    delay_floor = self._rate_limit_wait
                    log.warning("aisstream: HTTP 429 (too many connections): backing off")
                else:
                    self._count("connect_failures")
                    log.warning("aisstream: server refused the connection: HTTP %d", status)
            except ConnectionClosed as exc:
                self._count("disconnects")
                log.warning("aisstream: connection closed (code %s%s)", exc.rcvd.code if exc.rcvd else 1006,
                            f", {self._scrub(exc.rcvd.reason)}" if exc.rcvd and exc.rcvd.reason else "")
            except InvalidURI as exc:
                raise ValueError(f"aisstream url is not a websocket URL: {self._scrub(exc)}") from None
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self._count("connect_failures")
                log.warning("aisstream: cannot connect to %s: %s", self.url, self._scrub(exc) or type(exc).__name__)
            if self._closed.is_set():
                break
            delay = max(delay_floor, self._backoff.next_delay())
            self._count("reconnects")
            log.info("aisstream: reconnecting in %.1f s", delay)
            self._closed.wait(delay)

    def _receive(self, ws) -> Iterator[Report]:
        """Reports from one connection until it closes, goes silent, or close() is called."""
        last_message = time.monotonic()
        while not self._closed.is_set():
            try:
                raw = ws.recv(timeout=POLL_SECONDS)
            except TimeoutError:
                silent = time.monotonic() - last_message
                if silent > self.silence_timeout:
                    self._count("silences")
                    log.warning("aisstream: no message for %.0f s, reconnecting", silent)
                    return
                continue
            received_at = time.time()
            last_message = time.monotonic()
            self._count("bytes", len(raw) if isinstance(raw, bytes) else len(raw.encode()))
            self._count("messages")
            report = self._to_report(raw, received_at)
            if report is not None:
                self._count("reports")
                self._reports_ever += 1
                yield report

    def _to_report(self, raw: str | bytes, received_at: float) -> Report | None:
        try:
            message = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            self.counters.reject_line("aisstream_bad_json")
            log.warning("aisstream: message is not JSON: %s", self._scrub(repr(raw[:200])))
            return None
        if not isinstance(message, dict):
            self.counters.reject_line("aisstream_bad_message")
            log.warning("aisstream: message is not a JSON object: %s", self._scrub(repr(raw[:200])))
            return None
        if "error" in message:
            self._count("errors")
            text = self._scrub(message["error"])
            if self._reports_ever == 0 and _KEY_REFUSED.search(str(text)):
                # a key that never worked will not start working by retrying: stop, say why
                raise KeyRefused(f"aisstream refused the API key ({text}): check {KEY_ENV} or api_key_file")
            log.error("aisstream: server error: %s", text)
            return None
        try:
            report = report_of(message, received_at, raw if isinstance(raw, str) else raw.decode())
        except UnmappedMessage as exc:
            self._count("unmapped")
            self._count(f"unmapped.{exc.message_type}")
            if exc.message_type not in self._unmapped_seen:
                self._unmapped_seen.add(exc.message_type)
                log.info("aisstream: %s messages are not mapped; counting, not indexing them "
                         "(logged once)", exc.message_type)
            return None
        except BadMessage as exc:
            self.counters.reject_line("aisstream_bad_message")
            log.warning("aisstream: %s", self._scrub(exc))
            return None
        self._backoff.reset()      # a message made it through: this connection is good
        return report

    def close(self) -> None:
        """Stop; ``lines()`` ends within about POLL_SECONDS (or at once if it is backing off)."""
        self._closed.set()

    def __repr__(self) -> str:
        return f"AisstreamSource(url={self.url!r}, bboxes={self.bboxes!r}, api_key=***)"




def _box(text: str) -> list[list[float]]:
    """``LAT1,LON1,LAT2,LON2`` (latitude first, as aisstream wants) -> [[lat, lon], [lat, lon]]."""
    try:
        lat1, lon1, lat2, lon2 = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"bounding box {text!r}: expected LAT1,LON1,LAT2,LON2") from None
    return [[lat1, lon1], [lat2, lon2]]


class AisstreamSettings(SourceSettings):
    bboxes: list = Field(description="Bounding box LAT1,LON1,LAT2,LON2 (latitude first, as aisstream wants); "
                         "in the config [[lat, lon], [lat, lon]] also.",
                         json_schema_extra={"cli": "--bbox", "multiple": True})
    types: list[str] | None = Field(None, validation_alias=AliasChoices("types", "message_types"),
                                    description="aisstream message types, e.g. PositionReport,ShipStaticData.")
    mmsis: list[str] | None = Field(None, description="Only these MMSIs.",
                                    json_schema_extra={"cli": "--mmsi", "multiple": True})
    api_key_file: str | None = Field(None, description=f"File holding the API key (else env {KEY_ENV}).")
    url: str = Field(DEFAULT_URL, description="The websocket's URL.")
    ping_interval: float = Field(20, gt=0, description="Seconds between pings.", json_schema_extra={"cli": None})
    silence_timeout: float = Field(60, gt=0, description="Reconnect after this many seconds without a message.",
                                   json_schema_extra={"cli": None})
    backoff_initial: float = Field(1, gt=0, json_schema_extra={"cli": None})
    backoff_max: float = Field(60, gt=0, json_schema_extra={"cli": None})

    @field_validator("bboxes", mode="before")
    @classmethod
    def _boxes(cls, value):
        boxes = [value] if isinstance(value, str) else list(value or [])
        return _check_bboxes([_box(b) if isinstance(b, str) else b for b in boxes])

    @field_validator("types", mode="before")
    @classmethod
    def _types(cls, value):
        if isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()]
        return _check_types(value) or None

    @field_validator("mmsis", mode="before")
    @classmethod
    def _mmsis(cls, value):
        return _check_mmsis([value] if isinstance(value, (str, int)) else value) or None


def _aisstream(settings: AisstreamSettings, counters: Counters) -> AisstreamSource:
    key = read_secret(KEY_ENV, settings.api_key_file)
    if not key:
        raise ConfigError(f"aisstream needs an API key: set {KEY_ENV} or api_key_file (--api-key-file)")
    return AisstreamSource(key, settings.bboxes, message_types=settings.types, mmsis=settings.mmsis, url=settings.url,
                           counters=counters, ping_interval=settings.ping_interval,
                           silence_timeout=settings.silence_timeout, backoff_initial=settings.backoff_initial,
                           backoff_max=settings.backoff_max)


SOURCE = SourceType("aisstream", AisstreamSettings, _aisstream)
