"""Offered-load patterns: rate(t) in pps for the aggregate, and how flows share it.

Why functions of time and not precomputed schedules: the pacer asks ``cumulative(t)`` (packets the
pattern has offered since the start, the exact integral of ``rate(t)``) once per tick (1 ms), not
per packet; by time ``t`` the generator has sent exactly ``floor(cumulative(t))`` packets (when it
gets the CPU), so a stalled sender catches up instead of drifting and the run's packet bound
``floor(cumulative(duration_s))`` is met exactly at the time bound.

Flows share the aggregate by weight (``FlowSpec.weight`` x Zipf(rank)); the per-packet flow choice
is a precomputed stride-scheduling sequence, so shares are exact over every cycle and deterministic
(no random numbers in the hot path, runs are reproducible).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence

from traffic.profile import PatternSpec

RateFn = Callable[[float], float]
CumFn = Callable[[float], float]


def rate_fn(p: PatternSpec, duration_s: float) -> RateFn:
    """The aggregate rate (pps) at ``t`` seconds after the start of the run."""
    if p.kind in ("constant", "pcap"):
        r = p.rate_pps
        return lambda t: r
    if p.kind == "ramp":
        a, b, d = p.start_pps, p.end_pps, duration_s
        return lambda t: a + (b - a) * min(max(t / d, 0.0), 1.0)
    if p.kind == "on_off":
        period, on, r = p.on_s + p.off_s, p.on_s, p.rate_pps
        return lambda t: r if (t % period) < on else 0.0
    if p.kind == "diurnal":
        mean, amp, w = p.rate_pps, p.amplitude, 2 * math.pi / p.period_s
        return lambda t: max(0.0, mean * (1 + amp * math.sin(w * t)))
    if p.kind == "flash_crowd":
        return _flash(p)
    raise ValueError(f"unknown pattern kind {p.kind!r}")


def cumulative(p: PatternSpec, duration_s: float) -> CumFn:
    """Packets offered in ``[0, t]``: the closed-form integral of :func:`rate_fn` (t in seconds)."""
    if p.kind in ("constant", "pcap"):
        r = p.rate_pps
        return lambda t: r * t
    if p.kind == "ramp":
        a, b, d = p.start_pps, p.end_pps, duration_s

        def ramp(t: float) -> float:
            if t <= d:
                return a * t + (b - a) * t * t / (2 * d)
            return a * d + (b - a) * d / 2 + b * (t - d)

        return ramp
    if p.kind == "on_off":
        period, on, r = p.on_s + p.off_s, p.on_s, p.rate_pps

        def on_off(t: float) -> float:
            k = math.floor(t / period)
            return r * (k * on + min(t - k * period, on))

        return on_off
    if p.kind == "diurnal":
        mean, amp, w = p.rate_pps, p.amplitude, 2 * math.pi / p.period_s
        return lambda t: mean * (t + amp * (1 - math.cos(w * t)) / w)
    if p.kind == "flash_crowd":
        return _flash_cum(p)
    raise ValueError(f"unknown pattern kind {p.kind!r}")


def _flash_cum(p: PatternSpec) -> CumFn:
    base, h = p.rate_pps, p.peak_pps - p.rate_pps
    t1 = p.at_s
    t2 = t1 + p.rise_s
    t3 = t2 + p.hold_s
    t4 = t3 + p.decay_s

    def extra(t: float) -> float:  # area above the base rate
        if t < t1:
            return 0.0
        if t < t2:
            return h * (t - t1) ** 2 / (2 * p.rise_s)
        if t < t3:
            return h * (p.rise_s / 2 + (t - t2))
        if t < t4:
            u = t - t3
            return h * (p.rise_s / 2 + p.hold_s + u - u * u / (2 * p.decay_s))
        return h * (p.rise_s / 2 + p.hold_s + p.decay_s / 2)

    return lambda t: base * t + extra(t)


def _flash(p: PatternSpec) -> RateFn:
    base, peak = p.rate_pps, p.peak_pps
    t1 = p.at_s
    t2 = t1 + p.rise_s
    t3 = t2 + p.hold_s
    t4 = t3 + p.decay_s

    def f(t: float) -> float:
        if t < t1 or t >= t4:
            return base
        if t < t2:
            return base + (peak - base) * (t - t1) / p.rise_s
        if t < t3:
            return peak
        return peak + (base - peak) * (t - t3) / p.decay_s

    return f


def expected_packets(fn: RateFn, duration_s: float, step_s: float = 0.001) -> float:
    """Integral of ``fn`` over ``[0, duration_s]`` (trapezoid at ``step_s``): packets the pattern offers."""
    n = max(1, math.ceil(duration_s / step_s))
    h = duration_s / n
    total = 0.5 * (fn(0.0) + fn(duration_s))
    for i in range(1, n):
        total += fn(i * h)
    return total * h


def flow_weights(base: Sequence[float], distribution: str, zipf_s: float) -> list[float]:
    """Normalised per-flow shares: ``base[i]`` x (1 / (i+1)**zipf_s for zipf, 1 for uniform)."""
    zipf = distribution == "zipf"
    w = [b / (i + 1) ** zipf_s if zipf else b for i, b in enumerate(base)]
    total = sum(w)
    return [x / total for x in w]


def stride_sequence(weights: Sequence[float], length: int = 0) -> list[int]:
    """A deterministic sequence of flow indices whose frequencies follow ``weights``.

    Stride scheduling: each flow advances its "pass" by 1/weight when chosen; the flow with the
    smallest pass goes next. Over the sequence every flow appears ``round(length * w)`` times
    (each at least once), evenly spread, so per-flow rates are smooth as well as exact.
    """
    n = len(weights)
    if n == 0:
        raise ValueError("no flows")
    if length <= 0:
        length = max(n, min(100_000, 20 * n))

    heap = [(0.5 / w, i) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    out: list[int] = []
    for _ in range(length):
        pas, i = heapq.heappop(heap)
        out.append(i)
        heapq.heappush(heap, (pas + 1.0 / weights[i], i))
    return out
