"""Every real message exactly once: ``aiswatch ingest file --rate max`` of a 12-hour simulated log
(44 vessels, NMEA 4.10 tag-block times, static messages repeating under reused sequence ids)
indexes exactly its messages, replayed in order, with its messages shuffled, and with garbage
between its lines (random bytes, truncated and bad-checksum copies, orphan fragments); and
malformed messages are refused by reason while a message of every type is indexed. Each run
against the suite's test engine, as a user runs the command.
"""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from functools import reduce
from operator import xor
from pathlib import Path

import pyais
import pytest
from click.testing import CliRunner

from aiswatch.cli import main

START = "2026-11-20T00:00:00Z"
START_S = 1_795_132_800
VESSELS = 44
# A static-heavy fleet, like the issue's log (one position a minute or so, a type 5 every six
# minutes): class A ships at anchor report every 3 minutes. 39 class A vessels: the station's
# sequence id counter gives each one's type 5 the same id again every hour.
SIMULATE = ["simulate", "--vessels", str(VESSELS), "--duration", "12h", "--seed", "12", "--start", START,
            "--anchored", "1", "--class-b", "0.1", "--static-jitter", "15"]
_LINE = re.compile(r"^\\(?P<tags>[^\\]*)\\!AIVDM,(?P<total>\d),(?P<num>\d),(?P<seq>\d?),(?P<ch>[AB]),(?P<payload>[^,]*),")


def checksum(body: str) -> str:
    return f"{reduce(xor, body.encode(), 0):02X}"


def fields(line: str) -> dict:
    match = _LINE.match(line)
    assert match, line
    parts = match.groupdict()
    parts["time"] = int(re.search(r"c:(\d+)", parts["tags"]).group(1))
    return parts


@pytest.fixture(scope="module")
def twelve_hours(tmp_path_factory) -> list[list[str]]:
    """The log's messages (each a list of lines), made by ``aiswatch simulate``."""
    path = tmp_path_factory.mktemp("log") / "12h.nmea"
    result = CliRunner().invoke(main, [*SIMULATE, "--out", str(path)])
    assert result.exit_code == 0, result.output
    messages, pending = [], []
    for line in path.read_text().splitlines():
        pending.append(line)
        p = fields(line)
        if p["num"] == p["total"]:
            messages.append(pending)
            pending = []
    assert not pending
    return messages


def test_the_log_is_like_the_issues(twelve_hours):
    """12 hours, 44 vessels, times in tag blocks, and the case that lost messages before: a vessel's
    identical type 5 again under a sequence id and channel it had before (thousands of times),
    even with no other message under that key in between (what a receive-time assembler took for
    a copy in a fast replay)."""
    times = [fields(m[0])["time"] for m in twelve_hours]
    assert START_S <= min(times) < START_S + 180 and max(times) >= START_S + 12 * 3600 - 180
    statics = [m for m in twelve_hours if len(m) == 2]
    seen, last = set(), {}
    repeats = back_to_back = 0
    for message in statics:
        first, second = fields(message[0]), fields(message[1])
        key, payloads = (first["ch"], first["seq"]), (first["payload"], second["payload"])
        repeats += (key, payloads) in seen
        back_to_back += last.get(key) == payloads
        seen.add((key, payloads))
        last[key] = payloads
    assert len({pyais.decode(*m).mmsi for m in twelve_hours}) == VESSELS
    assert len(twelve_hours) > 20_000 and len(statics) > 4_000
    assert repeats > 3_000 and back_to_back >= 10


# --- the three replays ----------------------------------------------------------------------------

ARMOUR = "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVW`abcdefghijklmnopqrstuvw"


def shuffled(messages: list[list[str]]) -> list[list[str]]:
    out = list(messages)
    random.Random(5).shuffle(out)
    return out


def with_garbage(messages: list[list[str]], rng: random.Random) -> tuple[list[bytes], int]:
    """The log's lines in order with garbage lines between them, also between the two lines of a
    message: random bytes, truncated and bad-checksum copies of real lines, copies of real
    fragments from anywhere in the log (their own times), and orphan fragments (a message whose
    other line was lost) at the time of the lines around them. Returns the lines and how many
    are garbage. Orphans get a sequence id no real message uses on their channel within a second
    of them, as a receiver's counter does: the next message after one always has another id."""
    statics = [m for m in messages if len(m) == 2]
    used = {(p["ch"], p["seq"], p["time"]) for m in statics for p in [fields(m[0])]}
    real = [line for m in messages for line in m]
    out: list[bytes] = []
    garbage = 0
    for message in messages:
        t = fields(message[0])["time"]
        for line in message:
            out.append(line.encode())
            if rng.random() >= 0.15:
                continue
            kind = rng.randrange(5)
            if kind == 0:                                  # random bytes
                junk = bytes(rng.choice([b for b in range(256) if b not in (10, 13)])
                             for _ in range(rng.randint(1, 90)))
            elif kind == 1:                                # a truncated copy
                other = rng.choice(real)
                junk = other[:rng.randint(1, len(other) - 1)].encode()
            elif kind == 2:                                # a copy with a wrong checksum
                other = rng.choice(real)
                junk = (other[:-2] + f"{int(other[-2:], 16) ^ rng.randint(1, 255):02X}").encode()
            elif kind == 3:                                # a copy of a fragment from elsewhere
                junk = rng.choice(rng.choice(statics)).encode()
            else:                                          # an orphan fragment of now
                channel = rng.choice("AB")
                free = [s for s in "0123456789"
                        if not any((channel, s, t + d) in used for d in (-1, 0, 1))]
                seq = rng.choice(free)
                used.add((channel, seq, t))
                number = rng.choice((1, 2))
                payload = "5" + "".join(rng.choice(ARMOUR) for _ in range(59 if number == 1 else 10))
                body = f"AIVDM,2,{number},{seq},{channel},{payload},{0 if number == 1 else 2}"
                tags = f"s:sim,c:{t}"
                junk = f"\\{tags}*{checksum(tags)}\\!{body}*{checksum(body)}".encode()
            out.append(junk)
            garbage += 1
    return out, garbage


