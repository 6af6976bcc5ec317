"""UDP and TCP flows with chosen 5-tuples and Zipf rates arrive complete, per flow, at the sink."""

from __future__ import annotations

import pytest
from conftest import Pair


@pytest.mark.netns
@pytest.mark.parametrize("method", ["packet", "raw"])
def test_mixed_udp_tcp_zipf_flows_exact_per_flow(pair: Pair, method: str) -> None:
    prof = pair.profile(
        "mixed", duration_s=10, count=6000, method=method, distribution="zipf", zipf_s=1.1,
        flows=[
            {"proto": "udp", "src": "10.201.0.1", "sport": 20000, "dport": 9000, "count": 6,
             "size_bytes": 128},
            {"proto": "tcp", "sport": 30000, "dport": 9001, "count": 3, "size_bytes": 300},
        ],
        pattern={"kind": "constant", "rate_pps": 6000},
        sink={"mode": "packet", "interface": "eth0", "idle_timeout_s": 1},
    )
    sink, out = pair.start_sink(prof)
    gen = pair.gen(prof)
    res = pair.sink_result(sink, out)
    assert gen["sent"] == 6000
    sent = {f["flow_id"]: f["sent"] for f in gen["flows"]}
    got = {f["flow_id"]: f["unique"] for f in res["flows"]}
    assert got == sent
    assert sent[0] > sent[5]  # Zipf: rank 1 gets more than rank 6
    srcs = {f["flow_id"]: f["src"] for f in res["flows"]}
    assert srcs[0] == "udp 10.201.0.1:20000" and srcs[6] == "tcp 10.201.0.1:30000"
    assert res["duplicates"] == 0 and res["malformed"] == 0
    assert all(f["latency_samples"] == f["unique"] for f in res["flows"])


@pytest.mark.netns
def test_udp_method_one_socket_per_flow(pair: Pair) -> None:
    prof = pair.profile(
        "udpm", duration_s=10, count=2000, method="udp",
        flows=[{"proto": "udp", "sport": 41000, "dport": 9000, "count": 4}],
        pattern={"kind": "ramp", "start_pps": 1000, "end_pps": 3000},
        sink={"idle_timeout_s": 1},
    )
    sink, out = pair.start_sink(prof)
    gen = pair.gen(prof)
    res = pair.sink_result(sink, out)
    assert gen["sent"] == 2000 == res["unique"]
    assert sorted(f["src"] for f in res["flows"]) == [f"udp 10.201.0.1:{41000 + i}" for i in range(4)]
