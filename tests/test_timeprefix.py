"""split_time_prefix: every documented prefix form, and lines it must leave alone."""
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from aiswatch.ingest.timeprefix import split_time_prefix

SENTENCE = "!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C"
T0 = datetime(2026, 11, 22, 5, 0, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("prefix, expected", [
    ("1700000000 ", 1700000000.0),
    ("1700000000.123 ", 1700000000.123),
    ("1700000000123;", 1700000000.123),
    ("1700000000123 ; ", 1700000000.123),
    ("1700000000\t", 1700000000.0),
    ("1700000000,", 1700000000.0),
    ("2026-11-22T05:00:00Z ", T0),
    ("2026-11-22T05:00:00 ", T0),
    ("2026-11-22 05:00:00.123,", T0 + 0.123),
    ("2026-11-22 05:00:00.123Z;", T0 + 0.123),
    ("2026-11-22T07:00:00+02:00 ", T0),
    ("2026-11-22T07:00:00.5+0200\t", T0 + 0.5),
    ("2026-11-22T05:00:00.123456789Z ", T0 + 0.123456),
])
def test_prefix_forms(prefix, expected):
    seconds, rest = split_time_prefix(prefix + SENTENCE)
    assert rest == SENTENCE
    assert seconds == pytest.approx(expected, abs=1e-6)


def test_prefix_before_tag_block_keeps_the_tag_block():
    line = "1700000000.5 \\s:rx1,c:1700000000*00\\" + SENTENCE
    seconds, rest = split_time_prefix(line)
    assert seconds == 1700000000.5
    assert rest == "\\s:rx1,c:1700000000*00\\" + SENTENCE


def test_dollar_sentences_are_recognised():
    seconds, rest = split_time_prefix("1700000000 $GPGGA,foo*00")
    assert seconds == 1700000000.0 and rest == "$GPGGA,foo*00"


@pytest.mark.parametrize("line", [
    SENTENCE,                                    # no prefix: returned unchanged at once
    "\\s:rx1,c:1700000000*00\\" + SENTENCE,       # tag block only
    "",
    "1700000000" + SENTENCE,                     # no separator
    "12 " + SENTENCE,                            # a number, not a plausible time
    "17000000001234567 " + SENTENCE,             # too many digits
    "2026-13-45T99:00:00Z " + SENTENCE,          # looks like ISO, is not a date
    "1700000000 hello",                          # nothing NMEA after the prefix
    "1700000000 ",
    "1.2.3 " + SENTENCE,
    "abc " + SENTENCE,
])
def test_lines_left_alone(line):
    assert split_time_prefix(line) == (None, line)



moments = st.datetimes(min_value=datetime(1975, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=timezone.utc))


@settings(derandomize=True, max_examples=300, deadline=None)
@given(moments, st.sampled_from(["iso_t_z", "iso_space", "epoch_s", "epoch_ms"]), st.sampled_from([" ", ",", ";", "\t", " ; "]))
def test_any_time_in_any_form_round_trips(moment, form, separator):
    stamp = moment.timestamp()
    text = {"iso_t_z": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "iso_space": moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            "epoch_s": f"{stamp:.3f}",
            "epoch_ms": str(round(stamp * 1000))}[form]
    seconds, rest = split_time_prefix(text + separator + SENTENCE)
    assert rest == SENTENCE
    assert seconds == pytest.approx(stamp, abs=1e-3)