def ingest(path: Path, es_url: str, namespace: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    env = dict(os.environ, AISWATCH_HOME=str(tmp_path / "home"),
               AISWATCH_METRICS__STATUS_FILE=str(tmp_path / "status.json"))
    env.pop("ES_URL", None)
    proc = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "ingest", "file",
                           str(path), "--rate", "max", "--es", es_url, "--namespace", namespace,
                           "--spool-dir", str(tmp_path / "spool")],
                          env=env, capture_output=True, text=True, timeout=900)
    counters = json.loads((tmp_path / "status.json").read_text())["counters"]
    return proc, counters


@pytest.mark.parametrize("variant", ["in order", "shuffled by message", "garbage between lines"])
def test_a_replay_at_full_speed_indexes_exactly_its_messages(variant, twelve_hours, es_url, es, names, tmp_path):
    messages = shuffled(twelve_hours) if variant == "shuffled by message" else twelve_hours
    n_lines = sum(len(m) for m in messages)
    if variant == "garbage between lines":
        lines, n_garbage = with_garbage(messages, random.Random(7))
        assert n_garbage > 3_000
    else:
        lines, n_garbage = [line.encode() for m in messages for line in m], 0
    path = tmp_path / "replay.nmea"
    path.write_bytes(b"\n".join(lines) + b"\n")

    proc, counters = ingest(path, es_url, names.namespace, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    es.indices.refresh(index=names.messages_pattern)
    assert es.count(index=names.messages_pattern)["count"] == len(messages)
    assert counters["documents_indexed"] == counters["messages_decoded"] == len(messages)
    # every real line went into a message, every garbage line was refused
    assert counters["sentences_decoded"] == n_lines
    assert counters["lines_in"] == n_lines + n_garbage
    assert counters.get("rejected", 0) == n_garbage
    if n_garbage:
        reasons = {k: v for k, v in counters.items() if k.startswith("rejected.")}
        assert {"rejected.bad_checksum", "rejected.fragment_duplicate"} <= set(reasons)
    # no phantom vessel
    es.indices.refresh(index=names.ships)
    assert es.count(index=names.ships)["count"] == VESSELS


# --- malformed messages: refused by reason, never a document or a vessel --------------------------

BAD_MMSI = 211999999     # the malformed messages' own MMSI, so a phantom would show


def test_malformed_messages_are_refused_by_reason_and_every_type_is_indexed(es_url, es, names, tmp_path):
    from ais_vectors import BORDER_LENGTHS, EVERY_TYPE, MALFORMED, lines_of, message_bits, resized, with_field

    valid = [message_bits(data) for data in EVERY_TYPE]
    first_of_type: dict[int, dict] = {}
    for data in EVERY_TYPE:
        first_of_type.setdefault(data["type"], data)
    valid += [resized(message_bits(first_of_type[t]), n) for t, n in BORDER_LENGTHS]
    malformed = [(bits if reason in ("bad_mmsi", "short_payload") else with_field(bits, 8, 30, BAD_MMSI), reason)
                 for _, bits, reason in MALFORMED]
    out, expected = [], {}
    messages = [(bits, None) for bits in valid] + malformed
    random.Random(3).shuffle(messages)
    for k, (bits, reason) in enumerate(messages):
        tags = f"s:test,c:{START_S + 10 * k}"
        lines = lines_of(bits, seq_id=k % 10)
        out += [f"\\{tags}*{checksum(tags)}\\{line}" for line in lines]
        if reason:
            expected[f"rejected.{reason}"] = expected.get(f"rejected.{reason}", 0) + len(lines)
    path = tmp_path / "malformed.nmea"
    path.write_text("\n".join(out) + "\n")

    proc, counters = ingest(path, es_url, names.namespace, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {k: v for k, v in counters.items() if k.startswith("rejected.")} == expected
    assert set(expected) == {f"rejected.{r}" for r in
                             ("unknown_type", "bad_mmsi", "bad_length", "unknown_part", "short_payload")}
    for reason, n in expected.items():      # the summary on stderr says it too
        assert re.search(rf"^\s+{reason[len('rejected.'):]}\s+{n}$", proc.stderr, re.M), (reason, proc.stderr[-2000:])
    es.indices.refresh(index=names.messages_pattern)
    hits = es.search(index=names.messages_pattern, size=1000, source=["msg_type", "mmsi"])["hits"]["hits"]
    assert len(hits) == len(valid) == counters["documents_indexed"]
    assert {h["_source"]["msg_type"] for h in hits} == set(range(1, 28))
    bad = [f"{m:09d}" for m in (BAD_MMSI, 1003117694, 2 ** 30 - 1)]
    assert not [h for h in hits if h["_source"]["mmsi"] in bad]
    es.indices.refresh(index=names.ships)
    assert es.count(index=names.ships, query={"terms": {"mmsi": bad}})["count"] == 0
    assert es.count(index=names.ships, query={"term": {"mmsi": f"{EVERY_TYPE[0]['mmsi']:09d}"}})["count"] == 1
