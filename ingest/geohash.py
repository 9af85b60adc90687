"""Geohash encoding, fast enough to run on every position report.

A geohash interleaves longitude and latitude bisection bits (longitude first) and writes them
five at a time in base 32. Bisecting n times is the same as finding which of 2**n equal parts
holds the coordinate, so we compute that index once (checked against the exact boundaries, so
the cells are bisection's even at a boundary) and interleave the bits with a lookup table
instead of looping bit by bit. Only encoding is needed (documents carry the cell as a keyword; Elasticsearch
aggregates by geohash itself); maintained geohash packages on PyPI are pure-Python bisection
loops or unmaintained C extensions, so this small module is the better fit.
"""
from __future__ import annotations

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
MAX_PRECISION = 12
_LAT_STEP15 = 180.0 / 32768     # cell sizes at precision 6 (15 bits each), exact binary fractions
_LON_STEP15 = 360.0 / 32768

# _SPREAD[b]: the 8 bits of b moved to the even bit positions of a 16-bit value.
_SPREAD = tuple(sum(((b >> i) & 1) << (2 * i) for i in range(8)) for b in range(256))


# _SPREAD15[v]: the 15 bits of v moved to the even positions (the precision-6 cell: one look-up
# per coordinate instead of two and a shift; 32768 entries, about 1 MB)
_SPREAD15 = tuple(_SPREAD[v & 255] | _SPREAD[v >> 8] << 16 for v in range(1 << 15))

# Two base-32 characters for every 10-bit value: even precisions need no per-character loop.
_PAIRS = tuple(BASE32[i >> 5] + BASE32[i & 31] for i in range(1024))


def _spread(value: int) -> int:
    """Bits of ``value`` (up to 32 bits) moved to even positions."""
    spread = _SPREAD
    return (spread[value & 0xFF] | spread[(value >> 8) & 0xFF] << 16
            | spread[(value >> 16) & 0xFF] << 32 | spread[value >> 24] << 48)


def _cell_index(value: float, low: float, span: float, bits: int) -> int:
    """Index of the 2**bits-th part of [low, low + span) holding ``value``, exactly as bisection
    decides (value >= boundary goes up). The quotient can round across a boundary when ``value``
    is within a rounding error of it, so the estimate is checked against the exact boundaries
    (multiples of span / 2**bits are exact binary fractions)."""
    cells = 1 << bits
    step = span / cells
    index = int((value - low) / span * cells)
    if index > 0 and value < low + index * step:
        index -= 1
    elif index < cells - 1 and value >= low + (index + 1) * step:
        index += 1
    return cells - 1 if index >= cells else index   # the upper edge belongs to the last cell


def encode(lat: float, lon: float, precision: int = 6) -> str:
    """Geohash of ``(lat, lon)`` in degrees with ``precision`` characters (1-12)."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"not a position: lat={lat!r} lon={lon!r}")
    if precision == 6:   # the document cell, on every position report: 15 bits each, unrolled
        lat_i = int((lat + 90.0) / 180.0 * 32768.0)
        lon_i = int((lon + 180.0) / 360.0 * 32768.0)
        # as _cell_index: correct an estimate that rounded across a boundary; clamp the top edge
        if lat < lat_i * _LAT_STEP15 - 90.0:
            lat_i -= 1
        elif lat >= (lat_i + 1) * _LAT_STEP15 - 90.0 or lat_i > 32767:
            lat_i = min(lat_i + 1, 32767)
        if lon < lon_i * _LON_STEP15 - 180.0:
            lon_i -= 1
        elif lon >= (lon_i + 1) * _LON_STEP15 - 180.0 or lon_i > 32767:
            lon_i = min(lon_i + 1, 32767)
        code = _SPREAD15[lon_i] << 1 | _SPREAD15[lat_i]
        return _PAIRS[code >> 20] + _PAIRS[(code >> 10) & 1023] + _PAIRS[code & 1023]
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be 1..{MAX_PRECISION}, not {precision}")
    total_bits = 5 * precision
    lon_bits = (total_bits + 1) // 2
    lat_bits = total_bits // 2
    lat_i = _cell_index(lat, -90.0, 180.0, lat_bits)
    lon_i = _cell_index(lon, -180.0, 360.0, lon_bits)
    if lon_bits == lat_bits:
        code = _spread(lon_i) << 1 | _spread(lat_i)
    else:  # odd number of bits: longitude has one more, and takes the last bit too
        code = _spread(lon_i) | _spread(lat_i) << 1
    pair_bits = total_bits - total_bits % 10
    head = BASE32[code >> pair_bits] if precision & 1 else ""   # odd precision: one lone character
    return head + "".join(_PAIRS[(code >> shift) & 1023] for shift in range(pair_bits - 10, -1, -10))
