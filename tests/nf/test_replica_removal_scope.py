"""A replica applies a flow's removal only to what it holds for the lease that sent it.

Why: in a cluster every member replicates every other member. When a flow group moves from A to
B inside the cluster, member C gets A's removal of the moved flows (A's handover batch) and B's
updates of the same flows over two independent connections, in either order. Before this rule, a
removal from A that arrived after B's first update deleted the flow at C: C then held no state for
a flow B owned, and a failover of B to C would have restarted it (counters from zero, NAT mappings
and firewall connections lost). The test drives one replica worker directly."""

from __future__ import annotations

import struct

from datagrams import stamped_udp

from nf import shim
from nf.engine import SEQ_REMOVED, Worker
from nf.flow import group_of_key, wire_key
from nf.instance_config import InstanceConfig
from nf.replication.protocol import FlowDelta

GROUPS = 16
COUNTER = struct.Struct("!QQ")  # the counter NF's state blob: packets, bytes


def test_a_former_owners_removal_keeps_the_new_owners_flow() -> None:
    cfg = InstanceConfig(name="rr", role="secondary", data_ip="127.0.0.1", data_port=47600,
                         dup_port=47700, repl_port=47800, flow_groups=GROUPS)
    kf = wire_key(stamped_udp(0, 0), shim.SHIM_LEN)
    assert kf is not None
    key = kf[0]
    group = group_of_key(key, GROUPS)
    update = FlowDelta(seqs=[(key, group, 1, 7)], states=[(key, group, COUNTER.pack(7, 700))])
    removal = FlowDelta(seqs=[(key, 0, SEQ_REMOVED, 0)], states=[(key, 0, None)])
    w = Worker(cfg, 0, None)
    try:
        w._apply("lease-b", update)  # the new owner's first delta of the moved flow
        w._apply("lease-a", removal)  # the former owner's handover batch, arriving later
        fs = w.seqs.get(key)
        assert fs is not None and fs.lease == "lease-b" and fs.next == 7, "the moved flow was removed"
        assert w.nf.state.get(key) == [7, 700] and w.replica_of[key] == "lease-b"
        w._apply("lease-b", removal)  # the owner's own removal (e.g. idle expiry) still removes
        assert key not in w.seqs and key not in w.nf.state and key not in w.replica_of
    finally:
        w._close()
