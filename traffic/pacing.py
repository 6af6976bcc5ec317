"""Pacing: when to send, as a token bucket whose fill rate follows the pattern's ``rate(t)``.

Why this shape: a sender that sleeps ``1/rate`` between packets cannot exceed ~20 kpps in Python
(sleep granularity) and drifts; one that spins burns a core even at 10 pps. The pacer works in
ticks (default 1 ms): at each tick it adds ``integral of rate(t)`` since the last tick to a credit,
the generator sends ``floor(credit)`` packets back to back (at most ``max_burst``), and the pacer
waits for the next tick with ``time.sleep`` until ``spin_s`` before it, then busy-waits. Missed
ticks are not lost: their credit carries over and the generator sends again without waiting while
it is behind (in bursts of at most ``max_burst``), so the achieved count tracks the integral.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from traffic.patterns import RateFn

SPIN_S = 0.0002  # busy-wait this long before a deadline (s); sleep() wakes ~50-100 us late


def sleep_until(deadline: float, spin_s: float = SPIN_S) -> None:
    """Wait until ``time.perf_counter() >= deadline``: coarse sleep, then spin near the deadline."""
    remaining = deadline - time.perf_counter()
    if remaining > spin_s:
        time.sleep(remaining - spin_s)
    while time.perf_counter() < deadline:
        pass


@dataclass
class Pacer:
    """Credit bookkeeping for one run; times are ``perf_counter`` seconds."""

    rate: RateFn
    tick_s: float
    max_burst: int
    t0: float = field(default_factory=time.perf_counter)
    _last_t: float = 0.0
    _last_r: float = -1.0
    credit: float = 0.0
    next_tick: float = 0.0

    def __post_init__(self) -> None:
        self._last_r = self.rate(0.0)
        self.next_tick = self.t0

    def due(self, now: float) -> int:
        """Packets due at ``now`` (trapezoid integral of the rate since the last call), capped."""
        t = now - self.t0
        r = self.rate(t)
        self.credit += 0.5 * (r + self._last_r) * (t - self._last_t)
        self._last_t, self._last_r = t, r
        return min(int(self.credit), self.max_burst)

    def took(self, n: int) -> None:
        self.credit -= n

    def wait(self) -> None:
        """Sleep to the next tick; if we are late, the next tick is one tick from now."""
        self.next_tick += self.tick_s
        now = time.perf_counter()
        if self.next_tick < now:
            self.next_tick = now + self.tick_s
        sleep_until(self.next_tick)
