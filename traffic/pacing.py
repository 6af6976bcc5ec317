"""Pacing: when to send, as a token bucket whose fill rate follows the pattern's ``rate(t)``.

Why this shape: a sender that sleeps ``1/rate`` between packets cannot exceed ~20 kpps in Python
(sleep granularity) and drifts; one that spins burns a core even at 10 pps. The pacer works in
ticks (default 1 ms): at each tick the credit is ``floor(cumulative(t)) - sent`` (``cumulative`` =
the pattern's exact integral, see ``patterns.py``), the generator sends that many packets back to
back (at most ``max_burst``), and the pacer waits for the next tick with ``time.sleep`` until
``spin_s`` before it, then busy-waits. Missed ticks are not lost: the generator sends again without
waiting while it is behind (in bursts of at most ``max_burst``), so the achieved count tracks the
integral.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from traffic.patterns import CumFn

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

    cumulative: CumFn
    tick_s: float
    max_burst: int
    t0: float = field(default_factory=time.perf_counter)
    taken: int = 0
    credit: float = 0.0  # packets owed after the last due()/took(): > 0 means behind schedule
    next_tick: float = 0.0

    def __post_init__(self) -> None:
        self.next_tick = self.t0

    def due(self, now: float) -> int:
        """Packets due at ``now``: ``floor(cumulative(now - t0) + 1e-9) - taken``, capped at max_burst."""
        owed = math.floor(self.cumulative(now - self.t0) + 1e-9) - self.taken
        self.credit = owed
        return max(0, min(owed, self.max_burst))

    def took(self, n: int) -> None:
        self.taken += n
        self.credit -= n

    def wait(self) -> None:
        """Sleep to the next tick; if we are late, the next tick is one tick from now."""
        self.next_tick += self.tick_s
        now = time.perf_counter()
        if self.next_tick < now:
            self.next_tick = now + self.tick_s
        sleep_until(self.next_tick)
