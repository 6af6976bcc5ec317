"""The collector interface and the counter -> rate helper all collectors share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from agent.schema import Point


class Collector(Protocol):
    """A telemetry source; ``collect`` may raise, the agent counts and logs the failure."""

    name: str

    def collect(self, now_ns: int) -> list[Point]: ...


class RateTracker:
    """Per-key previous counter values -> rates (per second) between two calls.

    A counter that went backwards (source restarted) yields no rate for that interval instead of a
    negative one.
    """

    def __init__(self) -> None:
        self._prev: dict[str, tuple[int, Mapping[str, int]]] = {}

    def rates(self, key: str, now_ns: int, counters: Mapping[str, int],
              names: Mapping[str, str]) -> dict[str, float]:
        """Rates for ``names`` (counter name -> rate field name); empty on the first call."""
        prev = self._prev.get(key)
        self._prev[key] = (now_ns, dict(counters))
        if prev is None:
            return {}
        dt_s = (now_ns - prev[0]) / 1e9
        if dt_s <= 0:
            return {}
        out: dict[str, float] = {}
        for counter, rate_name in names.items():
            if counter in counters and counter in prev[1]:
                delta = counters[counter] - prev[1][counter]
                if delta >= 0:
                    out[rate_name] = delta / dt_s
        return out

    def forget_except(self, keys: set[str]) -> None:
        """Drop state of keys that disappeared (removed interfaces, stopped instances)."""
        for k in set(self._prev) - keys:
            del self._prev[k]


IF_RATES: Mapping[str, str] = {
    "rx_packets": "rx_pps",
    "tx_packets": "tx_pps",
    "rx_bytes": "rx_bps",
    "tx_bytes": "tx_bps",
}


def drops_rate(key: str, now_ns: int, counters: Mapping[str, int], tracker: RateTracker) -> dict[str, float]:
    """rx+tx drop rate (packets/s) as ``drops_pps``."""
    total = {"drops": counters.get("rx_dropped", 0) + counters.get("tx_dropped", 0)}
    r = tracker.rates(key + "/drops", now_ns, total, {"drops": "drops_pps"})
    return r
