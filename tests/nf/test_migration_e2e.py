"""Migration under traffic (all flow groups, primary on host p -> a new instance on host b):
0 packets lost, 0 reordered at the sink, and the state at the target equals what was delivered.

Packets are duplicated by real OVS rules programmed from the steering table (SteeringProgrammer);
the stamper follows the table in a real Redis; instances are real processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nfnet import DEEP_ENGINE, SERVERS, instance_packets, seq_defects, wait_for
from ovsnet import OvsNFNet

from lab.netns import Topology
from nf.failover import deploy_pair
from nf.launcher import LaunchSpec, ProcessLauncher
from nf.migration import migrate_groups
from nf.steering import SteeringProgrammer, SteeringTable
from nf.store import open_store

SERVICE = "nf"
GROUPS = 16
FLOWS = 8
PER_FLOW = 1000


@pytest.fixture
def ovsnet(tmp_path: Path) -> Iterator[OvsNFNet]:
    with Topology("nc") as topo:
        net = OvsNFNet(topo, tmp_path)
        try:
            yield net
        finally:
            net.close()


@pytest.mark.netns
@pytest.mark.slow
def test_migration_under_traffic_loses_and_reorders_nothing(ovsnet: OvsNFNet, tmp_path: Path) -> None:
    net = ovsnet
    store = open_store(net.statestore)
    launcher = ProcessLauncher(net.slots(), tmp_path / "inst", store=store)
    prog = SteeringProgrammer(store, net.switch, host_index=1, service=SERVICE, interval_ms=20)
    try:
        spec = LaunchSpec(name="tmpl", lease="svc", workers=1, flow_groups=GROUPS, nf={"type": "counter"},
                          engine=DEEP_ENGINE, statestore=str(net.statestore))
        dep = deploy_pair(store, launcher, SERVICE, "svc", [str(g) for g in range(GROUPS)], spec,
                          primary_host="h-p")
        prog.start()
        wait_for(lambda: prog.last is not None and len(prog.last.rules) == 1, 10, "duplication rule")
        target = launcher.launch(LaunchSpec(name="svcb-p1", lease="svcb", role="primary", epoch=1, workers=1,
                                            flow_groups=GROUPS, nf={"type": "counter"},
                                            engine=DEEP_ENGINE), host="h-b")
        net.stamper([], duplicate="ovs", flow_groups=GROUPS, statestore=str(net.statestore))
        sink, sink_out = net.sink("m", 7000)
        sender, _ = net.send(f"{SERVERS[0]}:7000", flows=FLOWS, rate=2000, count=FLOWS * PER_FLOW,
                             wait=False, linger=0.5)
        time.sleep(1.5)
        rep = migrate_groups(store, SERVICE, range(GROUPS), target, settle_ms=300)
        assert rep.source == dep.primary.instance and rep.target == target.instance
        assert not rep.delta_only and rep.flows == FLOWS
        sender.wait(60)
        time.sleep(1.0)
        got = net.stop_read(sink, sink_out)["flows"]
        assert len(got) == FLOWS
        for a, seqs in got.items():
            assert seqs == list(range(PER_FLOW)), f"{a}: {seq_defects(seqs, PER_FLOW)}"
        # state equal after the move: the target's counters == what the sink received
        assert instance_packets(target.control) == {a: len(s) for a, s in got.items()}
        e = SteeringTable(store).get(SERVICE, "3")
        assert e is not None and e.primary.instance == target.instance and e.lease == "svcb"
        # the source's duplication rule is gone (the target has no secondary)
        wait_for(lambda: prog.last is not None and not prog.last.rules, 5, "rules follow the move")
    finally:
        prog.stop()
        launcher.close()
        store.close()
