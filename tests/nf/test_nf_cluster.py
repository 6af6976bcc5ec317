"""Cluster replication: every batch delta goes to several replicas, output waits for all of them,
and a member that joins under traffic gets a snapshot then deltas, ending with identical state."""

from __future__ import annotations

import time
from typing import Any

import pytest
from nfnet import NFNet, wait_for

pytestmark = [pytest.mark.netns]


def _packets(export: dict[str, Any]) -> dict[str, int]:
    return {f["key"]: f["view"]["packets"] for f in export["flows"]}


def test_late_member_converges_and_commit_waits_for_all(nfnet3: NFNet) -> None:
    net = nfnet3
    s = net.instance("s", "s", {"type": "counter"}, role="secondary", workers=2)
    b = net.instance("b", "b", {"type": "counter"}, role="secondary", workers=2)
    p = net.instance("p", "p", {"type": "counter"}, replicas=["10.98.0.12:9200"], workers=2)
    net.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000",
                                              "secondaries": ["10.98.0.12:9100"], "workers": 2}}])
    sink, out = net.sink("cl", 5000)
    proc, _ = net.send("10.98.2.2:5000", flows=6, rate=2000, count=6000, wait=False)
    time.sleep(1.0)
    p.add_replica("10.98.0.13:9200")  # joins mid-stream: snapshot, then deltas
    proc.wait(60)
    wait_for(lambda: p.status()["inflight_batches"] == 0, what="all batches committed")
    time.sleep(0.3)
    got = net.stop_read(sink, out)["flows"]
    assert sum(len(v) for v in got.values()) == 6000
    primary = _packets(p.export_state())
    assert sorted(primary.values()) == [1000] * 6
    wait_for(lambda: _packets(s.export_state()) == primary, what="secondary state equal")
    wait_for(lambda: _packets(b.export_state()) == primary, what="late member state equal")
    reps = [r for w in p.status()["workers"] for r in w["replicas"]]
    assert len(reps) == 4 and all(r["connected"] and r["lag_batches"] == 0 for r in reps)
