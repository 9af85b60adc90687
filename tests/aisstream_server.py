"""A local aisstream.io look-alike for tests: a real websocket server (websockets.serve) that speaks
the protocol the way the service does, including its failure modes.

* Each connection must send the subscription within ``subscribe_deadline`` (3 s, as aisstream):
  ``{"APIKey": str, "BoundingBoxes": [[[lat, lon], [lat, lon]], ...], "FiltersShipMMSI": ["9 digits"],
  "FilterMessageTypes": [...]}``. Shape violations (longitude first, the singular "FilterShipMMSI",
  empty filters sent, MMSIs as numbers, ...) are recorded in ``problems``; a late subscription
  gets the connection closed, a wrong key gets ``{"error": ...}`` and a close, like the service.
* ``plan`` says what each successive connection does after subscribing:
  ``"stream"`` sends the messages and then stays open, ``"drop"`` sends ``drop_after`` messages and
  aborts the TCP connection without a close frame (the client sees 1006), ``"silent"`` sends
  nothing and stays open (pings are still answered: the hours-long silent connection users report),
  ``"429"`` refuses the HTTP upgrade with 429 Too Many Requests, ``"refuse"`` with 503 Service
  Unavailable (a plain failure, no rate limit). The last entry repeats.
* Messages go out as text frames, every other one as binary frames (aisstream has sent both).
* ``connections`` records each attempt (behaviour, when it was opened and closed, server clock
  = the test's ``time.monotonic``), ``pings`` when each client ping arrived: what the client's
  back-off and keepalive timings are measured from.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

KNOWN_KEYS = {"APIKey", "BoundingBoxes", "FiltersShipMMSI", "FilterMessageTypes"}

# The server is the other party: what it logs (it logs received frames, the key included, at
# DEBUG) is not our client's output, so it does not go to the test's log capture.
server_log = logging.getLogger("tests.fake_aisstream")
server_log.propagate = False
server_log.setLevel(logging.ERROR)


class _Connection(ServerConnection):
    """Notes when each client ping arrives (websockets answers pings itself, unseen otherwise)."""

    fake_server: "FakeAisstream | None" = None

    def process_event(self, event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING and self.fake_server is not None:
            self.fake_server.pings.append(time.monotonic())
        super().process_event(event)


def subscription_problems(sub, api_key: str) -> list[str]:
    """Everything about a subscription that aisstream would reject or silently ignore."""
    if not isinstance(sub, dict):
        return ["subscription is not a JSON object"]
    problems = [f"unknown key {k!r} (aisstream ignores it)" for k in sub if k not in KNOWN_KEYS]
    if not isinstance(sub.get("APIKey"), str):
        problems.append("APIKey missing or not a string")
    boxes = sub.get("BoundingBoxes")
    if not isinstance(boxes, list) or not boxes:
        problems.append("BoundingBoxes missing or empty")
    else:
        for box in boxes:
            ok = (isinstance(box, list) and len(box) == 2
                  and all(isinstance(c, list) and len(c) == 2 and all(isinstance(v, (int, float)) for v in c)
                          for c in box))
            if not ok:
                problems.append(f"bounding box {box!r} is not [[lat, lon], [lat, lon]]")
            elif not all(-90 <= c[0] <= 90 and -180 <= c[1] <= 180 for c in box):
                problems.append(f"bounding box {box!r} out of range (latitude first?)")
    if "FiltersShipMMSI" in sub:
        mmsis = sub["FiltersShipMMSI"]
        if not mmsis:
            problems.append("FiltersShipMMSI sent empty (omit it instead)")
        elif not all(isinstance(m, str) and len(m) == 9 and m.isdigit() for m in mmsis):
            problems.append(f"FiltersShipMMSI must be 9-digit strings: {mmsis!r}")
    if "FilterMessageTypes" in sub:
        if not sub["FilterMessageTypes"] or not all(isinstance(t, str) for t in sub["FilterMessageTypes"]):
            problems.append("FilterMessageTypes empty or not strings")
    return problems


class FakeAisstream:
    def __init__(self, api_key: str, messages: list[dict], plan: list[str] = ("stream",), *,
                 subscribe_deadline: float = 3.0, drop_after: int = 1, echo_key_in_errors: bool = False) -> None:
        self.api_key = api_key
        self.messages = list(messages)
        self.plan = list(plan)
        self.subscribe_deadline = subscribe_deadline
        self.drop_after = drop_after
        self.echo_key_in_errors = echo_key_in_errors
        self.subscriptions: list[dict] = []
        self.subscribe_delays: list[float] = []
        self.problems: list[str] = []
        self.attempts = 0          # HTTP upgrade requests, including refused ones
        self.behaviours: list[str] = []
        self.connections: list[dict] = []      # {"behaviour", "opened", "closed"} per attempt
        self.pings: list[float] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake aisstream")
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v0/stream"

    def __enter__(self) -> "FakeAisstream":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake aisstream server did not start")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    # --- server -----------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, process_request=self._process_request,
                         logger=server_log, create_connection=_Connection) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def _next_behaviour(self) -> str:
        behaviour = self.plan[min(self.attempts, len(self.plan) - 1)]
        self.attempts += 1
        return behaviour

    def _process_request(self, connection, request):
        now = time.monotonic()
        behaviour = self._next_behaviour()
        self.behaviours.append(behaviour)
        connection.behaviour = behaviour
        connection.fake_server = self
        connection.record = {"behaviour": behaviour, "opened": now, "closed": now}
        self.connections.append(connection.record)
        if behaviour == "429":
            return connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "Too Many Requests\n")
        if behaviour == "refuse":
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        return None

    async def _handler(self, ws) -> None:
        try:
            await self._serve_connection(ws)
        finally:
            ws.record["closed"] = time.monotonic()

    async def _serve_connection(self, ws) -> None:
        opened = time.monotonic()
        try:
            raw = await asyncio.wait_for(ws.recv(), self.subscribe_deadline)
        except asyncio.TimeoutError:
            self.problems.append(f"no subscription within {self.subscribe_deadline} s")
            await ws.close(1008, "subscription timeout")
            return
        self.subscribe_delays.append(time.monotonic() - opened)
        try:
            sub = json.loads(raw)
        except ValueError:
            self.problems.append("subscription is not JSON")
            await ws.close()
            return
        self.subscriptions.append(sub)
        self.problems.extend(subscription_problems(sub, self.api_key))
        if sub.get("APIKey") != self.api_key:
            text = "Api Key Is Not Valid" + (f": {sub.get('APIKey')}" if self.echo_key_in_errors else "")
            await ws.send(json.dumps({"error": text}))
            await ws.close()
            return
        behaviour = ws.behaviour
        if behaviour == "silent":
            await ws.wait_closed()
            return
        count = self.drop_after if behaviour == "drop" else len(self.messages)
        for i, message in enumerate(self.messages[:count]):
            data = json.dumps(message)
            await ws.send(data.encode() if i % 2 else data)
        if behaviour == "drop":
            await asyncio.sleep(0.05)
            ws.transport.abort()           # no close frame: the client sees code 1006
            return
        await ws.wait_closed()


# --- realistic messages (field names and value forms as aisstream sends them) -------------------

def meta(mmsi: int, time_utc: str = "2026-11-22 05:00:00.123456789 +0000 UTC", name: str = "") -> dict:
    return {"MMSI": mmsi, "MMSI_String": mmsi, "ShipName": name, "latitude": 0.0, "longitude": 0.0,
            "time_utc": time_utc}


def sample_messages() -> list[dict]:
    return [
        {"MessageType": "PositionReport", "MetaData": meta(259000420, name="AUGUSTSON"),
         "Message": {"PositionReport": {
             "Cog": 308.1, "CommunicationState": 81982, "Latitude": 66.02695, "Longitude": 12.253821666666665,
             "MessageID": 1, "NavigationalStatus": 0, "PositionAccuracy": True, "Raim": False, "RateOfTurn": 20,
             "RepeatIndicator": 0, "Sog": 12.5, "Spare": 0, "SpecialManoeuvreIndicator": 0, "Timestamp": 31,
             "TrueHeading": 235, "UserID": 259000420, "Valid": True}}},
        {"MessageType": "ShipStaticData", "MetaData": meta(259000420, "2026-11-22 05:00:01 +0000 UTC"),
         "Message": {"ShipStaticData": {
             "AisVersion": 2, "CallSign": "LLUX   ", "Destination": "BODO@@@@@@", "Dimension": {"A": 60, "B": 12, "C": 6, "D": 6},
             "Dte": False, "Eta": {"Day": 30, "Hour": 8, "Minute": 15, "Month": 12}, "FixType": 1, "ImoNumber": 9123456,
             "MaximumStaticDraught": 4.2, "MessageID": 5, "Name": "AUGUSTSON           ", "RepeatIndicator": 0,
             "Spare": False, "Type": 60, "UserID": 259000420, "Valid": True}}},
        {"MessageType": "StandardClassBPositionReport", "MetaData": meta(211234560),
         "Message": {"StandardClassBPositionReport": {
             "AssignedMode": False, "ClassBBand": True, "ClassBDisplay": False, "ClassBDsc": True, "ClassBMsg22": True,
             "ClassBUnit": True, "Cog": 45.3, "CommunicationState": 393222, "CommunicationStateIsItdma": True,
             "Latitude": -33.8568, "Longitude": 151.2153, "MessageID": 18, "PositionAccuracy": False, "Raim": True,
             "RepeatIndicator": 0, "Sog": 6.1, "Spare1": 0, "Spare2": 0, "Timestamp": 12, "TrueHeading": 511,
             "UserID": 211234560, "Valid": True}}},
        {"MessageType": "ExtendedClassBPositionReport", "MetaData": meta(367000001),
         "Message": {"ExtendedClassBPositionReport": {
             "AssignedMode": False, "Cog": 180.0, "Dimension": {"A": 10, "B": 5, "C": 2, "D": 3}, "Dte": True,
             "FixType": 1, "Latitude": 40.5, "Longitude": -73.9, "MessageID": 19, "Name": "SEA BREEZE",
             "PositionAccuracy": True, "Raim": False, "RepeatIndicator": 0, "Sog": 0.0, "Spare1": 0, "Spare2": 0,
             "Spare3": 0, "Timestamp": 60, "TrueHeading": 90, "Type": 37, "UserID": 367000001, "Valid": True}}},
        {"MessageType": "StaticDataReport", "MetaData": meta(367000001),
         "Message": {"StaticDataReport": {
             "MessageID": 24, "PartNumber": False, "RepeatIndicator": 0, "Reserved": 0, "UserID": 367000001,
             "Valid": True, "ReportA": {"Name": "SEA BREEZE", "Valid": True},
             "ReportB": {"CallSign": "", "Dimension": {"A": 0, "B": 0, "C": 0, "D": 0}, "FixType": 0, "ShipType": 0,
                         "Spare": 0, "Valid": False, "VenderIDModel": 0, "VenderIDSerial": 0, "VendorIDName": ""}}}},
        {"MessageType": "StaticDataReport", "MetaData": meta(367000001),
         "Message": {"StaticDataReport": {
             "MessageID": 24, "PartNumber": True, "RepeatIndicator": 0, "Reserved": 0, "UserID": 367000001,
             "Valid": True, "ReportA": {"Name": "", "Valid": False},
             "ReportB": {"CallSign": "WDB1234", "Dimension": {"A": 10, "B": 5, "C": 2, "D": 3}, "FixType": 1,
                         "ShipType": 37, "Spare": 0, "Valid": True, "VenderIDModel": 3, "VenderIDSerial": 4242,
                         "VendorIDName": "SRT"}}}},
        {"MessageType": "BaseStationReport", "MetaData": meta(2573485),
         "Message": {"BaseStationReport": {
             "CommunicationState": 0, "FixType": 7, "Latitude": 59.9, "Longitude": 10.7, "LongRangeEnable": False,
             "MessageID": 4, "PositionAccuracy": True, "Raim": False, "RepeatIndicator": 0, "Spare": 0,
             "UserID": 2573485, "UtcDay": 22, "UtcHour": 4, "UtcMinute": 59, "UtcMonth": 11, "UtcSecond": 58,
             "UtcYear": 2026, "Valid": True}}},
        {"MessageType": "AidsToNavigationReport", "MetaData": meta(992591001),
         "Message": {"AidsToNavigationReport": {
             "AssignedMode": False, "AtoN": 0, "Dimension": {"A": 0, "B": 0, "C": 0, "D": 0}, "Fixtype": 7,
             "Latitude": 58.1, "Longitude": 7.9, "MessageID": 21, "Name": "LANGOYA N", "NameExtension": "",
             "OffPosition": False, "PositionAccuracy": False, "Raim": False, "RepeatIndicator": 0, "Spare": False,
             "Timestamp": 61, "Type": 13, "UserID": 992591001, "Valid": True, "VirtualAtoN": True}}},
        {"MessageType": "LongRangeAisBroadcastMessage", "MetaData": meta(636000111),
         "Message": {"LongRangeAisBroadcastMessage": {
             "Cog": 270, "Latitude": -10.5, "Longitude": 80.25, "MessageID": 27, "NavigationalStatus": 0,
             "PositionAccuracy": False, "PositionLatency": False, "Raim": False, "RepeatIndicator": 3, "Sog": 14,
             "Spare": False, "UserID": 636000111, "Valid": True}}},
        {"MessageType": "StandardSearchAndRescueAircraftReport", "MetaData": meta(111257001),
         "Message": {"StandardSearchAndRescueAircraftReport": {
             "AltFromBaro": False, "Altitude": 300, "AssignedMode": False, "Cog": 12.5,
             "CommunicationState": 0, "CommunicationStateIsItdma": False, "Dte": False, "Latitude": 60.1,
             "Longitude": 5.2, "MessageID": 9, "PositionAccuracy": True, "Raim": False, "RepeatIndicator": 0,
             "Sog": 120, "Spare1": 0, "Spare2": 0, "Timestamp": 5, "UserID": 111257001, "Valid": True}}},
        {"MessageType": "AddressedBinaryMessage", "MetaData": meta(257000001),
         "Message": {"AddressedBinaryMessage": {"MessageID": 6, "UserID": 257000001, "DestinationID": 257000002,
                                                "ApplicationID": {"DesignatedAreaCode": 1, "FunctionIdentifier": 0,
                                                                  "Valid": True},
                                                "BinaryData": "AAEC", "Valid": True}}},
        {"MessageType": "AddressedBinaryMessage", "MetaData": meta(257000003),
         "Message": {"AddressedBinaryMessage": {"MessageID": 6, "UserID": 257000003, "Valid": True}}},
    ]
