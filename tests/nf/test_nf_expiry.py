"""Idle flows are forgotten (flow_idle_timeout_s) on the instance and its replica; a flow that comes
back continues without a gap, and one the stamper forgot too starts over cleanly."""

from __future__ import annotations

import time

import pytest
from nfnet import NFNet, wait_for

pytestmark = [pytest.mark.netns]


def test_idle_flows_expire_and_come_back_cleanly(nfnet: NFNet) -> None:
    eng = {"flow_idle_timeout_s": 1.0}
    s = nfnet.instance("s", "s", {"type": "counter"}, role="secondary", engine=eng)
    p = nfnet.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"], engine=eng)
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000",
                                                "secondaries": ["10.98.0.12:9100"]}}], idle_s=3.0)
    sink, out = nfnet.sink("ex", 5000)
    nfnet.send("10.98.2.2:5000", flows=3, rate=600, count=150)
    assert p.status()["flows_owned"] == 3
    # idle > instance timeout, < stamper timeout: forgotten here and on the replica
    wait_for(lambda: p.status()["flows_owned"] == 0, timeout_s=5, what="flows expired")
    wait_for(lambda: s.status()["flows_replica"] == 0 and not s.export_state()["flows"], timeout_s=5,
             what="expiry replicated")
    nfnet.send("10.98.2.2:5000", flows=3, rate=600, count=150)  # stamper continues at seq 50
    time.sleep(7.0)  # longer than twice the stamper timeout: it forgets too
    nfnet.send("10.98.2.2:5000", flows=3, rate=600, count=150)  # stamper restarts at seq 0
    time.sleep(0.5)
    got = nfnet.stop_read(sink, out)["flows"]
    for addr, seqs in got.items():
        assert seqs == list(range(50)) * 3, f"{addr}: lost or reordered around expiry"
    m = p.metrics()
    assert m["flows_expired"] >= 6
    assert m["gaps_skipped"] == 0 and m["duplicates"] == 0 and m["stale_epoch"] == 0
    assert sorted(f["view"]["packets"] for f in p.export_state()["flows"]) == [50, 50, 50]
