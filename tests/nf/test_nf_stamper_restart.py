"""The stamper is no single point of failure: a restarted stamper takes a new epoch from the store
and the instance keeps every flow in order across the restart (ordering by (epoch, seq))."""

from __future__ import annotations

import time

import pytest
from nfnet import NFNet

pytestmark = [pytest.mark.netns]


def test_stamper_restart_new_epoch_flows_continue(nfnet: NFNet) -> None:
    store = nfnet.redis()
    p = nfnet.instance("p", "p", {"type": "counter"}, statestore=store)
    steer = [{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}]
    st = nfnet.stamper(steer, statestore=store)
    e1 = st.call("status")["epoch"]
    sink, out = nfnet.sink("sr", 5000)
    nfnet.send("10.98.2.2:5000", flows=3, rate=1000, count=300)
    time.sleep(0.3)
    nfnet.kill9("stamper")
    st.close()
    st = nfnet.stamper(steer, statestore=store)
    e2 = st.call("status")["epoch"]
    assert e2 == e1 + 1
    nfnet.send("10.98.2.2:5000", flows=3, rate=1000, count=300)  # same flows, seqs restart at 0
    time.sleep(0.5)
    got = nfnet.stop_read(sink, out)["flows"]
    for seqs in got.values():
        assert seqs == list(range(100)) + list(range(100))
    counts = sorted(f["view"]["packets"] for f in p.export_state()["flows"])
    assert counts == [200, 200, 200]
    m = p.metrics()
    assert m["stale_epoch"] == 0 and m["gaps_skipped"] == 0 and m["duplicates"] == 0
