"""Migration of a subset of flow groups between two instances under traffic: 0 packets lost,
0 reordered at the sink, and the moved state equals what the sink received."""

from __future__ import annotations

import socket
import time

import pytest
from nfnet import NFNet, client_packets, seq_defects, wait_for

from nf.flow import canonical_key, group_of_key

pytestmark = [pytest.mark.netns]

GROUPS = 16


def _group(sport: int) -> int:
    key, _ = canonical_key(17, socket.inet_aton("10.98.1.2"), sport, socket.inet_aton("10.98.2.2"), 5000)
    return group_of_key(key, GROUPS)


@pytest.mark.parametrize("nfnet", [("p", "b")], indirect=True)
def test_move_flow_groups_loss_free_order_preserving(nfnet: NFNet) -> None:
    p = nfnet.instance("p", "p", {"type": "counter"}, workers=2, lease="a")
    b = nfnet.instance("b", "b", {"type": "counter"}, workers=2, lease="b")
    st = nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000", "workers": 2}}])
    sink, out = nfnet.sink("mig", 5000)
    flows = 12
    proc, _ = nfnet.send("10.98.2.2:5000", flows=flows, rate=3000, count=12000, wait=False)
    time.sleep(1.5)
    moved = sorted({_group(40000 + i) for i in range(0, flows, 2)})
    res = p.handover(moved, to="10.98.0.13:9200", dup_to="10.98.0.13:9100")
    assert res["groups"] == moved
    st.call("steer", groups=",".join(map(str, moved)), primary="10.98.0.13:9000", workers=2)
    proc.wait(60)
    time.sleep(1.0)
    got = nfnet.stop_read(sink, out)["flows"]
    assert len(got) == flows
    for addr, seqs in got.items():
        assert seqs == list(range(1000)), f"{addr}: {seq_defects(seqs, 1000)}"
    at_b, at_p = (client_packets(x.export_state(), owned_only=True) for x in (b, p))
    for i in range(flows):
        addr = f"10.98.1.2:{40000 + i}"
        owner = at_b if _group(40000 + i) in moved else at_p
        assert owner.get(addr) == 1000, f"{addr}: state {owner.get(addr)} after the move"
    moved_addrs = {f"10.98.1.2:{40000 + i}" for i in range(flows) if _group(40000 + i) in moved}
    assert moved_addrs and set(at_b) == moved_addrs
    assert not moved_addrs & set(at_p)
    wait_for(lambda: b.metrics()["migrations_in"] == len(moved), what="migrations counted")


@pytest.mark.parametrize("nfnet", [("p", "b")], indirect=True)
def test_handover_to_unreachable_target_aborts_and_keeps_serving(nfnet: NFNet) -> None:
    # no instance runs on "b"; the input buffer holds the frozen flows' packets meanwhile
    p = nfnet.instance("p", "p", {"type": "counter"}, lease="a", engine={"buffer_size": 400})
    nfnet.stamper([{"groups": "all", "target": {"primary": "10.98.0.11:9000"}}])
    sink, out = nfnet.sink("ab", 5000)
    proc, _ = nfnet.send("10.98.2.2:5000", flows=4, rate=500, count=3000, wait=False)
    time.sleep(0.5)
    with pytest.raises(Exception, match="timed out"):
        p.handover(list(range(GROUPS)), to="10.98.0.13:9200", dup_to="10.98.0.13:9100", timeout_s=2)
    proc.wait(60)
    time.sleep(0.5)
    got = nfnet.stop_read(sink, out)["flows"]
    for addr, seqs in got.items():
        assert seqs == list(range(750)), f"{addr}: across the aborted move: {seq_defects(seqs, 750)}"
    assert p.status()["workers"][0]["frozen_groups"] == []
    assert p.metrics()["dropped"] == 0
