"""The radio's constants (baud, channel and centre frequencies, default sample rate) and what the
receiver accepts: sample rate, centre frequency, ppm and start time, one check each.

The readers, the receiver, the RTL-SDR opener and the command line all call these, so a value is
judged the same way wherever it comes from (an option, a WAV header, a config file) and a bad one
is a :class:`SettingError` whose message names the setting and the allowed range, never an
arithmetic error from deep inside the DSP (a NaN rate used to surface as "cannot convert float NaN
to integer", 1e15 S/s as a 56 GiB filter design).

Limits and why:
- I/Q sample rate up to 20 MS/s (HackRF's maximum; an RTL-SDR does at most 3.2 MS/s). The lower
  limit (68 kS/s, both channels in the capture) is the channelizer's, see ``plan_rates``.
- Discriminator audio from 19.2 kHz (two samples per 9,600 baud symbol) to 384 kHz (the fastest
  sound cards): the decoder tries one timing phase per sample of a symbol, so a higher rate costs
  CPU without decoding more.
- ppm within +-1000: dongle crystals are within +-100 ppm; 1000 ppm is already 162 kHz at 162 MHz,
  far outside any capture.
- Start time from 0 (1970) up to the end of year 9999, the last instant a datetime can hold (the
  ingest pipeline turns reception times into datetimes).
"""
from __future__ import annotations

import math

from aiswatch.common.errors import ConfigError

# The AIS radio (ITU-R M.1371): defined here once for the whole receiver.
BAUD = 9600.0                                           # symbols per second
CHANNEL_HZ = {"A": 161_975_000.0, "B": 162_025_000.0}    # AIS 1 and AIS 2
CENTER_HZ = 162_000_000.0                               # tuned between them: both in one capture
SDR_RATE = 288_000.0                                    # the RTL-SDR's default sample rate here

MAX_IQ_RATE = 20e6
MIN_AUDIO_RATE = 19_200.0
MAX_AUDIO_RATE = 384_000.0
MAX_PPM = 1000.0
MAX_START_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z


class SettingError(ConfigError):
    """A setting the receiver cannot use; the message says which and what is allowed."""


def _number(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SettingError(f"{what} must be a finite number, got {value!r}")
    return number


def check_rate(rate, *, audio: bool | None = False) -> float:
    """The sample rate in S/s as a float. ``audio``: True for discriminator audio, False for I/Q
    samples, None when not known yet (a command-line option before the file says which): only
    what no kind of input can have is refused then."""
    number = _number(rate, "the sample rate")
    if number <= 0:
        raise SettingError(f"the sample rate must be positive, got {number:g} S/s")
    if audio:
        if not MIN_AUDIO_RATE <= number <= MAX_AUDIO_RATE:
            raise SettingError(f"discriminator audio must be sampled at {MIN_AUDIO_RATE:g} to {MAX_AUDIO_RATE:g} Hz "
                               f"(two samples per symbol up to a fast sound card), got {number:g} Hz")
    elif number > MAX_IQ_RATE:
        raise SettingError(f"sample rate {number:g} S/s is above the maximum of 20 MS/s")
    return number


def check_center(center) -> float:
    """The tuned centre frequency in Hz (whether the AIS channels fit is the channelizer's check)."""
    number = _number(center, "the centre frequency")
    if number <= 0:
        raise SettingError(f"the centre frequency must be positive, got {number:g} Hz")
    return number


def check_ppm(ppm) -> float:
    number = _number(ppm, "the frequency correction (ppm)")
    if abs(number) > MAX_PPM:
        raise SettingError(f"the frequency correction must be within +-{MAX_PPM:g} ppm, got {number:g}")
    return number


def check_start_time(start_time) -> float:
    """Unix seconds of the first sample."""
    number = _number(start_time, "the start time")
    if not 0 <= number <= MAX_START_TIME:
        raise SettingError(f"the start time must be unix seconds between 0 and {MAX_START_TIME:.0f} "
                           f"(year 9999), got {number:g}")
    return number
