"""The generator hits its target rate (within 5 %) at 50 kpps between two namespaces and stops by
itself: on its packet bound with exactly the configured count, or on its time bound."""

from __future__ import annotations

import time

import pytest
from conftest import Pair

RATE = 50_000
COUNT = 200_000  # 4 s at 50 kpps


@pytest.mark.netns
@pytest.mark.slow
def test_50kpps_count_bound_exact_and_on_rate(pair: Pair) -> None:
    prof = pair.profile(
        "rate50k", duration_s=8, count=COUNT, method="packet", nice=-10,
        flows=[{"proto": "udp", "dport": 9000, "sport": 10000, "count": 16, "size_bytes": 64}],
        pattern={"kind": "constant", "rate_pps": RATE},
        sink={"mode": "udp", "idle_timeout_s": 2, "nice": -10},
    )
    sink, out = pair.start_sink(prof)
    t0 = time.monotonic()
    gen = pair.gen(prof)
    wall = time.monotonic() - t0
    res = pair.sink_result(sink, out)

    assert gen["stop_reason"] == "count"
    assert gen["sent"] == COUNT
    assert sum(f["sent"] for f in gen["flows"]) == COUNT
    assert gen["duration_s"] < 8, "the count bound (4 s of traffic) must end the run before the time bound"
    assert wall < 8 + 10, "process start-up + run stay well inside the bound"
    assert abs(gen["achieved_pps"] - RATE) / RATE <= 0.05, gen
    # the receiver saw the same rate and every packet, once, in order
    assert res["unique"] == COUNT and res["duplicates"] == 0 and res["reordered"] == 0
    assert abs(res["throughput_pps"] - RATE) / RATE <= 0.05, res["throughput_pps"]


@pytest.mark.netns
def test_time_bound_stops_run(pair: Pair) -> None:
    prof = pair.profile(
        "timebound", duration_s=1.5, count=10_000_000, method="raw",
        flows=[{"proto": "udp", "dport": 9000, "count": 2}],
        pattern={"kind": "constant", "rate_pps": 2000},
    )
    t0 = time.monotonic()
    gen = pair.gen(prof)
    wall = time.monotonic() - t0
    assert gen["stop_reason"] == "duration"
    assert 1.5 <= gen["duration_s"] < 1.6
    assert wall < 15
    assert abs(gen["sent"] - 3000) <= 3000 * 0.05


@pytest.mark.netns
def test_on_off_pattern_pauses_in_off_phase(pair: Pair) -> None:
    # on 0-1 s, off 1-2 s, on 2-2.5 s at 2 kpps: the pattern offers exactly 3000 packets; had the
    # generator not paused during the off phase it would have sent them all by 1.5 s
    prof = pair.profile(
        "onoff", duration_s=2.5, method="raw",
        flows=[{"proto": "udp", "dport": 9000, "count": 2}],
        pattern={"kind": "on_off", "rate_pps": 2000, "on_s": 1, "off_s": 1},
        sink={"idle_timeout_s": 1.5},  # longer than the 1 s off phase
    )
    sink, out = pair.start_sink(prof)
    gen = pair.gen(prof)
    res = pair.sink_result(sink, out)
    assert gen["sent"] == 3000 and res["unique"] == 3000
    assert gen["duration_s"] >= 2.0
    assert res["stop_reason"] == "idle"
