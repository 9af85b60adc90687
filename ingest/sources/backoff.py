"""Exponential back-off with jitter for reconnecting sources (TCP feeds, the aisstream websocket).

Jitter matters: after a server restart every client that reconnects on the same schedule arrives
at once (aisstream answers such storms with HTTP 429). The delays are "1 -> 60 s" as documented,
jittered upward and never outside those bounds: attempt k waits a uniform draw from
[n, min(2n, maximum)] with n = min(maximum, initial * 2**k), so the first wait is 1-2 s (never
less than ``initial``), the sixth 32-60 s, and from then on ``maximum``. At the cap clients no
longer jitter, but by then the randomness of the earlier waits has already spread them apart.
"""
from __future__ import annotations

import random


class Backoff:
    """Delays of at least initial, 2*initial, 4*initial, ... up to maximum, each jittered upward."""

    def __init__(self, initial: float = 1.0, maximum: float = 60.0, rng: random.Random | None = None) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got initial={initial} maximum={maximum}")
        self.initial = float(initial)
        self.maximum = float(maximum)
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the nominal delay up to the cap."""
        nominal = min(self.maximum, self.initial * (2 ** min(self._attempt, 30)))
        self._attempt += 1
        return self._rng.uniform(nominal, min(2 * nominal, self.maximum))

    def reset(self) -> None:
        """Call after a connection proved good (data arrived), so the next failure starts small again."""
        self._attempt = 0
