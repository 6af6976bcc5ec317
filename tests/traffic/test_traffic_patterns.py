"""Patterns offer the packets their shape promises; flows share them by weight; the latency
histogram reports percentiles within its bucket error."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from traffic import latency
from traffic.generator import planned_count
from traffic.patterns import cumulative, expected_packets, flow_weights, rate_fn, stride_sequence
from traffic.profile import PatternSpec, profile_from_dict


@pytest.mark.parametrize(
    ("spec", "duration", "packets"),
    [
        (PatternSpec(kind="constant", rate_pps=1000), 10, 10_000),
        (PatternSpec(kind="ramp", start_pps=0, end_pps=2000), 10, 10_000),
        (PatternSpec(kind="on_off", rate_pps=1000, on_s=1, off_s=1), 10, 5_000),
        (PatternSpec(kind="diurnal", rate_pps=1000, amplitude=0.5, period_s=10), 10, 10_000),
        (PatternSpec(kind="flash_crowd", rate_pps=100, peak_pps=1100, at_s=2, rise_s=2, hold_s=2, decay_s=2),
         10, 100 * 10 + 1000 * (1 + 2 + 1)),
    ],
)
def test_pattern_integrals(spec: PatternSpec, duration: float, packets: int) -> None:
    assert expected_packets(rate_fn(spec, duration), duration) == pytest.approx(packets, rel=1e-3)
    # the pacer's closed-form cumulative agrees with the numeric integral at every instant
    cum = cumulative(spec, duration)
    assert cum(duration) == pytest.approx(packets, rel=1e-9)
    fn = rate_fn(spec, duration)
    for t in (0.3, 1.0, 2.5, 3.7, 6.1, 9.99):
        assert cum(t) == pytest.approx(expected_packets(fn, t, step_s=1e-4), rel=1e-3, abs=0.5)


def test_count_bound_defaults_to_pattern_yield() -> None:
    p = profile_from_dict({"name": "x", "duration_s": 4, "flows": [{"dst": "10.0.0.1"}],
                           "pattern": {"kind": "on_off", "rate_pps": 100, "on_s": 1, "off_s": 1}})
    assert planned_count(p) == 200


def test_zipf_shares_are_exact_per_cycle() -> None:
    w = flow_weights([1.0] * 4, "zipf", 1.0)
    seq = stride_sequence(w, 2500)
    counts = Counter(seq)
    for i in range(4):
        assert abs(counts[i] - 2500 * w[i]) <= 1
    assert counts[0] > counts[1] > counts[2] > counts[3]


def test_latency_percentiles_within_bucket_error() -> None:
    rng = random.Random(4)
    values = [rng.randint(0, 200_000) for _ in range(20_000)]
    hist: dict[int, int] = {}
    for v in values:
        b = latency.bucket(v)
        hist[b] = hist.get(b, 0) + 1
    values.sort()
    for q in (0.5, 0.99):
        exact = values[int(q * (len(values) - 1))]
        assert latency.percentile(hist, q) == pytest.approx(exact, rel=0.035, abs=1)
